/**
 * When the background stages should step back for the API (pure: the numbers come from api/apiLoad.ts).
 *
 * The API and the pipeline share one event loop (and, on a small machine, the CPU with Postgres and the
 * node). Under a burst, signing and sending each batch as it arrives took a third of the loop and let
 * answers queue behind it: past about 1,000 requests/s the answer time grew without bound. Accepted work
 * is durable, so it can wait a little; a client waiting for its answer cannot. So while the API is
 * saturated, the sign stage waits before its next batch, but never longer than API_FIRST_MAX_DEFER_MS,
 * so a sustained overload slows the pipeline down and never stops it (a key's in-flight cap then pushes
 * back on its clients).
 */

/** Requests being served at once from which the API counts as busy (a quiet API has a handful). */
export const API_BUSY_IN_FLIGHT = 16
/** Share of the last sampling window the event loop was busy, from which the API counts as saturated. */
export const API_BUSY_LOOP_UTILIZATION = 0.85
/** The longest the sign stage waits before a batch while the API is busy. */
export const API_FIRST_MAX_DEFER_MS = 250

export type ApiLoad = { inFlight: number; loopUtilization: number }

export function apiIsBusy(load: ApiLoad): boolean {
  return load.inFlight >= API_BUSY_IN_FLIGHT && load.loopUtilization >= API_BUSY_LOOP_UTILIZATION
}

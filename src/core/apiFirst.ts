/**
 * When the background stages should step back for the API (pure: the numbers come from api/apiLoad.ts).
 *
 * The API and the pipeline share one event loop (and, on a small machine, the CPU with Postgres and the
 * node). Under a burst, signing and sending each batch as it arrives took a third of the loop and let
 * answers queue behind it: past about 1,000 requests/s the answer time grew without bound. Accepted work
 * is durable, so it can wait a little; a client waiting for its answer cannot. So while the API is
 * saturated, the sign stage waits before its next batch, but never longer than API_FIRST_MAX_DEFER_MS,
 * so a sustained overload slows the pipeline down and never stops it (at least a batch of 200 about every
 * 0.6 s, above the design's sustained rate; a key's in-flight cap then pushes
 * back on its clients).
 */

/**
 * Requests per second from which the API counts as busy: well above the design's sustained 100-200/s,
 * so a steadily used service signs every batch at once. (Requests in progress are no measure: on a
 * saturated loop the waiting ones sit unread in the sockets, and only a few are ever in progress.)
 */
export const API_BUSY_REQUESTS_PER_SEC = 500
/** Share of the last sampling window the event loop was busy, from which the API counts as saturated. */
export const API_BUSY_LOOP_UTILIZATION = 0.85
/** The longest the sign stage waits before a batch while the API is busy. */
export const API_FIRST_MAX_DEFER_MS = 500

export type ApiLoad = { requestsPerSec: number; loopUtilization: number }

export function apiIsBusy(load: ApiLoad): boolean {
  return load.requestsPerSec >= API_BUSY_REQUESTS_PER_SEC && load.loopUtilization >= API_BUSY_LOOP_UTILIZATION
}

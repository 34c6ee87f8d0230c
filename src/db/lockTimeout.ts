/**
 * Whether Postgres gave up waiting for a lock (lock_timeout: SQLSTATE 55P03), as postgres.js throws it or as a
 * library wraps it (drizzle's migrator puts it in `cause`).
 */
export function isLockTimeout(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } } | null
  return e?.code === '55P03' || e?.cause?.code === '55P03'
}

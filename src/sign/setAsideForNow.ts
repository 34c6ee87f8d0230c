/**
 * The rows a drain set aside (waiting for funds, an estimate the node refused, a remote signer's "no"), left out of
 * its next batches for `ttlMs`. After that the rows' own schedule in SQL (waiting_since, updated_at) decides when they
 * are looked at again, as for any drain. Kept for the drain's whole life, as it was, a row set aside during a drain
 * that never ended (steady traffic to one signer) was never looked at again while it ran: funded, it was not woken;
 * past its patience, it was not failed. And the list sent with every candidate query grew without bound.
 */
export class SetAsideForNow implements Iterable<string> {
  /** Insertion order is the order they were set aside in (add moves a row to the end): the oldest come first. */
  private readonly since = new Map<string, number>()

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  add(id: string): void {
    this.since.delete(id)
    this.since.set(id, this.now())
  }

  get size(): number {
    this.forget()
    return this.since.size
  }

  [Symbol.iterator](): Iterator<string> {
    this.forget()
    return this.since.keys()
  }

  private forget(): void {
    const before = this.now() - this.ttlMs
    for (const [id, at] of this.since) {
      if (at > before) break
      this.since.delete(id)
    }
  }
}

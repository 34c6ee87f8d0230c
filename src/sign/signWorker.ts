import type PgBoss from 'pg-boss'
import { broadcastAttempts } from '../broadcast/broadcastAttempts.ts'
import type { ServiceContext } from '../context.ts'
import { QUEUE, signJobKey, type SignJob } from '../jobs/queues.ts'
import { SET_ASIDE_RETRY_MS, signNextBatch, type DrainState, type SignedAttempt } from './signQueued.ts'
import { SetAsideForNow } from './setAsideForNow.ts'
import { createRepeatedFailureLogs } from '../common/repeatedFailureLog.ts'

/**
 * Signed batches of one signer being sent (or waiting to be) while the next is signed. Deep enough that
 * signing goes on while the node stalls on one send (anvil answers nothing while it builds a large
 * block's receipts); the backlog then goes out batch after batch at the node's own intake rate.
 */
const MAX_UNSENT_BATCHES = 8
/** ... and at most this much raw transaction hex (large calldata): 8 batches of 200 could otherwise hold hundreds of MB. */
const MAX_UNSENT_BYTES = 16 * 1024 * 1024

/** Batches smaller than this are followed by a short wait for more (COALESCE_MS). */
const COALESCE_BELOW = 20
const COALESCE_MS = 20

/** Parallel sign jobs per instance; one signer is drained by one of them at a time. */
const SIGN_WORKERS = 4

export type SignWorker = {
  /** After an accept commits: make sure a drain for the signer sees the new row soon. */
  kick: (chainId: number, signer: string) => void
  /**
   * Whether this process holds the attempt signed and not yet answered by the providers (a drain's send
   * queue). The recovery sweep leaves those alone: they are not lost, only waiting behind a slow node.
   */
  holds: (hash: string) => boolean
  stop: () => Promise<void>
}

/** A running drain of one signer: `again` when a request came for it since it last looked; `wake` tells it at once. */
type DrainFlag = { again: boolean; wake?: () => void }

/**
 * Runs the sign stage: each job drains one signer's queue in batches (sign, store,
 * broadcast) until it is empty. Accepts that arrive while a drain runs set a flag
 * the drain checks before it returns, so no row waits for the next job.
 */
/** How long stop() waits for the drains under way to finish their batch and send what they signed (main.ts gives the whole stop 15 s, after up to 5 s of HTTP drain). */
const STOP_WAIT_MS = 5_000

export async function startSignWorker(ctx: ServiceContext): Promise<SignWorker> {
  const draining = new Map<string, DrainFlag>()
  const workerIds: string[] = []
  const unsent = new Set<string>()
  /**
   * Drains under way, started by a job or a kick. stop() waited only for pg-boss's workers; drains kicked by the
   * accept path went on signing while the service closed the database under them: provider answers went
   * unrecorded, errors were logged, and a busy instance overran its stop budget.
   */
  const running = new Set<Promise<void>>()
  let stopping = false
  const tracked = (job: SignJob): Promise<void> => {
    const run = drain(job)
    running.add(run)
    void run.then(
      () => running.delete(run),
      () => running.delete(run),
    )
    return run
  }

  async function drain(job: SignJob): Promise<void> {
    const chain = ctx.chains.get(job.chainId)
    const signer = ctx.signers.get(job.chainId, job.signer)
    if (!chain || !signer) {
      ctx.log.warn({ job }, 'sign job for a chain or signer that is not configured here; skipped')
      return
    }
    const key = signJobKey(job)
    const running = draining.get(key)
    if (running) {
      // This instance already drains the signer: it will look again before it stops.
      running.again = true
      running.wake?.()
      return
    }
    /** `wake`: ends a wait of the drain for its last sends (below) when a new request for the signer comes. */
    const state: DrainFlag = { again: false }
    const kicked = () => new Promise<void>((resolve) => (state.wake = resolve))
    draining.set(key, state)
    const skip = new SetAsideForNow(SET_ASIDE_RETRY_MS)
    const drainState: DrainState = { refusedUnsigned: 0 }
    // Signing and sending overlap: the next batch is signed and stored while earlier ones are sent.
    // Sends stay in nonce order at the providers that answer: a batch goes out once every provider has answered
    // the previous batch, or a provider took it and the slower ones had as long again (broadcastAttempts.ts; a
    // slower one may get it before it is done with the last). Recording the answers runs beside it. At most
    // MAX_UNSENT_BATCHES wait or run, answers recorded: a provider that stays slow still bounds a signer's rate, at
    // MAX_UNSENT_BATCHES batches per its answer time, and gets that many requests at once.
    let answered: Promise<void> = Promise.resolve()
    const outstanding: Promise<unknown>[] = []
    let outstandingBytes = 0
    const send = (signed: SignedAttempt[]) => {
      const previous = answered
      let markAnswered!: () => void
      answered = new Promise<void>((resolve) => (markAnswered = resolve))
      const bytes = signed.reduce((n, a) => n + a.raw.length, 0)
      outstandingBytes += bytes
      for (const a of signed) unsent.add(a.hash)
      const done = previous
        // Not a request past its deadline when its turn comes (it may have waited behind a slow node's answers): the
        // bump stage sends the self-transfer at its nonce instead, as for any request not mined by its validUntil.
        .then(() => broadcastAttempts(ctx, chain, signed.filter((a) => !a.validUntil || a.validUntil.getTime() > Date.now()), markAnswered))
        .finally(() => {
          markAnswered()
          outstandingBytes -= bytes
          for (const a of signed) unsent.delete(a.hash)
        })
      // Handled here so a failure while the next batch is signed is not an unhandled rejection; it is
      // rethrown when the loop waits for it (the stored attempts are sent again by the recovery sweep).
      done.catch(() => {})
      outstanding.push(done)
    }
    let lastBatch = 0
    try {
      for (;;) {
        // Stopping: what is signed goes out (below), the rest stays QUEUED for the next start or another instance.
        if (stopping) break
        const more = state.again
        state.again = false
        // A saturated API answers first; the wait is bounded (core/apiFirst.ts).
        await ctx.apiLoad?.giveWay()
        // A steady trickle (the last batch was small, and more came while it was signed): wait a moment so
        // the next batch shares a batch's fixed cost (about seven statements and a provider call) among
        // several requests. A request to an idle signer is signed at once.
        if (more && lastBatch > 0 && lastBatch < COALESCE_BELOW) await new Promise((resolve) => setTimeout(resolve, COALESCE_MS))
        const batch = await signNextBatch(ctx, chain, signer, skip, drainState)
        lastBatch = batch?.signed.length ?? 0
        if (batch === null || batch.signerFailed) {
          if (batch?.signed.length) send(batch.signed)
          // The last batches are sent before the drain decides it is done (and before another may start). A request
          // that comes meanwhile is signed now, by this drain (its sends go out after the last ones, as any next
          // batch's: broadcastAttempts' onAnswered): it waited for every provider to answer the last batch, a slow
          // one's seconds included. Not after a remote signer failed: this drain ends, as before.
          if (batch !== null) while (outstanding.length) await outstanding.shift()
          else
            while (outstanding.length && !state.again) {
              const woken = await Promise.race([outstanding[0]!.then(() => false), kicked().then(() => true)])
              if (!woken) outstanding.shift()
            }
          // A remote signer that just failed is not asked again by this drain (one call per try, not per batch).
          if (batch === null && state.again) continue
          break
        }
        // Each batch moves every row it saw out of QUEUED, or sets it aside (in `skip`, and for at least as long by
        // its updated_at in SQL), so the loop ends when no new rows come.
        if (batch.signed.length) send(batch.signed)
        while (outstanding.length >= MAX_UNSENT_BATCHES || (outstanding.length > 0 && outstandingBytes > MAX_UNSENT_BYTES)) await outstanding.shift()
      }
    } finally {
      // On an error, too: what is being sent finishes before another drain of this signer can start.
      await Promise.allSettled(outstanding)
      draining.delete(key)
    }
  }

  for (let i = 0; i < SIGN_WORKERS; i++) {
    workerIds.push(
      await ctx.boss.work<SignJob>(QUEUE.sign, { batchSize: 1, pollingIntervalSeconds: 1 }, async (jobs: PgBoss.Job<SignJob>[]) => {
        for (const job of jobs) if (!stopping) await tracked(job.data)
      }),
    )
  }
  /**
   * Per signer: each accept and each sweep tick starts a drain, so a provider outage logged a 2 KB stack trace per
   * accepted request. Once per failure now, then a count each minute.
   */
  const failureLogs = createRepeatedFailureLogs(ctx.log, {
    failed: 'sign drain failed; the sweep retries',
    still: 'sign drain still failing the same way; the sweep retries',
    again: 'sign drain works again',
  })
  const drainFailures = (chainId: number, signer: string) => failureLogs(signJobKey({ chainId, signer }), { chainId, signer })
  return {
    kick(chainId, signer) {
      if (stopping) return
      const under = draining.get(signJobKey({ chainId, signer }))
      if (under) {
        under.again = true
        under.wake?.()
      }
      // Drain here and now: no job round trip on the hot path. If this instance dies
      // first, the recovery sweep (at start-up and every few seconds, on any instance)
      // enqueues a sign job for every signer with QUEUED rows.
      else
        void tracked({ chainId, signer }).then(
          () => drainFailures(chainId, signer).succeeded(),
          (err: unknown) => drainFailures(chainId, signer).failed(err),
        )
    },
    holds: (hash) => unsent.has(hash),
    async stop() {
      stopping = true
      await Promise.all(workerIds.map((id) => ctx.boss.offWork({ id })))
      let timer: NodeJS.Timeout | undefined
      await Promise.race([Promise.allSettled([...running]), new Promise((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)))])
      clearTimeout(timer)
    },
  }
}

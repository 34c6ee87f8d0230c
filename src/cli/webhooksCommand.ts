import { createBoss } from '../jobs/queues.ts'
import { insertDb, readRegistry, webhookJob } from '../webhooks/webhooks.ts'
import type { CliIo } from './keysCommand.ts'
import { withServiceDatabase } from './withServiceDatabase.ts'

export const WEBHOOKS_HELP = `Usage:
  tx-broadcaster webhooks replay --name <webhook> --since <time> [--until <time>]
      Delivers again the status changes made in [since, until) that the webhook takes (its events), with
      their original x-webhook-id: after a receiver was down past the retries (1-2.3 hours) and its
      deliveries were given up, or lost its data. The changes are kept as long as their transactions
      (retention, 30 days by default). A running instance with that webhook in its config delivers them.
      Times as ISO 8601 (2026-11-27T08:00:00Z). Needs DATABASE_URL.
`

/** Deliveries queued by one statement at most: a day of a busy service is a few million. */
const MAX_REPLAY = 1_000_000
const CHUNK = 5_000

function parseTime(flag: string, value: string | undefined): Date | null {
  if (value === undefined) return null
  const t = new Date(value)
  if (Number.isNaN(t.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(value)) throw new Error(`--${flag}: expected an ISO 8601 time such as 2026-11-27T08:00:00Z, got "${value}"`)
  // Without a zone, Date reads it in this machine's: a replay of the wrong hours.
  if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(value)) throw new Error(`--${flag}: give the time zone, e.g. ${value}Z (UTC) or ${value}+01:00`)
  return t
}

/** `tx-broadcaster webhooks ...`; returns the exit code. */
export async function webhooksCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args
  if (!sub || sub === 'help' || sub === '--help' || sub === '-h') {
    io.out(WEBHOOKS_HELP)
    return sub ? 0 : 2
  }
  if (sub !== 'replay') {
    io.err(`tx-broadcaster webhooks: unknown command "${sub}"\n\n${WEBHOOKS_HELP}`)
    return 2
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(WEBHOOKS_HELP)
    return 0
  }
  const flags: Record<string, string> = {}
  let since: Date | null
  let until: Date | null
  try {
    for (let i = 0; i < rest.length; i++) {
      const m = /^--(name|since|until)(?:=(.*))?$/.exec(rest[i]!)
      if (!m) throw new Error(`unknown option "${rest[i]}" (replay takes --name, --since, --until)`)
      const value = m[2] ?? rest[++i]
      if (value === undefined || value === '' || value.startsWith('--')) throw new Error(`--${m[1]} needs a value`)
      flags[m[1]!] = value
    }
    if (!flags.name) throw new Error('--name is required: the webhook, as named in the config (or its derived name, shown in the logs)')
    since = parseTime('since', flags.since)
    until = parseTime('until', flags.until)
    if (!since) throw new Error('--since is required')
    if (until && until <= since) throw new Error('--until must be after --since')
  } catch (err) {
    io.err(`tx-broadcaster webhooks replay: ${(err as Error).message}\n`)
    return 2
  }
  const name = flags.name
  return withServiceDatabase(io, 'tx-broadcaster webhooks', 'tx-broadcaster webhooks replay', { migrateNew: false }, async (sql, databaseUrl) => {
    // Which statuses it takes: from the running instances that have it (their configs, not this machine's).
    const hook = (await readRegistry(sql)).find((h) => h.name === name)
    if (!hook) throw new Error(`no running instance has a webhook named "${name}": start one with it in its config, then replay`)
    // Still in the registry (for 10 minutes), but no running instance has refreshed it lately: renamed, removed, or
    // every instance with it is stopped. Its deliveries were queued for no one, and the command said "queued".
    if (!hook.live)
      throw new Error(
        `no running instance has a webhook named "${name}" now (it was in a config minutes ago: renamed or removed?): nothing would deliver the replay. Start an instance with it in its config, then replay`,
      )
    const events = await sql<{ id: number; at: Date }[]>`
      SELECT id, at FROM transaction_events
      WHERE at >= ${since!} AND at < ${until ?? new Date()} AND from_status IS DISTINCT FROM to_status
        AND (${hook.events === null} OR to_status = ANY(${hook.events ?? []}::text[]))
      ORDER BY id LIMIT ${MAX_REPLAY + 1}`
    if (events.length > MAX_REPLAY) throw new Error(`more than ${MAX_REPLAY} status changes in that window: replay a shorter one (--until)`)
    // No pg-boss start: the jobs are inserted over this connection, into the queue the running instances work.
    const boss = createBoss(databaseUrl)
    for (let i = 0; i < events.length; i += CHUNK) {
      const jobs = events.slice(i, i + CHUNK).map((e) => webhookJob(name, e.id))
      // Each chunk commits on its own: a failure part way says how far it got and from where to go on (it said only
      // the error, and running it again sent the ones already queued a second time).
      await sql.begin((tx) => boss.insert(jobs, { db: insertDb(tx) })).catch((err: unknown) => {
        if (i === 0) throw err
        const next = events[i]!
        throw new Error(
          `${(err as Error).message}: ${i} of ${events.length} deliveries were queued (the changes before event ${next.id}); ` +
            `to queue the rest, replay with --since ${next.at.toISOString()} and the same --until (a change at that very time may be sent twice)`,
        )
      })
    }
    io.out(`queued ${events.length} deliveries for webhook "${name}" (status changes from ${since!.toISOString()} to ${(until ?? new Date()).toISOString()})\n`)
  })
}

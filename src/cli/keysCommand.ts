import { userInfo } from 'node:os'
import { ApiKeyError, checkKeyName, createApiKey, listApiKeys, revokeApiKey, ROLES, type Role } from '../keys/apiKeyStore.ts'
import { withServiceDatabase } from './withServiceDatabase.ts'

export const KEYS_HELP = `Usage:
  tx-broadcaster keys create --name <name> --role <reader|submitter|admin>
      Creates a key and prints it once. Only its SHA-256 is stored: keep the printed key.
  tx-broadcaster keys revoke --name <name>
      Running services stop accepting the key within seconds.
  tx-broadcaster keys list [--json]

Roles: reader (queries, subscriptions) < submitter (+ broadcastTransaction) < admin (+ retry, cancel).
Needs DATABASE_URL: the Postgres the service runs with (DATABASE_URL is enough; no config file
is read). Dev mode with its embedded Postgres needs none of this: it prints an admin key.
Creating and revoking are recorded in the audit_events table with your OS user name as the actor.
Running services pick up changes within seconds (at once through Postgres NOTIFY).
`

/** The options each subcommand takes. */
const FLAGS = { create: ['name', 'role'], revoke: ['name'], list: ['json'] } as const

export type CliIo = { out: (s: string) => void; err: (s: string) => void; env: Record<string, string | undefined> }

function parseFlags(args: string[]): Record<string, string | true> {
  const flags: Record<string, string | true> = {}
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (!a.startsWith('--')) throw new ApiKeyError(`unexpected argument "${a}"`)
    const eq = a.indexOf('=')
    if (eq > 0) flags[a.slice(2, eq)] = a.slice(eq + 1)
    else if (args[i + 1] !== undefined && !args[i + 1]!.startsWith('--')) flags[a.slice(2)] = args[++i]!
    else flags[a.slice(2)] = true
  }
  return flags
}

function actor(): string {
  try {
    return `cli:${userInfo().username}`
  } catch {
    return 'cli'
  }
}

function needString(flags: Record<string, string | true>, name: string): string {
  const v = flags[name]
  if (typeof v !== 'string' || v === '') throw new ApiKeyError(`--${name} is required`)
  return v
}

/** `tx-broadcaster keys ...`; returns the exit code. */
export async function keysCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args
  if (!sub || sub === 'help' || sub === '--help' || sub === '-h') {
    io.out(KEYS_HELP)
    return sub ? 0 : 2
  }
  if (!['create', 'revoke', 'list'].includes(sub)) {
    io.err(`tx-broadcaster keys: unknown command "${sub}"\n\n${KEYS_HELP}`)
    return 2
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(KEYS_HELP)
    return 0
  }
  let flags: Record<string, string | true>
  try {
    flags = parseFlags(rest)
    // A misspelt flag was ignored: "keys list --jsn" printed the table, "keys create --nmae x" said --name is missing.
    const known: readonly string[] = FLAGS[sub as keyof typeof FLAGS]
    const unknown = Object.keys(flags).find((f) => !known.includes(f))
    if (unknown) throw new ApiKeyError(`unknown option --${unknown} (${sub} takes ${known.map((f) => `--${f}`).join(', ')})`)
    // Before the database: a missing or wrong --name or --role was told only after connecting (and migrating a new
    // database), with exit 1, or not at all when the database could not be reached.
    if (sub === 'create' || sub === 'revoke') checkKeyName(needString(flags, 'name'))
    if (sub === 'create' && !ROLES.includes(needString(flags, 'role') as Role)) throw new ApiKeyError(`--role: expected one of ${ROLES.join(', ')}`)
  } catch (err) {
    io.err(`tx-broadcaster keys ${sub}: ${(err as Error).message}\n`)
    return 2
  }
  // Keys may be made before the service's first start: a new database is migrated.
  return withServiceDatabase(io, 'tx-broadcaster keys', `tx-broadcaster keys ${sub}`, { migrateNew: true }, async (sql) => {
    if (sub === 'create') {
      const { key, info } = await createApiKey(sql, { name: needString(flags, 'name'), role: needString(flags, 'role') as Role, actor: actor() })
      io.err(`Created ${info.role} key "${info.name}". It is shown only now; send it as "Authorization: Bearer <key>":\n`)
      io.out(`${key}\n`)
    } else if (sub === 'revoke') {
      const info = await revokeApiKey(sql, { name: needString(flags, 'name'), actor: actor() })
      io.out(`Revoked key "${info.name}" (${info.role}).\n`)
    } else {
      const keys = await listApiKeys(sql)
      if (flags.json) io.out(`${JSON.stringify(keys, null, 2)}\n`)
      else if (keys.length === 0) io.out('No keys in the database (keys in the config file are not listed here).\n')
      else {
        const rows = keys.map((k) => [k.name, k.role, k.created_at.toISOString(), k.revoked_at ? `revoked ${k.revoked_at.toISOString()}` : 'active'])
        const head = ['NAME', 'ROLE', 'CREATED', 'STATUS']
        const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
        for (const r of [head, ...rows]) io.out(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`)
      }
    }
  })
}

import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { z } from 'zod'
import { configSchema, type FileConfig } from './schema.ts'

/** Everything the service needs to start; the only place that reads process.env. */
export type ServiceOptions = {
  /** null in dev mode until the dev chain is up. */
  file: FileConfig | null
  configPath: string | null
  databaseUrl: string | null
  port: number
  host: string
  logLevel: string
  /** No config file: run a local anvil with its funded key, print an admin key. */
  devMode: boolean
  /** No DATABASE_URL: run embedded Postgres under dataDir. */
  embeddedPostgres: boolean
  dataDir: string
}

export class ConfigError extends Error {
  override name = 'ConfigError'
  constructor(
    message: string,
    readonly problems: string[] = [],
  ) {
    super(problems.length ? `${message}\n${problems.map((p) => `  - ${p}`).join('\n')}` : message)
  }
}

/** `chains[0].providers[1].url`, the way users find the line in their file. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p)
  return out || '(root)'
}

export function formatZodIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((i) => `${formatPath(i.path)}: ${i.message}`)
}

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Replaces `${NAME}` in every string with the environment variable; a missing one is an error naming where. A `${`
 * that names no variable (`${FRONTEND-KEY}`, `${ KEY }`, an unclosed `${KEY`) is an error too: it was left in the
 * value as it was, and an API key or webhook secret became that guessable text, silently. `$${` is a literal `${`.
 */
export function substituteEnv(value: unknown, env: Record<string, string | undefined>, path: PropertyKey[] = [], missing: string[] = []): unknown {
  if (typeof value === 'string')
    return value.replace(/\$(\$?)\{([^}]*)(\}?)/g, (whole: string, escaped: string, name: string, closed: string) => {
      if (escaped) return whole.slice(1)
      if (!closed || !VARIABLE_NAME.test(name)) {
        missing.push(`${formatPath(path)}: "${whole}" names no environment variable (\${NAME}: letters, digits and _; $\${ for a literal "\${")`)
        return ''
      }
      const v = env[name]
      if (v === undefined) {
        missing.push(`${formatPath(path)}: environment variable ${name} is not set`)
        return ''
      }
      // A value that is only the variable, set but empty (a secret mounted empty): said so, not "Expected a 32-byte
      // hex private key" or "Invalid url" about a value the file does not show.
      if (v === '' && whole === value) {
        missing.push(`${formatPath(path)}: environment variable ${name} is set but empty`)
        return ''
      }
      return v
    })
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, [...path, i], missing))
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, [...path, k], missing)]))
  return value
}

export function parseConfig(raw: unknown, env: Record<string, string | undefined>): FileConfig {
  const missing: string[] = []
  const substituted = substituteEnv(raw, env, [], missing)
  const parsed = configSchema.safeParse(substituted)
  // Every problem at once: a missing variable, and whatever else is wrong, but not what only follows from the
  // missing variable (the field it left empty).
  const emptied = new Set(missing.map((m) => m.slice(0, m.indexOf(': '))))
  const problems = [...missing, ...(parsed.success ? [] : formatZodIssues(parsed.error.issues).filter((p) => !emptied.has(p.slice(0, p.indexOf(': ')))))]
  if (problems.length || !parsed.success) throw new ConfigError('Invalid configuration', problems)
  return parsed.data
}

export function readConfigFile(path: string, env: Record<string, string | undefined>): FileConfig {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`Cannot read config file ${path}: ${(err as Error).message}`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`Config file ${path} is not valid JSON: ${(err as Error).message}`)
  }
  try {
    const config = parseConfig(raw, env)
    // A relative keystore path is read from beside the config file, wherever the service is started from.
    for (const signer of config.signers) if (signer.keystore !== undefined) signer.keystore = resolve(dirname(path), signer.keystore)
    return config
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`Invalid configuration in ${path}`, err.problems)
    throw err
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** pino's levels; another word failed deep in pino with a stack ("default level:verbose must be included in custom levels"). */
function parseLogLevel(value: string | undefined): string {
  if (value === undefined || value === '') return 'info'
  if (!LOG_LEVELS.includes(value)) throw new ConfigError(`LOG_LEVEL: expected one of ${LOG_LEVELS.join(', ')}, got "${value}"`)
  return value
}

function parsePort(value: string | undefined): number {
  // Blanks around it are an env file's or a manifest's, as Number() took them: " " is no PORT at all.
  const trimmed = value?.trim()
  if (trimmed === undefined || trimmed === '') return 4000
  // Digits only: Number() read " " as 0 (a random port, unsaid), "0x1f90" as 8080 and "1e3" as 1000.
  const port = /^\d{1,5}$/.test(trimmed) ? Number(trimmed) : NaN
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`PORT: expected a port number (0 to 65535, digits only), got "${value}"`)
  return port
}

/** DATABASE_URL's value that asks for embedded Postgres with a config file. */
export const EMBEDDED_DATABASE = 'embedded'

export function loadOptions(argv: string[] = process.argv.slice(2), env: Record<string, string | undefined> = process.env): ServiceOptions {
  // Set but empty is not "unset": a deployment's `--config $CFG` or BROADCASTER_CONFIG=${CFG} whose variable went
  // missing started dev mode (the well-known anvil key, the dev admin key, any CORS origin) on its DATABASE_URL.
  // (An empty one beside --config is beside the point: the argument names the file.)
  const configArg = argv.some((a) => a === '--config' || a.startsWith('--config='))
  if (env.BROADCASTER_CONFIG === '' && !configArg) throw new ConfigError('BROADCASTER_CONFIG is set but empty: name the config file, or unset it for dev mode')
  let configPath: string | null = env.BROADCASTER_CONFIG || null
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--config') {
      const value = argv[++i]
      if (value === undefined || value === '' || value.startsWith('--')) throw new ConfigError('--config needs a path: --config path/to/config.json')
      configPath = value
    } else if (arg.startsWith('--config=')) configPath = arg.slice('--config='.length)
    else throw new ConfigError(`Unknown argument "${arg}". Usage: tx-broadcaster [--config path/to/config.json]`)
  }
  if (configPath !== null && configPath === '') throw new ConfigError('--config needs a path: --config path/to/config.json')
  const file = configPath ? readConfigFile(resolve(configPath), env) : null
  // Embedded Postgres is dev mode's (no config file) or asked for by name. A deployed instance whose DATABASE_URL
  // secret went missing used to start on a private database under ./.data, answer 200 QUEUED, sign with the shared
  // keys at nonces only its own database thought free, and lose every accepted request with its container.
  const embedded = !env.DATABASE_URL || env.DATABASE_URL === EMBEDDED_DATABASE
  if (file && !env.DATABASE_URL)
    throw new ConfigError(
      `DATABASE_URL is not set. With a config file the service needs the Postgres its instances share (DATABASE_URL=postgres://...); ` +
        `DATABASE_URL=${EMBEDDED_DATABASE} runs an embedded Postgres under ./.data on purpose (one instance, its data on this disk only)`,
    )
  const databaseUrl = embedded ? null : env.DATABASE_URL!
  return {
    file,
    configPath: configPath ? resolve(configPath) : null,
    databaseUrl,
    port: parsePort(env.PORT),
    host: env.HOST || (file ? '0.0.0.0' : '127.0.0.1'),
    logLevel: parseLogLevel(env.LOG_LEVEL),
    devMode: !file,
    embeddedPostgres: embedded,
    dataDir: resolve(env.BROADCASTER_DATA_DIR || '.data'),
  }
}

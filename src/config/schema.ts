import { createHash } from 'node:crypto'
import { z } from 'zod'
import { getAddress, isAddress, isHex } from 'viem'

/**
 * The configuration file format (DESIGN.md, "Configuration"). Parsed whole from
 * day one, so that the format users write stays stable as features land.
 */

/**
 * An amount in wei: a decimal string, or a JSON number that is a safe non-negative integer. Any other value gets
 * this one message (a fractional number said only "Invalid input", and 1e21 "Too big: expected int").
 */
const weiString = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const s = typeof v === 'number' ? (Number.isSafeInteger(v) && v >= 0 ? String(v) : null) : v
  if (s === null || !/^\d+$/.test(s)) {
    ctx.addIssue({
      code: 'custom',
      message: `Expected a non-negative integer amount in wei as a decimal string, such as "1000000000000000000"; got ${JSON.stringify(v)}${typeof v === 'number' && Math.abs(v) > Number.MAX_SAFE_INTEGER ? ' (a JSON number above 2^53 loses digits)' : ''}`,
    })
    return z.NEVER
  }
  return BigInt(s)
})

/** As the API takes them (parseFields.ts): mixed case must be a valid EIP-55 checksum, so a typo in one is caught. */
const address = z
  .string()
  .refine((v) => isAddress(v, { strict: false }), 'Invalid address')
  .refine((v) => {
    const digits = v.slice(2)
    return digits === digits.toLowerCase() || digits === digits.toUpperCase() || isAddress(v, { strict: true })
  }, 'Wrong EIP-55 checksum (mixed case must be the checksummed form; a typo? all lowercase skips the check)')
  .transform((v) => getAddress(v))

const providerSchema = z.strictObject({
  name: z.string().min(1).regex(/^[\w.-]+$/, 'Use letters, digits, "-", "_" or "."'),
  // HTTP(S) only: reads, sends and batching all go over viem's http transport (a ws:// provider never worked).
  url: z.url({ protocol: /^https?$/, error: 'Expected an http:// or https:// URL (WebSocket providers are not supported)' }),
  weight: z.number().int().positive().max(100).default(1),
})

const feesSchema = z.strictObject({
  model: z.enum(['eip1559', 'legacy']).default('eip1559'),
  /** Hard ceiling for maxFeePerGas (or gasPrice on legacy chains), in wei. */
  maxFeePerGasCap: weiString.refine((v) => v > 0n, 'Must be above 0: a cap of 0 wei lets nothing be sent').default(500_000_000_000n),
  /**
   * Most a transaction's whole fee (gas limit × max fee, in wei) may be, as nodes check it: geth's rpc.txfeecap, 1 coin
   * by default, as its forks' and erigon's). A transaction with more gas is signed at a lower max fee, never over it.
   * null: no such cap (a node started with --rpc.txfeecap 0).
   */
  maxTxFeeWei: weiString.refine((v) => v >= 16_777_216n, 'At least 16777216 wei (1 wei per gas at the largest gas limit, 2^24); it is in wei, not gwei; null for no cap').nullable().default(1_000_000_000_000_000_000n),
  /** Every replacement raises both fee fields by at least this percent (geth needs 10 %). */
  bumpPercent: z.number().min(10).max(1000).default(12.5),
  bumpAfterMs: z.number().int().min(100).default(30_000),
  /** Percent added on top of eth_estimateGas, so state drift between estimate and inclusion does not run out of gas. */
  gasLimitMarginPercent: z.number().min(0).max(200).default(20),
})

/** Checked when a request is accepted; a request outside it is refused with 400 and the field. */
const policySchema = z.strictObject({
  /** Only these recipients (contract creation is refused too when set). */
  allowedTo: z.array(address).min(1).optional(),
  /** Wei, decimal string. */
  maxValue: weiString.optional(),
  /** Applies to a gasLimit given in the request. */
  maxGasLimit: weiString.refine((v) => v >= 21_000n, 'At least 21000: every transaction needs that much gas').optional(),
})

/** How each provider of a chain is called and judged (src/chain/providerHealth.ts). */
const rpcSchema = z.strictObject({
  /** One request to one provider fails after this long, so a hanging provider cannot stall reads or sends for longer. */
  timeoutMs: z.number().int().min(100).max(60_000).default(3_000),
  /** How often each provider is asked for its chain id and head: latency, lag, and whether a down one is back. */
  checkIntervalMs: z.number().int().min(100).max(600_000).default(2_000),
  /** Failed exchanges in a row (connection errors, HTTP 5xx/429, rate limits) after which a provider is down; one timeout is enough. */
  downAfterFailures: z.number().int().min(1).max(1_000).default(3),
  /** A down provider is skipped this long, then retried; doubling (up to maxDownForMs) each time it still fails. */
  downForMs: z.number().int().min(100).max(600_000).default(5_000),
  /** Ceiling of that doubling. */
  maxDownForMs: z.number().int().min(100).max(3_600_000).default(60_000),
  /** A provider whose head is further behind the best one is degraded and left out of reads. */
  maxLagBlocks: z.number().int().min(0).max(10_000).default(5),
})

const chainSchema = z.strictObject({
  // GraphQL's Int (the API's chainId) and the database's chain_id columns are 32-bit.
  chainId: z.number().int().positive().max(2_147_483_647, 'chain ids above 2147483647 are not supported (the API and the database take 32-bit chain ids)'),
  name: z.string().min(1),
  providers: z.array(providerSchema).min(1, 'At least one provider is needed'),
  confirmations: z.number().int().min(1).max(1000).default(12),
  blockTimeMs: z.number().int().positive().default(12_000),
  fees: feesSchema.prefault({}),
  rpc: rpcSchema.prefault({}),
  // A link on the dashboard: http(s) only (a javascript: URL would run in an admin's session when clicked).
  explorerUrl: z.url({ protocol: /^https?$/, error: 'Expected an http:// or https:// URL' }).optional(),
  policy: policySchema.optional(),
  /** The native currency's symbol, for amounts on the dashboard; default: viem's for the chain id, else ETH. */
  currencySymbol: z.string().regex(/^[\w.$-]{1,11}$/, 'Expected a short symbol such as "POL"').optional(),
  /** EIP-7623 (Prague): requests' gasLimit must also cover the calldata floor. false for a chain before Prague. */
  calldataFloor: z.boolean().default(true),
  /**
   * EIP-7825 (Osaka): no transaction's gas limit is over 2^24, so the gas margin never lifts one past it. false for a
   * chain without that cap (Arbitrum allows 32M): a 15M-gas estimate was signed with its margin cut to 12 %, a 20M one
   * with none, and state drift then ran it out of gas, its fee paid.
   */
  txGasLimitCap: z.boolean().default(true),
  /**
   * How long the sign stage keeps a QUEUED request it has set aside (no nonce is spent meanwhile; it is looked at
   * again every few seconds) before it ends FAILED: `fundsMs` while the signer cannot pay for it
   * (INSUFFICIENT_FUNDS), `estimateMs` while the node refuses its gas estimate in words we do not recognize
   * (GAS_ESTIMATION_FAILED; a recognized refusal, such as a revert, fails it at once), `signMs` while its remote
   * signer refuses to sign it but signs the signer's other requests (SIGNER_REFUSED; once so found, later refusals
   * need no fresh evidence, and it fails at the first refusal after the patience). `sendMs`: how long a
   * PENDING transaction that no provider took, refused in words we do not recognize and held by no node, is sent
   * again (same nonce, same bytes) before it ends FAILED with SEND_REFUSED and its nonce is handed on; it runs
   * only while other transactions of the chain get through.
   */
  patience: z
    .strictObject({
      fundsMs: z.number().int().min(0).max(30 * 24 * 3_600_000).default(3_600_000),
      estimateMs: z.number().int().min(0).max(24 * 3_600_000).default(600_000),
      signMs: z.number().int().min(0).max(24 * 3_600_000).default(600_000),
      sendMs: z.number().int().min(0).max(24 * 3_600_000).default(600_000),
    })
    .prefault({}),
})

const hexKey = z
  .string()
  .refine((v) => isHex(v) && v.length === 66, 'Expected a 32-byte hex private key (0x + 64 hex digits)')

const signerSchema = z
  .strictObject({
    name: z.string().min(1),
    chainIds: z.array(z.number().int().positive()).min(1),
    privateKey: hexKey.optional(),
    keystore: z.string().min(1).optional(),
    password: z.string().optional(),
    /** A JSON-RPC signer answering eth_signTransaction (Web3Signer, Clef); timeoutMs bounds each call (default 10 s). */
    remote: z.strictObject({ url: z.url({ protocol: /^https?$/, error: 'Expected an http:// or https:// URL' }), address, timeoutMs: z.number().int().min(100).max(120_000).optional() }).optional(),
  })
  .superRefine((s, ctx) => {
    const kinds = [s.privateKey, s.keystore, s.remote].filter((k) => k !== undefined).length
    if (kinds !== 1)
      ctx.addIssue({ code: 'custom', message: 'Give exactly one of privateKey, keystore or remote' })
    if (s.keystore !== undefined && s.password === undefined)
      ctx.addIssue({ code: 'custom', path: ['password'], message: 'A keystore needs a password' })
    // Passed, it failed the start with "has the same address as signer <itself>", naming no setting.
    s.chainIds.forEach((id, j) => {
      if (s.chainIds.indexOf(id) !== j) ctx.addIssue({ code: 'custom', path: ['chainIds', j], message: `Duplicate chainId ${id}` })
    })
  })

const apiKeySchema = z.strictObject({
  name: z.string().min(1),
  role: z.enum(['reader', 'submitter', 'admin']),
  // A key from a secret file often ends in a newline: no Authorization header can carry it, and every request with
  // it was refused as unknown while the config looked valid.
  key: z
    .string()
    .min(16, 'API keys must be at least 16 characters')
    .refine((v) => !/\s/.test(v), 'API keys cannot contain spaces or line breaks (a secret file\'s trailing newline?)'),
  /** Web pages (origins, e.g. "https://app.example.com") that may use this key from a browser (CORS). */
  allowedOrigins: z
    .array(
      z.string().refine((v) => {
        try {
          const u = new URL(v)
          return /^https?:$/.test(u.protocol) && u.origin === v.replace(/\/$/, '').toLowerCase()
        } catch {
          return false
        }
      }, 'Expected an origin: scheme, host and port only, e.g. "https://app.example.com"'),
    )
    .optional(),
})

const webhookSchema = z.strictObject({
  /** Shown in logs and metrics instead of the URL (which may carry credentials); keys its queue. Default: derived from the url and events (webhookName). */
  name: z.string().regex(/^[\w.-]{1,64}$/, 'Use letters, digits, "-", "_" or "." (at most 64)').optional(),
  url: z.url({ protocol: /^https?$/, error: 'Invalid url' }),
  /** Statuses to announce (a change *to* one of them); all when left out. */
  events: z.array(z.enum(['QUEUED', 'PENDING', 'INCLUDED', 'CONFIRMED', 'REVERTED', 'FAILED', 'CANCELLED'])).min(1).optional(),
  /** HMAC-SHA256 key for the X-Webhook-Signature header. */
  secret: z.string().min(16, 'Webhook secrets must be at least 16 characters'),
})

export const configSchema = z
  .strictObject({
    chains: z.array(chainSchema).min(1, 'At least one chain is needed'),
    signers: z.array(signerSchema).min(1, 'At least one signer is needed'),
    apiKeys: z.array(apiKeySchema).default([]),
    auth: z.enum(['enabled', 'disabled']).default('enabled'),
    /**
     * With auth disabled: the host names (besides IP addresses and localhost) clients may reach the API at. Any
     * other name may be a DNS rebinding (another site's name pointed here, its page then acting as admin).
     */
    allowedHosts: z.array(z.string().regex(/^[a-z0-9.-]+$/i, 'A host name without port or scheme, e.g. "relayer.internal"')).default([]),
    /**
     * Connections each process keeps open to Postgres for its work (every query but the watcher's lock, the job
     * queue's 4 and the 1 that listens for changes). Lower it to fit more instances under the server's
     * max_connections; work then waits its turn for a connection.
     */
    database: z
      .strictObject({
        maxConnections: z.number().int().min(2, 'At least 2: a sign batch holds one until it commits').max(1_000).default(20),
      })
      .prefault({}),
    /**
     * /metrics answers without a key by default, as Prometheus targets usually do. On a port the internet reaches
     * (browsers call the API), `requireKey` asks for any valid API key (a reader's will do): the series tell
     * request volumes, signers' balances and provider names.
     */
    metrics: z.strictObject({ requireKey: z.boolean().default(false) }).prefault({}),
    /** At most a century: larger values overflowed Postgres timestamps in every prune. */
    retentionDays: z.number().int().positive().max(36_500, 'At most 36500 (100 years)').default(30),
    webhooks: z.array(webhookSchema).default([]),
    /** Per API key and per instance (token bucket), plus a cap on the key's unfinished transactions across instances. */
    limits: z
      .strictObject({
        requestsPerSecond: z.number().positive().default(200),
        burst: z.number().int().positive().default(400),
        maxInFlightPerKey: z.number().int().positive().default(10_000),
        /** Subscriptions (WebSocket operations and SSE streams) a key may hold open at once, per instance. */
        maxSubscriptionsPerKey: z.number().int().positive().default(100),
        /** WebSocket connections a key may hold open at once, per instance: each holds a socket and its memory. */
        maxWebSocketsPerKey: z.number().int().positive().default(100),
      })
      .prefault({}),
    /**
     * Where the stages after accept (sign, send, watch, bump, reconcile, webhooks) run. "inline": in the API's
     * process. "separate": in a child process at a lower CPU priority (niceness `nice`), so under CPU
     * contention the kernel answers API requests first; it costs a second Node process's memory.
     */
    pipeline: z
      .strictObject({
        process: z.enum(['inline', 'separate']).default('inline'),
        nice: z.number().int().min(0).max(19).default(10),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    const chainIds = new Set<number>()
    c.chains.forEach((chain, i) => {
      if (chainIds.has(chain.chainId))
        ctx.addIssue({ code: 'custom', path: ['chains', i, 'chainId'], message: `Duplicate chainId ${chain.chainId}` })
      chainIds.add(chain.chainId)
      const names = new Set<string>()
      chain.providers.forEach((p, j) => {
        if (names.has(p.name))
          ctx.addIssue({ code: 'custom', path: ['chains', i, 'providers', j, 'name'], message: `Duplicate provider name "${p.name}"` })
        names.add(p.name)
      })
    })
    const signerNames = new Set<string>()
    c.signers.forEach((s, i) => {
      // Logs, errors and metrics name signers: two with one name could not be told apart.
      if (signerNames.has(s.name)) ctx.addIssue({ code: 'custom', path: ['signers', i, 'name'], message: `Duplicate signer name "${s.name}"` })
      signerNames.add(s.name)
      s.chainIds.forEach((id, j) => {
        if (!chainIds.has(id))
          ctx.addIssue({ code: 'custom', path: ['signers', i, 'chainIds', j], message: `Unknown chainId ${id}: not in "chains"` })
      })
    })
    // With auth disabled every request is let in as admin: a key asked for would be a promise not kept.
    if (c.metrics.requireKey && c.auth === 'disabled')
      ctx.addIssue({ code: 'custom', path: ['metrics', 'requireKey'], message: 'Needs "auth": "enabled" (with auth disabled, no key is checked anywhere)' })
    const hookNames = new Set<string>()
    c.webhooks.forEach((w, i) => {
      const name = webhookName(w)
      if (hookNames.has(name))
        ctx.addIssue({ code: 'custom', path: ['webhooks', i, 'name'], message: `Duplicate webhook name "${name}"${w.name ? '' : ' (the same url and events as another: give each a name)'}` })
      hookNames.add(name)
    })
    const keyNames = new Set<string>()
    const keyValues = new Map<string, string>()
    c.apiKeys.forEach((k, i) => {
      if (keyNames.has(k.name))
        ctx.addIssue({ code: 'custom', path: ['apiKeys', i, 'name'], message: `Duplicate API key name "${k.name}"` })
      keyNames.add(k.name)
      // Two entries with one value: the first listed decided its role (a "reader" given the admin's value was an
      // admin). The value is never echoed.
      const first = keyValues.get(k.key)
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['apiKeys', i, 'key'], message: `The same key as API key "${first}": give each its own` })
      else keyValues.set(k.key, k.name)
    })
  })

export type FileConfig = z.output<typeof configSchema>
export type ChainConfig = FileConfig['chains'][number]
export type ProviderConfig = ChainConfig['providers'][number]
export type SignerConfig = FileConfig['signers'][number]
export type ApiKeyConfig = FileConfig['apiKeys'][number]
export type WebhookConfig = FileConfig['webhooks'][number]

/**
 * A webhook's name keys its queued deliveries, so it must stay the same across restarts and config edits: the
 * default comes from its URL and status filter, not its place in the list (removing or reordering webhooks
 * sent queued deliveries to the wrong receiver, signed with its secret).
 */
export function webhookName(w: { name?: string | undefined; url: string; events?: readonly string[] | undefined }): string {
  return w.name ?? `webhook-${createHash('sha256').update(`${w.url} ${[...(w.events ?? [])].sort().join(',')}`).digest('hex').slice(0, 12)}`
}

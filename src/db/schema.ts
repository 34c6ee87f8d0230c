import { sql } from 'drizzle-orm'
import {
  bigint,
  bigserial,
  boolean,
  check,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core'

/**
 * The source of truth. Jobs only carry ids; every invariant DESIGN.md lists is a
 * constraint here, so a bug in code cannot break it silently.
 * Amounts are numeric(78,0): a uint256 fits, JavaScript numbers never touch them.
 */

const wei = (name: string) => numeric(name, { precision: 78, scale: 0 })
const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' })

export const transactions = pgTable(
  'transactions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** Arrival order: signing takes queued rows in this order; lists page on it. */
    seq: bigint('seq', { mode: 'number' }).generatedAlwaysAsIdentity().notNull(),
    chainId: integer('chain_id').notNull(),
    /** Checksummed signer address, chosen at accept time so the sign job key is known. */
    signer: text('signer').notNull(),
    /**
     * The client named the signer (`from`): it signs with no other. Otherwise the service chose it, and the sign
     * stage may hand the row to another of the chain's signers while it is QUEUED (the chosen one cannot pay).
     */
    signerPinned: boolean('signer_pinned').notNull().default(true),
    to: text('to'),
    data: text('data').notNull().default('0x'),
    value: wei('value').notNull().default('0'),
    /** As requested; null means estimate. */
    gasLimit: wei('gas_limit'),
    status: text('status').notNull().default('QUEUED'),
    nonce: bigint('nonce', { mode: 'number' }),
    /** 1 for the first execution; retryTransaction starts the next one. */
    execution: integer('execution').notNull().default(1),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    apiKeyName: text('api_key_name').notNull().default(''),
    idempotencyKey: text('idempotency_key'),
    validUntil: ts('valid_until'),
    /** REQUEST: a client's; FILLER: a zero-value self-transfer the service sent to fill a nonce hole. */
    kind: text('kind').notNull().default('REQUEST'),
    /**
     * While QUEUED and set aside by the sign stage (the signer cannot pay for it yet, or the node refused its gas
     * estimate in words we do not know): since when, for that reason. The reason's patience runs from here.
     */
    waitingSince: ts('waiting_since'),
    /**
     * The remote signer that said "no" to this execution (a Clef rule, a Web3Signer policy): it never moves to
     * another signer, whatever its later notes say. Cleared when it is signed after all, or queued again.
     */
    refusedBy: text('refused_by'),
    /** Last time any attempt of it was handed to the providers: paces rebroadcasts and bumps. */
    lastSentAt: ts('last_sent_at'),
    /** Set while the transaction sits at the chain's fee cap, so operators can see it. */
    atFeeCap: timestamp('at_fee_cap', { withTimezone: true }),
    minedHash: text('mined_hash'),
    blockNumber: bigint('block_number', { mode: 'number' }),
    blockHash: text('block_hash'),
    receiptStatus: text('receipt_status'),
    gasUsed: wei('gas_used'),
    effectiveGasPrice: wei('effective_gas_price'),
    /** The receipt's contractAddress: what a deployment (no `to`) created. */
    contractAddress: text('contract_address'),
    /** Why it reverted, from replaying its call at its block (status 0 receipts only; null when not found). */
    revertReason: text('revert_reason'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    /**
     * When it entered its status; null until its first change (then created_at is when). Set by a trigger on
     * every change of status, so no writer can forget it: txb_oldest_unfinished_seconds counts from it.
     */
    statusAt: ts('status_at'),
    firstSentAt: ts('first_sent_at'),
    includedAt: ts('included_at'),
    finalAt: ts('final_at'),
  },
  (t) => [
    uniqueIndex('transactions_seq_key').on(t.seq),
    // A nonce is held by at most one transaction per signer and chain.
    uniqueIndex('transactions_signer_nonce_key').on(t.chainId, t.signer, t.nonce).where(sql`${t.nonce} IS NOT NULL`),
    uniqueIndex('transactions_idempotency_key').on(t.apiKeyName, t.idempotencyKey).where(sql`${t.idempotencyKey} IS NOT NULL`),
    // The sign stage's scan: queued rows of one signer in arrival order.
    index('transactions_queued_idx').on(t.chainId, t.signer, t.seq).where(sql`${t.status} = 'QUEUED'`),
    // The signers query: rows waiting for their remote signer (few, unless one is down), not every QUEUED row.
    index('transactions_signer_wait_idx')
      .on(t.chainId, t.signer)
      .where(sql`${t.status} = 'QUEUED' AND ${t.errorCode} IN ('SIGNER_UNAVAILABLE', 'SIGNER_REFUSED')`),
    // The watcher's and sweeps' scan of in-flight rows.
    index('transactions_inflight_idx').on(t.chainId, t.status).where(sql`${t.status} IN ('PENDING', 'INCLUDED')`),
    // Lists: newest first, optionally by status, chain or signer.
    index('transactions_status_seq_idx').on(t.status, t.seq),
    index('transactions_chain_seq_idx').on(t.chainId, t.seq),
    index('transactions_signer_seq_idx').on(t.signer, t.seq),
    // Per-key in-flight cap (abuse limits): counts one key's unfinished rows.
    index('transactions_key_inflight_idx').on(t.apiKeyName).where(sql`${t.status} IN ('QUEUED', 'PENDING', 'INCLUDED')`),
    // Retention: final rows oldest first.
    index('transactions_final_at_idx').on(t.finalAt).where(sql`${t.finalAt} IS NOT NULL`),
    // The watcher's look for failed requests mined anyway (the last day's, per signer): with only the index above it
    // read every final row of the day, millions at 100/s, per signer and sweep. Built CONCURRENTLY after start-up
    // (db/onlineIndexes.ts), not by its migration: a build on a big table held up every write for its duration.
    index('transactions_failed_recent_idx').on(t.chainId, t.signer, t.finalAt).where(sql`${t.status} = 'FAILED'`),
    check('transactions_status_valid', sql`${t.status} IN ('QUEUED','PENDING','INCLUDED','CONFIRMED','REVERTED','FAILED','CANCELLED')`),
    // Status ties to fields (DESIGN.md, "Database invariants").
    check(
      'transactions_status_nonce',
      sql`(${t.status} IN ('QUEUED','FAILED') AND ${t.nonce} IS NULL) OR (${t.status} IN ('PENDING','INCLUDED','CONFIRMED','REVERTED','CANCELLED') AND ${t.nonce} IS NOT NULL)`,
    ),
    check('transactions_final_at', sql`(${t.status} IN ('CONFIRMED','REVERTED','FAILED','CANCELLED')) = (${t.finalAt} IS NOT NULL)`),
    check('transactions_included_block', sql`${t.status} NOT IN ('INCLUDED','CONFIRMED','REVERTED','CANCELLED') OR ${t.blockNumber} IS NOT NULL`),
    check('transactions_value_nonneg', sql`${t.value} >= 0`),
    check('transactions_kind_valid', sql`${t.kind} IN ('REQUEST','FILLER')`),
  ],
)

/** One row per signed version of a transaction, written before it is ever sent. */
export const attempts = pgTable(
  'attempts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    // No foreign key, as for events: every attempt is written by a database transaction that holds its
    // transaction's row (FOR UPDATE), so the check could never fail. It locked that row once more (FOR KEY SHARE,
    // a WAL record each): a third of the time of storing a signed batch. Pruning deletes a transaction's attempts
    // with it.
    transactionId: uuid('transaction_id').notNull(),
    execution: integer('execution').notNull(),
    chainId: integer('chain_id').notNull(),
    signer: text('signer').notNull(),
    nonce: bigint('nonce', { mode: 'number' }).notNull(),
    hash: text('hash').notNull(),
    raw: text('raw').notNull(),
    gasLimit: wei('gas_limit').notNull(),
    maxFeePerGas: wei('max_fee_per_gas'),
    maxPriorityFeePerGas: wei('max_priority_fee_per_gas'),
    gasPrice: wei('gas_price'),
    /** REQUEST: the client's call; CANCEL: a zero-value self-transfer replacing it at the same nonce. */
    purpose: text('purpose').notNull().default('REQUEST'),
    /** SIGNED (stored, maybe not sent), SENT, MINED, REPLACED, REJECTED. */
    status: text('status').notNull().default('SIGNED'),
    /** Each provider's answer: [{ name, outcome, error, at }]. */
    providers: jsonb('providers').notNull().default(sql`'[]'::jsonb`),
    createdAt: ts('created_at').notNull().defaultNow(),
    sentAt: ts('sent_at'),
  },
  (t) => [
    uniqueIndex('attempts_hash_key').on(t.hash),
    index('attempts_transaction_idx').on(t.transactionId, t.id),
    check('attempts_status_valid', sql`${t.status} IN ('SIGNED','SENT','MINED','REPLACED','REJECTED')`),
    check('attempts_purpose_valid', sql`${t.purpose} IN ('REQUEST','CANCEL')`),
    // Attempts of one transaction never change nonce within an execution.
    index('attempts_nonce_idx').on(t.chainId, t.signer, t.nonce),
  ],
)

/** Per-signer nonce state. Its row lock serializes nonce assignment across all instances. */
export const signerNonces = pgTable(
  'signer_nonces',
  {
    chainId: integer('chain_id').notNull(),
    signer: text('signer').notNull(),
    nextNonce: bigint('next_nonce', { mode: 'number' }).notNull(),
    /**
     * Since when the sign stage has found the signer unable to pay for a request (cleared once it can pay again):
     * new requests that name no signer go to the chain's other signers meanwhile.
     */
    shortOfFundsAt: ts('short_of_funds_at'),
    /**
     * The balance the sign stage read when it last set a request aside for lack of funds: once the signer holds
     * more, its requests waiting for funds are looked at again at once, not on their set-aside schedule.
     */
    fundsSeenWei: wei('funds_seen_wei'),
    /**
     * A remote signer's (Web3Signer, Clef) failing to sign, since when and its last answer, as the sign and bump
     * stages last found it (a refusal of one request is not a failure); cleared by a signature it makes.
     */
    remoteFailingSince: ts('remote_failing_since'),
    remoteError: text('remote_error'),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.chainId, t.signer] }), check('signer_nonces_nonneg', sql`${t.nextNonce} >= 0`)],
)

/** Every status change, in order: the dashboard's timeline and the audit trail. */
export const transactionEvents = pgTable(
  'transaction_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    // No foreign key: an event is written in the same database transaction as the status change it
    // records, on a row that transaction holds, so the check could never fail; it cost one trigger
    // query per event (four per request). Pruning deletes a transaction's events with it.
    transactionId: uuid('transaction_id').notNull(),
    fromStatus: text('from_status'),
    toStatus: text('to_status').notNull(),
    /** Who did it: "system" or an API key name. */
    actor: text('actor').notNull().default('system'),
    detail: jsonb('detail'),
    at: ts('at').notNull().defaultNow(),
  },
  (t) => [
    index('transaction_events_tx_idx').on(t.transactionId, t.id),
    // By time, for `webhooks replay --since`: a BRIN index (the table is written in time order) costs almost
    // nothing to keep, where a scan of 30 days of events was billions of rows on the primary.
    index('transaction_events_at_brin').using('brin', t.at),
  ],
)

/** Where each chain's watcher is: the last block it processed, to notice reorgs and resume after restarts. */
export const chainCursors = pgTable('chain_cursors', {
  chainId: integer('chain_id').primaryKey(),
  blockNumber: bigint('block_number', { mode: 'number' }).notNull(),
  blockHash: text('block_hash').notNull(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
})

/**
 * API keys created with `tx-broadcaster keys create` (config keys live in the config file).
 * Only the SHA-256 of a key is stored: the key itself is printed once and never kept.
 */
export const apiKeys = pgTable(
  'api_keys',
  {
    name: text('name').primaryKey(),
    role: text('role').notNull(),
    /** Hex SHA-256 of the key. */
    keyHash: text('key_hash').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    revokedAt: ts('revoked_at'),
  },
  (t) => [uniqueIndex('api_keys_key_hash_key').on(t.keyHash), check('api_keys_role_valid', sql`${t.role} IN ('reader','submitter','admin')`)],
)

/** Security-relevant operator actions (API keys created and revoked), who did them and when. */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: ts('at').notNull().defaultNow(),
    /** An API key name, or "cli:<os user>" for the command line. */
    actor: text('actor').notNull(),
    /** e.g. api_key.created, api_key.revoked */
    action: text('action').notNull(),
    subject: text('subject'),
    detail: jsonb('detail'),
  },
  (t) => [index('audit_events_at_idx').on(t.at)],
)

/**
 * Status changes waiting to be turned into webhook deliveries. A trigger on
 * transaction_events (see the migration) adds each status change here in the same
 * transaction, so none is missed; the webhook dispatcher takes rows out and enqueues
 * one pg-boss delivery job per matching webhook, in one transaction.
 */
export const webhookOutbox = pgTable('webhook_outbox', {
  eventId: bigint('event_id', { mode: 'number' }).primaryKey(),
})

/**
 * The status changes some running instance's webhook wants (`to_status`), derived from webhook_registry
 * whenever an instance records its webhooks there. The outbox trigger records only these, so a service without webhooks writes no
 * outbox rows at all (they were 4 inserts and 4 deletes per transaction).
 */
export const webhookStatuses = pgTable('webhook_statuses', {
  toStatus: text('to_status').primaryKey(),
})

/**
 * The webhooks each running instance has in its config (a row per instance and webhook, refreshed every minute
 * while it runs, and counted for 10 minutes after: not deleted at a stop, so changes made during a restart are
 * still recorded). The outbox trigger's statuses and the dispatcher's jobs come from all of them,
 * not from the one instance's config: during a rolling deploy that adds a webhook, or beside an instance run
 * without webhooks, the others' deliveries went missing (the last instance started decided for all).
 */
export const webhookRegistry = pgTable(
  'webhook_registry',
  {
    instanceId: uuid('instance_id').notNull(),
    name: text('name').notNull(),
    /** The statuses it wants; null for all. */
    events: text('events').array(),
    seenAt: timestamp('seen_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.instanceId, t.name] })],
)

/**
 * How many transactions each (chain, signer) has in each status, for the dashboard's tab counts
 * (transactionCounts). Counting the transactions table instead reads every row (372 ms at a million
 * rows, on every dashboard refresh). Statement triggers on transactions (see the migration) append
 * the changes to status_count_deltas, insert-only so writers never wait on each other; a loop folds
 * them in here (store/foldStatusCounts.ts). The count is this plus the deltas not folded yet.
 */
export const statusCounts = pgTable(
  'status_counts',
  {
    chainId: integer('chain_id').notNull(),
    signer: text('signer').notNull(),
    status: text('status').notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
    /**
     * How many times transactions entered the status, ever: only rises (retention and retries lower `count`, not
     * this), so it is a counter an alert can take rate() or increase() of (txb_transactions_entered_total).
     */
    entered: bigint('entered', { mode: 'number' }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.chainId, t.signer, t.status] })],
)

/** Changes to status_counts not folded in yet: one row per (chain, signer, status) per statement that changed any. */
export const statusCountDeltas = pgTable('status_count_deltas', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  chainId: integer('chain_id').notNull(),
  signer: text('signer').notNull(),
  status: text('status').notNull(),
  delta: bigint('delta', { mode: 'number' }).notNull(),
  /** Rows that entered the status in the statement (a change of status; not a move to another signer or chain). */
  entered: bigint('entered', { mode: 'number' }).notNull().default(0),
})

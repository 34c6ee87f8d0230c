import type { ComponentChildren } from 'preact'
import { useContext, useEffect, useRef, useState } from 'preact/hooks'
import { ApiError, DETAIL_FIELDS, FINAL, gql, type Attempt, type Live, type Role, type TxDetail, type TxEvent } from './api.ts'
import { Age, ChainsContext, CopyButton, Gwei, Hex, Spinner, StatusBadge, useCurrency, useExplorer } from './components.tsx'
import { dateTime, formatInt, formatValue, grouped, UUID_RE } from './format.ts'

type Phase = { kind: 'loading' } | { kind: 'ready' } | { kind: 'missing'; message: string } | { kind: 'error'; error: ApiError }
type ActionResult = { ok: boolean; text: string }

const TX_QUERY = `query Tx($id: ID!) { transaction(id: $id) { ${DETAIL_FIELDS} } }`
/**
 * The subscription only says "this one changed"; the page then re-reads it with a query. (A subscription's
 * payload may carry attempts and events that are stale: the server caches them per subscription.)
 */
const TX_SUBSCRIPTION = `subscription TxChanged($id: ID!) { transactionUpdated(id: $id) { id status updatedAt } }`
/** Provider answers to rebroadcasts can change without a status change: while in flight, re-read now and then. */
const IN_FLIGHT_POLL_MS = 5000

/** The newer read of the same transaction (a read of another one, or an older read, changes nothing). */
const later = (next: TxDetail, prev: TxDetail | null) => !prev || (next.id === prev.id && Date.parse(next.updatedAt) >= Date.parse(prev.updatedAt))

export function DetailView(props: { apiKey: string; live: Live; id: string; role: Role; onForbidden: () => void; backHref: string }) {
  const { apiKey, live, id, role, onForbidden, backHref } = props
  const [tx, setTx] = useState<TxDetail | null>(null)
  const [phase, setPhase] = useState<Phase>({ kind: 'loading' })
  const [busy, setBusy] = useState<'retry' | 'cancel' | null>(null)
  const [confirmCancel, setConfirmCancel] = useState(false)
  const [result, setResult] = useState<ActionResult | null>(null)
  const chains = useContext(ChainsContext)
  const explorer = useExplorer()
  const currency = useCurrency()
  const validId = UUID_RE.test(id)
  /** The transaction the page is on now: a read started for an earlier one (a slow poll) must not land here. */
  const shown = useRef(id)
  shown.current = id

  const load = async (signal?: AbortSignal) => {
    try {
      const data = await gql<{ transaction: TxDetail | null }>(apiKey, TX_QUERY, { id }, { signal })
      if (shown.current !== id) return
      if (!data.transaction) return setPhase({ kind: 'missing', message: `No transaction ${id}.` })
      setTx((prev) => (later(data.transaction!, prev) ? data.transaction : prev))
      setPhase({ kind: 'ready' })
    } catch (err) {
      if ((err as Error).name === 'AbortError' || shown.current !== id) return
      // With the transaction shown, this is a failed re-read: it stays, under a notice (see below).
      setPhase({ kind: 'error', error: err instanceof ApiError ? err : new ApiError(String(err), 'ERROR') })
    }
  }

  useEffect(() => {
    setTx(null)
    setResult(null)
    setConfirmCancel(false)
    if (!validId) return setPhase({ kind: 'missing', message: `"${id}" is not a transaction id (a UUID).` })
    setPhase({ kind: 'loading' })
    const abort = new AbortController()
    let reread: ReturnType<typeof setTimeout> | undefined
    // Refused (the key holding all the subscriptions it may), it is made again, and the page re-read once taken:
    // before, the refusal was dropped and a final transaction's page never changed again (retried elsewhere, say).
    const unsubscribe = live.watch(
      TX_SUBSCRIPTION,
      { id },
      () => {
        // A burst of changes (PENDING, INCLUDED, CONFIRMED within a block or two) costs one or two reads.
        reread ??= setTimeout(() => {
          reread = undefined
          void load(abort.signal)
        }, 50)
      },
      () => void load(abort.signal),
    )
    const offReconnect = live.onReconnect(() => void load())
    void load(abort.signal)
    return () => {
      abort.abort()
      clearTimeout(reread)
      unsubscribe()
      offReconnect()
    }
  }, [apiKey, live, id])

  const inFlight = tx != null && !FINAL.includes(tx.status)
  useEffect(() => {
    if (!inFlight) return
    const t = setInterval(() => void load(), IN_FLIGHT_POLL_MS)
    return () => clearInterval(t)
  }, [inFlight, id, apiKey])

  const act = async (kind: 'retry' | 'cancel') => {
    // The transaction on the screen, which the admin chose: never one the URL moved on to meanwhile.
    const target = tx?.id
    const execution = tx?.execution
    if (!target || target !== shown.current) return
    setBusy(kind)
    setResult(null)
    setConfirmCancel(false)
    try {
      // A retry names the execution on the screen: a second click (or a second admin's) after it went out is
      // answered with the transaction as it is, not a third execution.
      const data =
        kind === 'retry'
          ? await gql<{ done: TxDetail }>(apiKey, `mutation Act($id: ID!, $execution: Int) { done: retryTransaction(id: $id, execution: $execution) { ${DETAIL_FIELDS} } }`, {
              id: target,
              execution,
            })
          : await gql<{ done: TxDetail }>(apiKey, `mutation Act($id: ID!) { done: cancelTransaction(id: $id) { ${DETAIL_FIELDS} } }`, { id: target })
      const t = data.done
      if (shown.current !== target) return
      setTx((prev) => (later(t, prev) ? t : prev))
      setResult({
        ok: true,
        text:
          kind === 'retry'
            ? `Retried: execution ${t.execution} was queued; this page follows it live.`
            : t.status === 'PENDING'
              ? `Cancel sent: a zero-value self-transfer replaces it at nonce ${t.nonce}; it ends CANCELLED only if that replacement mines.`
              : `Cancelled before it was signed (${t.status}).`,
      })
    } catch (err) {
      const e = err as ApiError
      if (e.code === 'FORBIDDEN') onForbidden()
      setResult({ ok: false, text: e.code === 'FORBIDDEN' ? `Not allowed: ${e.message}` : `${e.code}: ${e.message}` })
    } finally {
      setBusy(null)
    }
  }

  const back = (
    <a class="back" href={backHref}>
      ← Transactions
    </a>
  )
  if (phase.kind === 'missing')
    return (
      <section class="detail">
        {back}
        <div class="empty">
          <h2>Not found</h2>
          <p>{phase.message}</p>
        </div>
      </section>
    )
  if (!tx)
    return (
      <section class="detail">
        {back}
        {phase.kind === 'error' ? <LoadError error={phase.error} retry={() => void load()} /> : <Spinner label="Loading transaction…" />}
      </section>
    )

  // A request whose validUntil has passed would only expire again: the server refuses that retry.
  const expired = tx.validUntil !== null && Date.parse(tx.validUntil) <= Date.now()
  const canRetry = (tx.status === 'FAILED' || tx.status === 'REVERTED') && tx.kind === 'REQUEST' && !expired
  // A filler (a self-transfer the service sent to fill a nonce hole) cannot be cancelled: the server refuses it.
  // A cancel already sent is not offered again: the server answers a second one with nothing done, and the page
  // said "Cancel sent" for it.
  const cancelling = tx.status === 'PENDING' && tx.attempts.at(-1)?.purpose === 'CANCEL'
  const canCancel = (tx.status === 'QUEUED' || tx.status === 'PENDING') && tx.kind === 'REQUEST' && !cancelling
  // Only for a key known to be admin: while the role is unknown (its read failed) a reader is not offered them.
  const showActions = role === 'admin' && (canRetry || canCancel)
  const waiting = tx.error && !FINAL.includes(tx.status)

  return (
    <section class="detail" data-id={tx.id} data-status={tx.status} aria-label="Transaction">
      {back}
      <header class="detail-head">
        <div>
          <h1>
            Transaction <StatusBadge status={tx.status} />
          </h1>
          <p class="id-line">
            <span class="hex">{tx.id}</span> <CopyButton text={tx.id} />
          </p>
          <p class="muted">
            Created <Age at={tx.createdAt} /> ago · updated <Age at={tx.updatedAt} /> ago
            {tx.execution > 1 && <> · execution {tx.execution}</>}
          </p>
        </div>
        {showActions && (
          <div class="actions">
            {canRetry && (
              <button type="button" class="primary" disabled={busy != null} onClick={() => void act('retry')}>
                {busy === 'retry' ? 'Retrying…' : 'Retry'}
              </button>
            )}
            {canCancel &&
              (confirmCancel ? (
                <span class="confirm">
                  <span>Cancel this transaction?</span>
                  <button type="button" class="danger" disabled={busy != null} onClick={() => void act('cancel')}>
                    {busy === 'cancel' ? 'Cancelling…' : 'Yes, cancel'}
                  </button>
                  <button type="button" onClick={() => setConfirmCancel(false)}>
                    Keep
                  </button>
                </span>
              ) : (
                <button type="button" class="danger-outline" disabled={busy != null} onClick={() => setConfirmCancel(true)}>
                  Cancel…
                </button>
              ))}
          </div>
        )}
      </header>

      {phase.kind === 'error' && (
        // Before, a failed re-read (the API or its database down) left what was read last as if it were current.
        <div class="notice warn refresh-error" role="alert">
          <strong>This page could not be refreshed</strong>
          <p>What it shows may be out of date: {phase.error.message}</p>
          <button type="button" onClick={() => void load()}>
            Try again
          </button>
        </div>
      )}
      {result && (
        <div class={`notice ${result.ok ? 'ok' : 'error'}`} role="status">
          {result.text}
        </div>
      )}
      {tx.error && (
        <div class={`notice ${waiting ? 'warn' : 'error'} tx-error`} role="note">
          <strong class="hex">{tx.error.code}</strong>
          {waiting && <span class="muted"> (waiting)</span>}
          <p class="error-message">{tx.error.message || '—'}</p>
        </div>
      )}
      {tx.status === 'INCLUDED' && tx.receiptStatus === 'reverted' && (
        <div class="notice error tx-reverted" role="note">
          Mined, but the call reverted{tx.revertReason ? <>: <span class="error-message">{tx.revertReason}</span></> : ' (no reason given)'}. It
          becomes REVERTED at the confirmation depth.
        </div>
      )}
      {cancelling && (
        <div class="notice warn tx-cancelling" role="note">
          {/* The service replaces a request past its validUntil on its own: not an admin's cancel. */}
          {tx.error?.code === 'EXPIRED' ? 'Its validUntil passed' : 'Cancel requested'}: a zero-value self-transfer at nonce {tx.nonce} replaces it if it
          mines first; until then the request may still run.
        </div>
      )}
      {tx.atFeeCap && <div class="notice warn">Fee bumping has reached its fee cap (the chain's maxFeePerGasCap, or maxTxFeeWei over its gas limit): it is rebroadcast at the cap.</div>}

      <div class="cards">
        <Card title="Request">
          <dl>
            <Field label="Chain">
              {(() => {
                const c = chains.find((x) => x.chainId === tx.chainId)
                return c ? `${c.name} (${tx.chainId})` : tx.chainId
              })()}
            </Field>
            <Field label="From">
              <Hex value={tx.from} full href={explorer(tx.chainId, 'address', tx.from)} /> <CopyButton text={tx.from} />
            </Field>
            <Field label="To">{tx.to ? <Hex value={tx.to} full href={explorer(tx.chainId, 'address', tx.to)} /> : <span class="muted">contract creation</span>}</Field>
            <Field label="Value">
              <span title={`${tx.value} wei`}>{formatValue(tx.value, currency(tx.chainId))}</span>
            </Field>
            <Field label="Data">
              <Data hex={tx.data} />
            </Field>
            <Field label="Gas limit">{tx.gasLimit ? formatInt(tx.gasLimit) : <span class="muted">estimated</span>}</Field>
            {tx.idempotencyKey && <Field label="Idempotency key">{tx.idempotencyKey}</Field>}
            {tx.validUntil && <Field label="Valid until">{dateTime(tx.validUntil)}</Field>}
            {tx.kind !== 'REQUEST' && <Field label="Kind">{tx.kind} (a self-transfer the service sent to fill a nonce hole)</Field>}
            <Field label="Created">{dateTime(tx.createdAt)}</Field>
          </dl>
        </Card>
        <Card title="On chain">
          <dl>
            <Field label="Nonce">{tx.nonce ?? <span class="muted">not assigned</span>}</Field>
            <Field label="Hash">
              {tx.hash ? (
                <>
                  <Hex value={tx.hash} full href={explorer(tx.chainId, 'tx', tx.hash)} /> <CopyButton text={tx.hash} />
                </>
              ) : (
                <span class="muted">not signed yet</span>
              )}
            </Field>
            <Field label="Block">
              {tx.blockNumber ? (
                <>
                  {formatInt(tx.blockNumber)} <Hex value={tx.blockHash} />
                </>
              ) : (
                <span class="muted">—</span>
              )}
            </Field>
            {tx.confirmations != null && <Field label="Confirmations">{tx.confirmations}</Field>}
            {tx.gasUsed && <Field label="Gas used">{formatInt(tx.gasUsed)}</Field>}
            {tx.effectiveGasPrice && <Field label="Gas price paid"><Gwei wei={tx.effectiveGasPrice} /></Field>}
            {tx.contractAddress && (
              <Field label="Contract created">
                <Hex value={tx.contractAddress} full href={explorer(tx.chainId, 'address', tx.contractAddress)} /> <CopyButton text={tx.contractAddress} />
              </Field>
            )}
            <Field label="First sent">{dateTime(tx.firstSentAt)}</Field>
            <Field label="Included">{dateTime(tx.includedAt)}</Field>
            <Field label="Final">{dateTime(tx.finalAt)}</Field>
          </dl>
        </Card>
      </div>

      <Card title={`Attempts (${tx.attempts.length})`}>
        {tx.attempts.length === 0 ? (
          <p class="muted">None: it was never signed{tx.status === 'FAILED' ? ' (no nonce was used)' : ' yet'}.</p>
        ) : (
          <ol class="attempts">
            {tx.attempts.map((a, i) => (
              <AttemptView attempt={a} n={i + 1} href={explorer(tx.chainId, 'tx', a.hash)} />
            ))}
          </ol>
        )}
      </Card>

      <Card title="Timeline">
        <Timeline events={tx.events} />
      </Card>
    </section>
  )
}

function LoadError({ error, retry }: { error: ApiError; retry: () => void }) {
  return (
    <div class="notice error" role="alert">
      <strong>{error.code === 'UNREACHABLE' ? 'The API is unreachable' : 'The transaction could not be loaded'}</strong>
      <p>{error.message}</p>
      <button type="button" onClick={retry}>
        Try again
      </button>
    </div>
  )
}

function Card({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section class="card">
      <h2>{title}</h2>
      {children}
    </section>
  )
}

function Field({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </>
  )
}

function Data({ hex }: { hex: string }) {
  const [all, setAll] = useState(false)
  if (hex === '0x') return <span class="muted">none</span>
  const bytes = (hex.length - 2) / 2
  const long = hex.length > 138
  return (
    <span class="data">
      <span class="hex wrap">{long && !all ? `${hex.slice(0, 138)}…` : hex}</span>{' '}
      <span class="muted">
        ({grouped(bytes)} bytes){' '}
        {long && (
          <button type="button" class="link" onClick={() => setAll(!all)}>
            {all ? 'less' : 'show all'}
          </button>
        )}
      </span>
    </span>
  )
}

function AttemptView({ attempt: a, n, href }: { attempt: Attempt; n: number; href?: string }) {
  return (
    <li class="attempt" data-hash={a.hash}>
      <div class="attempt-head">
        <strong>#{n}</strong>
        {a.status === 'MINED' && a.receiptStatus === 'reverted' ? (
          // Mined, and its fee paid, but the call failed: not the green of a success.
          <span class="pill a-reverted" title="Mined with receipt status 0: the call reverted">
            MINED · REVERTED
          </span>
        ) : (
          <span class={`pill a-${a.status.toLowerCase()}`}>{a.status}</span>
        )}
        {a.purpose !== 'REQUEST' && <span class="pill a-cancel">{a.purpose}</span>}
        <span class="muted">
          execution {a.execution} · nonce {a.nonce}
        </span>
      </div>
      <dl class="compact">
        <Field label="Hash">
          <Hex value={a.hash} full href={href} /> <CopyButton text={a.hash} />
        </Field>
        <Field label="Fees">
          {a.gasPrice != null && a.maxFeePerGas == null ? (
            <>
              gas price <Gwei wei={a.gasPrice} />
            </>
          ) : (
            <>
              max fee <Gwei wei={a.maxFeePerGas} /> · priority <Gwei wei={a.maxPriorityFeePerGas} />
            </>
          )}{' '}
          · gas limit {formatInt(a.gasLimit)}
        </Field>
        <Field label="Signed">{dateTime(a.createdAt)}</Field>
        <Field label="Sent">{a.sentAt ? dateTime(a.sentAt) : <span class="muted">not yet</span>}</Field>
      </dl>
      {a.providers.length > 0 && (
        <table class="providers">
          <thead>
            <tr>
              <th>Provider</th>
              <th>Answer</th>
              <th>At</th>
            </tr>
          </thead>
          <tbody>
            {a.providers.map((p) => (
              <tr>
                <td>{p.name}</td>
                <td>
                  <span class={`outcome o-${p.outcome}`}>{p.outcome}</span>
                  {p.error && <div class="provider-error">{p.error}</div>}
                </td>
                <td class="nowrap">{dateTime(p.at).slice(11)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </li>
  )
}

function detailText(detail: string | null): string | null {
  if (!detail) return null
  try {
    const d = JSON.parse(detail) as unknown
    if (d && typeof d === 'object' && !Array.isArray(d))
      return Object.entries(d as Record<string, unknown>)
        .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' · ')
    return String(d)
  } catch {
    return detail
  }
}

function Timeline({ events }: { events: TxEvent[] }) {
  if (events.length === 0) return <p class="muted">No events.</p>
  return (
    <ol class="timeline">
      {events.map((e) => {
        const d = detailText(e.detail)
        return (
          <li data-to={e.toStatus}>
            <span class="when" title={e.at}>
              {dateTime(e.at)}
            </span>
            <span class="what">
              {e.fromStatus ? (
                <>
                  <StatusBadge status={e.fromStatus} /> <span class="arrow">→</span>{' '}
                </>
              ) : null}
              <StatusBadge status={e.toStatus} />
              <span class="actor">by {e.actor}</span>
            </span>
            {d && <span class="event-detail">{d}</span>}
          </li>
        )
      })}
    </ol>
  )
}

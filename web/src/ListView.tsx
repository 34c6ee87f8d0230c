import { useContext, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks'
import { ApiError, gql, ROW_FIELDS, type Live, type TxRow, type TxStatus } from './api.ts'
import { Age, ChainsContext, Hex, Spinner, StatusBadge, useCurrency, useExplorer } from './components.tsx'
import { formatInt, formatValue, grouped, shortId } from './format.ts'
import { listHref, TABS, txHref, type ListFilter, type TabId } from './route.ts'

const PAGE = 50
/** Live inserts grow the list; past this many rows the oldest are dropped again (they stay reachable with "Load more"). */
const MAX_ROWS = 1000
/** The newest rows of the open tab that the periodic re-read brings (it fills in hashes, which live updates carry none of; rows below are read by id). */
const READ_ROWS = 100
/**
 * With no live events the tab is re-read this often anyway: a change the live feed did not deliver (made between
 * the page's first read and its subscription going live, during a reconnect, or lost by the server) shows within it.
 */
const REREAD_IDLE_MS = 5_000
/** After the live feed was down, this many of the rows shown at most are read again (the API's largest page). */
const REFRESH_ROWS = 500
/** Rows read by id in one request (aliases of `transaction(id)`): the API's alias limit. */
const BY_ID_BATCH = 15
/** Live-changed rows below the re-read's window read by id after one re-read, at most (the rest after the next). */
const BY_ID_MAX = 60

type Row = TxRow & { cursor?: string; fresh?: boolean }
type ListState = { rows: Row[]; endCursor: string | null; hasNextPage: boolean }
type Phase = { kind: 'loading' } | { kind: 'ready' } | { kind: 'error'; error: ApiError }

const LIST_QUERY = `query List($first: Int!, $after: String, $status: [TransactionStatus!], $chainId: Int, $from: Address) {
  transactions(first: $first, after: $after, status: $status, chainId: $chainId, from: $from) {
    edges { cursor node { ${ROW_FIELDS} } }
    pageInfo { hasNextPage endCursor }
  }
}`
type ListData = { transactions: { edges: Array<{ cursor: string; node: TxRow }>; pageInfo: { hasNextPage: boolean; endCursor: string | null } } }

/** Up to BY_ID_BATCH transactions by id in one request; a null for one that does not exist. */
async function rowsById(apiKey: string, ids: string[]): Promise<TxRow[]> {
  const query = `query RowsById(${ids.map((_, i) => `$i${i}: ID!`).join(', ')}) { ${ids.map((_, i) => `r${i}: transaction(id: $i${i}) { ${ROW_FIELDS} }`).join(' ')} }`
  const data = await gql<Record<string, TxRow | null>>(apiKey, query, Object.fromEntries(ids.map((id, i) => [`i${i}`, id])))
  return Object.values(data).filter((r): r is TxRow => r != null)
}

const statusesOf = (tab: TabId) => TABS.find((t) => t.id === tab)!.statuses
const pageVariables = (f: ListFilter, after: string | null) => ({ first: PAGE, after, status: statusesOf(f.tab), chainId: f.chainId, from: f.from })

let early: { variables: string; data: Promise<ListData> } | null = null
/**
 * Started by main.tsx before the first render, so the first page is on its way while the app renders:
 * the first load of a matching list takes it instead of asking again.
 */
export function prefetchFirstPage(apiKey: string, filter: ListFilter): void {
  const variables = pageVariables(filter, null)
  const data = gql<ListData>(apiKey, LIST_QUERY, variables, { quiet401: true })
  data.catch(() => {}) // a failed prefetch is simply asked again
  early = { variables: JSON.stringify(variables), data }
}
function takePrefetched(variables: object): Promise<ListData> | null {
  const e = early
  early = null
  return e && e.variables === JSON.stringify(variables) ? e.data : null
}

function matches(f: ListFilter, r: TxRow): boolean {
  const statuses = statusesOf(f.tab)
  if (statuses && !statuses.includes(r.status)) return false
  if (f.chainId != null && r.chainId !== f.chainId) return false
  if (f.from && r.from.toLowerCase() !== f.from.toLowerCase()) return false
  return true
}

const newer = (a: TxRow, b: TxRow) => Date.parse(a.updatedAt) >= Date.parse(b.updatedAt)
/** Whether `u` changes anything of the shown row: a re-read mostly brings rows exactly as shown, and those cost no render. */
const differs = (r: Row, u: TxRow) =>
  (Object.keys(u) as Array<keyof TxRow>).some((k) => (k === 'error' ? JSON.stringify(r.error) !== JSON.stringify(u.error) : r[k] !== u[k]))

/**
 * Live changes (and the periodic re-read's rows): a row already shown is updated in place, or leaves the list
 * when it left the tab's statuses (In flight -> CONFIRMED), as it leaves the tab's count; a matching row not
 * shown yet is a new transaction (or one that just moved into this tab) and goes where its age puts it, newest first.
 */
function applyUpdates(s: ListState, updates: TxRow[], f: ListFilter): ListState {
  const rows = s.rows.slice()
  let changed = false
  for (const u of updates) {
    const i = rows.findIndex((r) => r.id === u.id)
    if (i >= 0) {
      if (!newer(u, rows[i]!)) continue
      if (!matches(f, u)) rows.splice(i, 1)
      else if (differs(rows[i]!, u)) rows[i] = { ...rows[i]!, ...u }
      else continue
      changed = true
      continue
    }
    if (!matches(f, u)) continue
    const created = Date.parse(u.createdAt)
    const at = rows.findIndex((r) => Date.parse(r.createdAt) < created)
    if (at >= 0) rows.splice(at, 0, { ...u, fresh: true })
    else if (!s.hasNextPage) rows.push({ ...u, fresh: true })
    else continue // older than everything shown: "Load more" will bring it
    changed = true
  }
  if (!changed) return s
  if (rows.length > MAX_ROWS) {
    let last = MAX_ROWS - 1
    while (last >= 0 && !rows[last]!.cursor) last--
    if (last >= 0) return { rows: rows.slice(0, last + 1), endCursor: rows[last]!.cursor!, hasNextPage: true }
  }
  return { ...s, rows }
}

/** A live row as it arrived, and when (performance.now()). */
type LiveSeen = { row: TxRow; at: number }
/** The periodic re-read's newest rows of the tab; `complete` when they are all the tab holds; `sentAt` as LiveSeen's `at`. */
type TabRead = { rows: Row[]; complete: boolean; sentAt: number }

/** A cursor's row sequence number (the API's cursors are base64url "seq:<n>"); null for one it did not make. */
function seqOf(cursor: string | undefined): number | null {
  if (!cursor) return null
  try {
    const m = /^seq:(\d+)$/.exec(atob(cursor.replace(/-/g, '+').replace(/_/g, '/')))
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

/** A row live updates brought (no cursor) counts as covered by a read only this much newer than its oldest row. */
const LIVE_ROW_MARGIN_MS = 2_000

/**
 * Merges the periodic re-read like live updates, so it corrects rows the live feed left stale and adds rows it
 * never delivered. A shown row the read does not hold has left the tab (or was pruned): it leaves the list too,
 * but only if the read covered it and no live update of it arrived after the read was sent (that update is newer
 * than the read: a row created just then is kept). Covered: the read held the whole tab, or the row is newer in
 * the API's own order (its sequence, from its cursor) than the read's last row. By createdAt instead, a row
 * committed by a statement that started later but took a lower sequence number (concurrent commits) fell inside
 * the window without being in it, and was dropped for good. A row that came live (no cursor) needs a margin.
 * The read's rows come with any newer live version merged in (withRecent), so the read does not undo it either.
 */
function applyRead(s: ListState, read: TabRead, f: ListFilter, liveAt: (id: string) => number | undefined): ListState {
  const held = new Set(read.rows.map((r) => r.id))
  const last = read.rows.at(-1)
  const lastSeq = seqOf(last?.cursor)
  const oldest = last ? Date.parse(last.createdAt) : Number.POSITIVE_INFINITY
  const covered = (r: Row) => {
    if (read.complete) return true
    const seq = seqOf(r.cursor)
    if (seq !== null) return lastSeq !== null && seq > lastSeq
    return Date.parse(r.createdAt) > oldest + LIVE_ROW_MARGIN_MS
  }
  const liveSinceSent = (r: Row) => (liveAt(r.id) ?? Number.NEGATIVE_INFINITY) >= read.sentAt
  const kept = s.rows.filter((r) => held.has(r.id) || !covered(r) || liveSinceSent(r))
  return applyUpdates(kept.length === s.rows.length ? s : { ...s, rows: kept }, read.rows, f)
}

type Counts = Partial<Record<TabId, string>>
const COUNTS_QUERY = `query Counts($chainId: Int, $from: Address, $status: [TransactionStatus!], $first: Int!) {
  transactionCounts(chainId: $chainId, from: $from) { status count }
  transactions(first: $first, chainId: $chainId, from: $from, status: $status) { edges { cursor node { ${ROW_FIELDS} } } }
}`

type CountsData = {
  transactionCounts: Array<{ status: TxStatus; count: number }>
  transactions: { edges: Array<{ cursor: string; node: TxRow }> }
}

/**
 * Exact per-tab counts (the API's transactionCounts, summed over each tab's statuses), and the open tab's newest
 * rows for applyRead. Read at most about once a second while transactions change, a second after the live
 * subscription (re)connects (what changed before it was live on the server was missed), and every
 * REREAD_IDLE_MS when nothing arrives, so a change the live feed never delivered still shows.
 */
function useCounts(
  apiKey: string,
  live: Live,
  tab: TabId,
  chainId: number | null,
  from: string | null,
  enabled: boolean,
  onRead: (read: TabRead) => void,
): Counts {
  const readRef = useRef(onRead)
  readRef.current = onRead
  // Counts are kept with the filter they were read for, and shown for that filter only: kept across a filter change,
  // the previous filter's numbers stood beside the new one for as long as its counts could not be read.
  const filterKey = `${chainId ?? ''}|${from ?? ''}`
  const [counts, setCounts] = useState<{ of: string; counts: Counts }>({ of: filterKey, counts: {} })
  useEffect(() => {
    if (!enabled) return
    let stopped = false
    let inFlight = false
    let again = false
    let timer: ReturnType<typeof setTimeout> | undefined
    let idle: ReturnType<typeof setTimeout> | undefined
    const run = async () => {
      if (inFlight) return void (again = true)
      inFlight = true
      clearTimeout(idle)
      try {
        const sentAt = performance.now()
        const data = await gql<CountsData>(apiKey, COUNTS_QUERY, { chainId, from, status: statusesOf(tab), first: READ_ROWS })
        if (stopped) return
        const by = new Map(data.transactionCounts.map((c) => [c.status, c.count]))
        const next: Counts = {}
        for (const t of TABS) {
          const n = t.statuses ? t.statuses.reduce((sum, st) => sum + (by.get(st) ?? 0), 0) : [...by.values()].reduce((a, b) => a + b, 0)
          next[t.id] = grouped(n)
        }
        const rows: Row[] = data.transactions.edges.map((e) => ({ ...e.node, cursor: e.cursor }))
        setCounts({ of: filterKey, counts: next })
        readRef.current({ rows, complete: rows.length < READ_ROWS, sentAt })
      } catch {
        // Counts are a nicety: the list shows the error.
      } finally {
        inFlight = false
        if (!stopped) {
          if (again) {
            again = false
            schedule()
          }
          // A tab in the background reads nothing; it reads again when shown (onVisible).
          idle = setTimeout(() => !document.hidden && void run(), REREAD_IDLE_MS)
        }
      }
    }
    const schedule = () => {
      if (timer || stopped) return
      timer = setTimeout(() => {
        timer = undefined
        void run()
      }, 1000)
    }
    const onVisible = () => !document.hidden && void run()
    void run()
    const offRow = live.onRow(schedule)
    const offReconnect = live.onReconnect(() => void run())
    const offState = live.onState((s) => s === 'live' && schedule())
    document.addEventListener('visibilitychange', onVisible)
    return () => {
      stopped = true
      clearTimeout(timer)
      clearTimeout(idle)
      offRow()
      offReconnect()
      offState()
      document.removeEventListener('visibilitychange', onVisible)
    }
  }, [apiKey, live, tab, chainId, from, enabled])
  return counts.of === filterKey ? counts.counts : {}
}

export function ListView({ apiKey, live, filter, hidden }: { apiKey: string; live: Live; filter: ListFilter; hidden: boolean }) {
  const [list, setList] = useState<ListState>({ rows: [], endCursor: null, hasNextPage: false })
  const [phase, setPhase] = useState<Phase>({ kind: 'loading' })
  const [loadingMore, setLoadingMore] = useState(false)
  const [moreError, setMoreError] = useState<string | null>(null)
  const [firstLoaded, setFirstLoaded] = useState(false)
  /** Why the rows shown could not be read again after the live feed was down (they stay, maybe out of date). */
  const [refreshError, setRefreshError] = useState<ApiError | null>(null)
  const listRef = useRef(list)
  listRef.current = list
  const generation = useRef(0)
  const filterRef = useRef(filter)
  filterRef.current = filter
  /** Latest live version of recently changed rows: a page that was read just before a change must not undo it. */
  const recent = useRef(new Map<string, LiveSeen>())
  /**
   * Rows a live update changed, and when (performance.now()), until a read sent after it brings them: live rows
   * carry no hash, so theirs may be that of an earlier attempt (a fee bump's new one, or none before signing).
   * The periodic re-read brings the newest READ_ROWS; the ones it leaves are read by id (hashesBelowWindow).
   */
  const hashUnread = useRef(new Map<string, number>())
  const broughtBy = (rows: readonly TxRow[], sentAt: number) => {
    for (const r of rows) if ((hashUnread.current.get(r.id) ?? Number.POSITIVE_INFINITY) < sentAt) hashUnread.current.delete(r.id)
  }
  /** When the read of the page shown was started (performance.now()); null while a (re)load is on its way. */
  const pageReadAt = useRef<number | null>(null)
  const marked = useRef(false)

  const { tab, chainId, from } = filter
  const variables = (after: string | null) => pageVariables(filter, after)
  const withRecent = (r: Row): Row => {
    const l = recent.current.get(r.id)?.row
    return l && Date.parse(l.updatedAt) > Date.parse(r.updatedAt) ? { ...r, ...l } : r
  }

  const load = async () => {
    const gen = ++generation.current
    const readAt = performance.now()
    pageReadAt.current = null
    setPhase({ kind: 'loading' })
    setMoreError(null)
    setRefreshError(null)
    try {
      const prefetched = takePrefetched(variables(null))
      const data = (prefetched && (await prefetched.catch(() => null))) || (await gql<ListData>(apiKey, LIST_QUERY, variables(null)))
      if (gen !== generation.current) return
      const c = data.transactions
      broughtBy(c.edges.map((e) => e.node), readAt)
      setList({ rows: c.edges.map((e) => withRecent({ ...e.node, cursor: e.cursor })), endCursor: c.pageInfo.endCursor, hasNextPage: c.pageInfo.hasNextPage })
      setPhase({ kind: 'ready' })
      pageReadAt.current = readAt
      setFirstLoaded(true)
    } catch (err) {
      if (gen !== generation.current) return
      const e = err instanceof ApiError ? err : new ApiError(String(err), 'ERROR')
      setPhase({ kind: 'error', error: e })
      // Passing trouble (the key over its rate, the service starting): the list loads itself again shortly.
      if (e.code === 'RATE_LIMITED' || e.code === 'UNAVAILABLE') setTimeout(() => gen === generation.current && void load(), 2_000)
    }
  }

  /**
   * After the live feed was down (the socket reconnected, or the rows subscription was made again), whatever
   * changed meanwhile was missed: the rows shown (up to REFRESH_ROWS) are read again and merged as the periodic
   * re-read is. The rows "Load more" brought and the scroll position stay; if the read fails they stay too,
   * under a notice. (It used to load the first page again: the rows below it and the place read were lost.)
   */
  const refresh = async () => {
    if (pageReadAt.current === null) return void load() // nothing shown yet, or a (re)load on its way
    const gen = generation.current
    const sentAt = performance.now()
    const first = Math.min(Math.max(listRef.current.rows.length, PAGE), REFRESH_ROWS)
    try {
      const data = await gql<ListData>(apiKey, LIST_QUERY, { ...variables(null), first })
      if (gen !== generation.current) return
      const c = data.transactions
      broughtBy(c.edges.map((e) => e.node), sentAt)
      const rows = c.edges.map((e) => withRecent({ ...e.node, cursor: e.cursor }))
      setList((s) => applyRead(s, { rows, complete: !c.pageInfo.hasNextPage, sentAt }, filterRef.current, (id) => recent.current.get(id)?.at))
      setRefreshError(null)
    } catch (err) {
      if (gen !== generation.current) return
      const e = err instanceof ApiError ? err : new ApiError(String(err), 'ERROR')
      setRefreshError(e)
      if (e.code === 'RATE_LIMITED' || e.code === 'UNAVAILABLE') setTimeout(() => gen === generation.current && void refresh(), 2_000)
    }
  }

  /**
   * After a periodic re-read (sent at `sentAt`) was applied: the rows changed live before it that it did not bring
   * are below its window (or left the tab), and nothing else would correct their hash. Those still shown are read
   * by id, BY_ID_BATCH to a request, and merged as live updates are.
   */
  const hashesBelowWindow = async (sentAt: number) => {
    const gen = generation.current
    const shown = new Set(listRef.current.rows.map((r) => r.id))
    const ids: string[] = []
    for (const [id, at] of hashUnread.current) {
      if (at >= sentAt) continue
      if (shown.has(id) && ids.length < BY_ID_MAX) ids.push(id)
      else if (!shown.has(id)) hashUnread.current.delete(id)
    }
    for (const id of ids) hashUnread.current.delete(id)
    for (let i = 0; i < ids.length; i += BY_ID_BATCH) {
      const batch = ids.slice(i, i + BY_ID_BATCH)
      let rows: TxRow[]
      try {
        rows = await rowsById(apiKey, batch)
      } catch {
        // Asked again after the next re-read (unless a newer live update or a read came meanwhile).
        for (const id of batch) if (!hashUnread.current.has(id)) hashUnread.current.set(id, 0)
        continue
      }
      if (gen !== generation.current) return
      const updates = rows.map(withRecent)
      setList((s) => {
        const have = new Set(s.rows.map((r) => r.id))
        return applyUpdates(s, updates.filter((u) => have.has(u.id)), filterRef.current)
      })
    }
  }

  const loadMore = async () => {
    const gen = generation.current
    setLoadingMore(true)
    setMoreError(null)
    const sentAt = performance.now()
    try {
      const data = await gql<ListData>(apiKey, LIST_QUERY, variables(list.endCursor))
      if (gen !== generation.current) return
      const c = data.transactions
      broughtBy(c.edges.map((e) => e.node), sentAt)
      setList((s) => {
        const have = new Set(s.rows.map((r) => r.id))
        const more = c.edges.filter((e) => !have.has(e.node.id)).map((e) => withRecent({ ...e.node, cursor: e.cursor }))
        return { rows: [...s.rows, ...more], endCursor: c.pageInfo.endCursor ?? s.endCursor, hasNextPage: c.pageInfo.hasNextPage }
      })
    } catch (err) {
      if (gen === generation.current) setMoreError((err as Error).message)
    } finally {
      setLoadingMore(false)
    }
  }

  // A layout effect: the request goes out now, not after the next frame.
  useLayoutEffect(() => {
    void load()
  }, [apiKey, tab, chainId, from])

  // Live rows, applied in small batches so a burst of changes costs one render.
  useEffect(() => {
    let pending: TxRow[] = []
    let timer: ReturnType<typeof setTimeout> | undefined
    const flush = () => {
      timer = undefined
      const batch = pending
      pending = []
      setList((s) => applyUpdates(s, batch, filterRef.current))
    }
    const offRow = live.onRow((row) => {
      const r = recent.current
      r.delete(row.id)
      r.set(row.id, { row, at: performance.now() })
      if (r.size > 5000) r.delete(r.keys().next().value!)
      const h = hashUnread.current
      h.delete(row.id)
      h.set(row.id, performance.now())
      if (h.size > 5000) h.delete(h.keys().next().value!)
      pending.push(row)
      timer ??= setTimeout(flush, 120)
    })
    const offReconnect = live.onReconnect(() => void refresh())
    return () => {
      offRow()
      offReconnect()
      clearTimeout(timer)
    }
  }, [live, apiKey, tab, chainId, from])

  // For the dashboard test (and anyone curious): when the first page of rows was on screen.
  useEffect(() => {
    if (marked.current || phase.kind !== 'ready') return
    marked.current = true
    requestAnimationFrame(() => performance.mark('txb:first-rows'))
  }, [phase])

  // Not while the list is hidden (a transaction's page is open): it reads at once when shown again.
  const counts = useCounts(apiKey, live, tab, chainId, from, firstLoaded && !hidden, (read) => {
    // Not while a (re)load is on its way (it replaces the rows), nor a read sent before the page shown (it could only take it back).
    const page = pageReadAt.current
    if (page === null || read.sentAt < page) return
    broughtBy(read.rows, read.sentAt)
    const rows = read.rows.map(withRecent)
    setList((s) => applyRead(s, { ...read, rows }, filterRef.current, (id) => recent.current.get(id)?.at))
    void hashesBelowWindow(read.sentAt)
  })
  const unfiltered = tab === 'all' && chainId == null && !from

  return (
    <section class="list" hidden={hidden} aria-label="Transactions">
      <nav class="tabs" aria-label="Status">
        {TABS.map((t) => (
          <a href={listHref({ ...filter, tab: t.id })} class={t.id === tab ? 'tab active' : 'tab'} aria-current={t.id === tab ? 'page' : undefined} data-tab={t.id}>
            {t.label}
            {counts[t.id] != null && <span class="count">{counts[t.id]}</span>}
          </a>
        ))}
      </nav>
      <Filters filter={filter} rows={list.rows} />

      {phase.kind === 'error' && (
        <div class="notice error" role="alert">
          <strong>{phase.error.code === 'UNREACHABLE' ? 'The API is unreachable' : 'The list could not be loaded'}</strong>
          <p>{phase.error.message}</p>
          <button type="button" onClick={() => void load()}>
            Try again
          </button>
        </div>
      )}
      {refreshError && phase.kind === 'ready' && (
        <div class="notice warn refresh-error" role="alert">
          <strong>The list may be out of date</strong>
          <p>Live updates were interrupted and the rows shown could not be read again: {refreshError.message}</p>
          <button type="button" onClick={() => void refresh()}>
            Try again
          </button>
        </div>
      )}
      {phase.kind === 'loading' && list.rows.length === 0 && <Spinner label="Loading transactions…" />}
      {phase.kind !== 'error' && list.rows.length > 0 && (
        <table class={`txs${phase.kind === 'loading' ? ' stale' : ''}`}>
          <thead>
            <tr>
              <th>Status</th>
              <th>ID</th>
              <th>From → To</th>
              <th class="num">Value</th>
              <th class="num">Nonce</th>
              <th>Hash</th>
              <th class="num">Age</th>
            </tr>
          </thead>
          <tbody>
            {list.rows.map((r) => (
              <TxRowView key={r.id} row={r} />
            ))}
          </tbody>
        </table>
      )}
      {phase.kind === 'ready' && list.rows.length === 0 && (unfiltered ? <EmptyState /> : <NoMatch filter={filter} />)}
      {phase.kind === 'ready' && list.hasNextPage && (
        <div class="more">
          <button type="button" onClick={() => void loadMore()} disabled={loadingMore}>
            {loadingMore ? 'Loading…' : 'Load more'}
          </button>
          {moreError && <p class="error-text">{moreError}</p>}
        </div>
      )}
    </section>
  )
}

function TxRowView({ row: r }: { row: Row }) {
  const open = () => (location.hash = txHref(r.id))
  const explorer = useExplorer()
  const currency = useCurrency()
  return (
    <tr class={r.fresh ? 'row fresh' : 'row'} data-id={r.id} data-status={r.status} onClick={open}>
      <td class="c-status">
        <StatusBadge status={r.status} />
        {r.error && (
          <span class="row-error" title={`${r.error.code}: ${r.error.message}`}>
            <span class="code">{r.error.code}</span> {r.error.message}
          </span>
        )}
      </td>
      <td class="c-id">
        <a href={txHref(r.id)} class="hex" title={r.id} onClick={(e) => e.stopPropagation()}>
          {shortId(r.id)}
        </a>
      </td>
      <td class="c-parties">
        <Hex value={r.from} href={explorer(r.chainId, 'address', r.from)} /> <span class="arrow">→</span>{' '}
        {r.to ? <Hex value={r.to} href={explorer(r.chainId, 'address', r.to)} /> : <span class="muted">new contract</span>}
      </td>
      <td class="c-value num">{formatValue(r.value, currency(r.chainId))}</td>
      <td class="c-nonce num">{r.nonce == null ? <span class="muted">—</span> : formatInt(r.nonce)}</td>
      <td class="c-hash">
        <Hex value={r.hash} href={explorer(r.chainId, 'tx', r.hash)} />
      </td>
      <td class="c-age num">
        <Age at={r.createdAt} />
      </td>
    </tr>
  )
}

function Filters({ filter, rows }: { filter: ListFilter; rows: TxRow[] }) {
  const chains = useContext(ChainsContext)
  const [chain, setChain] = useState(filter.chainId?.toString() ?? '')
  const [from, setFrom] = useState(filter.from ?? '')
  const [problem, setProblem] = useState<string | null>(null)
  useEffect(() => {
    setChain(filter.chainId?.toString() ?? '')
    setFrom(filter.from ?? '')
  }, [filter.chainId, filter.from])
  // The configured chains by name; a chain id from a link that is not configured (any more) stays choosable.
  const options = chains.map((c) => ({ id: c.chainId, label: `${c.name} (${c.chainId})` }))
  if (filter.chainId != null && !chains.some((c) => c.chainId === filter.chainId)) options.push({ id: filter.chainId, label: `chain ${filter.chainId}` })
  const signers = [...new Set(rows.map((r) => r.from))].sort()
  const go = (c: string, f: string) => {
    if (f && !/^0x[0-9a-fA-F]{40}$/.test(f)) return setProblem('Signer: a 20-byte address, 0x and 40 hex digits')
    setProblem(null)
    location.hash = listHref({ tab: filter.tab, chainId: c ? Number(c) : null, from: f || null })
  }
  const apply = (e: Event) => {
    e.preventDefault()
    go(chain, from.trim())
  }
  const active = filter.chainId != null || filter.from
  return (
    <form class="filters" onSubmit={apply}>
      <label>
        <span>Chain</span>
        <select
          name="chain"
          value={chain}
          onChange={(e) => {
            // Choosing a chain filters at once; a half-typed signer waits for "Filter".
            const c = e.currentTarget.value
            setChain(c)
            go(c, filter.from ?? '')
          }}
        >
          <option value="">any</option>
          {options.map((o) => (
            <option value={String(o.id)}>{o.label}</option>
          ))}
        </select>
      </label>
      <label class="grow">
        <span>Signer</span>
        <input name="from" class="hex" list="txb-signers" placeholder="any (0x…)" spellcheck={false} value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
      </label>
      <button type="submit">Filter</button>
      {active && (
        <a class="button subtle" href={listHref({ tab: filter.tab, chainId: null, from: null })}>
          Clear
        </a>
      )}
      <datalist id="txb-signers">
        {signers.map((s) => (
          <option value={s} />
        ))}
      </datalist>
      {problem && <p class="error-text full">{problem}</p>}
    </form>
  )
}

function EmptyState() {
  const example = `curl -s ${location.origin}/broadcast_transaction \\
  -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
  -d '{"to": "<recipient 0x…>", "value": "<amount in wei>"}'`
  return (
    <div class="empty">
      <h2>No transactions yet</h2>
      <p>Send one and it shows up here as it moves from QUEUED to CONFIRMED, without reloading:</p>
      <pre class="code">{example}</pre>
      <p class="muted">
        Or over GraphQL: <code>mutation {'{'} broadcastTransaction(input: {'{'} to: "0x…", value: "1000" {'}'}) {'{'} id status {'}'} {'}'}</code>
      </p>
    </div>
  )
}

function NoMatch({ filter }: { filter: ListFilter }) {
  const tab = TABS.find((t) => t.id === filter.tab)!
  const chain = useContext(ChainsContext).find((c) => c.chainId === filter.chainId)
  return (
    <div class="empty">
      <h2>Nothing here</h2>
      <p>
        No {filter.tab === 'all' ? '' : `${tab.label.toLowerCase()} `}transactions
        {filter.chainId != null && <> on {chain ? `${chain.name} (chain ${filter.chainId})` : `chain ${filter.chainId}`}</>}
        {filter.from && (
          <>
            {' '}
            from <Hex value={filter.from} />
          </>
        )}
        .
      </p>
      {filter.from && <p class="muted from-hint">An address filters by sender: the signer that sent them (not a recipient).</p>}
      <p>
        <a href={listHref({ tab: 'all', chainId: null, from: null })}>Show all transactions</a>
      </p>
    </div>
  )
}

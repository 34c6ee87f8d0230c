import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks'
import { ApiError, connectLive, fetchSession, gql, roleOf, setUnauthenticatedHandler, storedKey, storeKey, type Chain, type LiveState, type Role, type Viewer } from './api.ts'
import { ChainsContext, NowContext, useTicker } from './components.tsx'
import { DetailView } from './DetailView.tsx'
import { ADDRESS_RE, HASH_RE, UUID_RE } from './format.ts'
import { KeyForm } from './KeyForm.tsx'
import { ListView } from './ListView.tsx'
import { SignerAlerts } from './SignerAlerts.tsx'
import { listHref, parseRoute, txHref, type ListFilter, type Route } from './route.ts'

export function App() {
  const [key, setKey] = useState<string | null>(storedKey())
  const [message, setMessage] = useState<string | null>(null)
  useEffect(
    () =>
      setUnauthenticatedHandler((m) => {
        storeKey(null)
        setKey(null)
        setMessage(m)
      }),
    [],
  )
  if (!key)
    return (
      <KeyForm
        message={message}
        onKey={(k) => {
          storeKey(k)
          setMessage(null)
          setKey(k)
        }}
      />
    )
  return (
    <Dashboard
      key={key}
      apiKey={key}
      onSignOut={() => {
        storeKey(null)
        setMessage(null)
        setKey(null)
      }}
    />
  )
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash))
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash))
    window.addEventListener('hashchange', on)
    return () => window.removeEventListener('hashchange', on)
  }, [])
  return route
}

function Dashboard({ apiKey, onSignOut }: { apiKey: string; onSignOut: () => void }) {
  const route = useRoute()
  const live = useMemo(() => connectLive(apiKey), [apiKey])
  const [liveState, setLiveState] = useState<LiveState>(live.state())
  const [role, setRole] = useState<Role>('unknown')
  const [viewer, setViewer] = useState<Viewer | null>(null)
  const [chains, setChains] = useState<readonly Chain[]>([])
  const now = useTicker(5000)
  // The list stays mounted under the detail view: going back keeps its pages, live rows and scroll position.
  const lastList = useRef<ListFilter>(route.name === 'list' ? route : { tab: 'all', chainId: null, from: null })
  if (route.name === 'list') lastList.current = { tab: route.tab, chainId: route.chainId, from: route.from }
  const listScroll = useRef(0)
  const previous = useRef(route.name)
  /** The view on the screen, as last rendered: a scroll event after the list was left is not the list's. */
  const shown = useRef(route.name)
  shown.current = route.name

  useEffect(() => {
    const off = live.onState(setLiveState)
    // The socket may have connected between the first render and this effect (effects run after paint, late on a
    // loaded machine): that change reached no listener, and the pill said "Connecting…" for as long as the
    // connection stayed up. A CI run timed out on it.
    setLiveState(live.state())
    return () => {
      off()
      live.dispose()
    }
  }, [live])
  useEffect(() => {
    // Who the key is (its role decides the admin actions) and the chains (names, explorers). Not on the way to
    // the first rows: those were asked for before the first render. A failure leaves the role unknown and the
    // chain filter a plain id; the list shows the API's problem itself.
    // Tried again until it answers (a rate limit or a restart at start-up must not leave the role unknown for good).
    let stopped = false
    let retry: ReturnType<typeof setTimeout> | undefined
    const read = (attempt: number) =>
      void fetchSession(apiKey).then(
        (s) => {
          if (stopped) return
          setViewer(s.viewer)
          setRole(roleOf(s.viewer))
          setChains(s.chains)
        },
        () => {
          if (!stopped) retry = setTimeout(() => read(attempt + 1), Math.min(30_000, 1_000 * 2 ** attempt))
        },
      )
    read(0)
    return () => {
      stopped = true
      clearTimeout(retry)
    }
  }, [apiKey])
  useLayoutEffect(() => {
    if (previous.current === 'list' && route.name === 'tx') window.scrollTo(0, 0)
    if (previous.current === 'tx' && route.name === 'list') window.scrollTo(0, listScroll.current)
    previous.current = route.name
  }, [route])
  useEffect(() => {
    // Which view is shown is looked at when the event comes. A listener removed on leaving the list (an effect's
    // cleanup, after the next frame) still took the detail page's scroll to its top for the list's: going back
    // always put the list at its top.
    const on = () => {
      if (shown.current === 'list') listScroll.current = window.scrollY
    }
    window.addEventListener('scroll', on, { passive: true })
    return () => window.removeEventListener('scroll', on)
  }, [])

  return (
    <NowContext.Provider value={now}>
      <ChainsContext.Provider value={chains}>
      <header class="top">
        <a class="brand" href={listHref(lastList.current)}>
          tx-broadcaster
        </a>
        <Search apiKey={apiKey} filter={lastList.current} />
        <div class="session">
          <span class={`live live-${liveState}`} title="Updates over WebSocket">
            <span class="dot" aria-hidden="true" />
            {liveState === 'live' ? 'Live' : liveState === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
          </span>
          {role !== 'unknown' && (
            <span
              class="role"
              data-role={viewer?.role}
              title={`Key "${viewer?.name ?? '?'}" (${viewer?.role ?? '?'}): ${role === 'admin' ? 'may retry and cancel' : 'may not retry or cancel'}`}
            >
              {viewer && <span class="key-name">{viewer.name} · </span>}
              {role === 'admin' ? 'admin' : 'no admin actions'}
            </span>
          )}
          <button type="button" class="subtle" onClick={onSignOut}>
            Change key
          </button>
        </div>
      </header>
      <main>
        <SignerAlerts apiKey={apiKey} />
        <ListView apiKey={apiKey} live={live} filter={lastList.current} hidden={route.name !== 'list'} />
        {route.name === 'tx' && (
          <DetailView apiKey={apiKey} live={live} id={route.id} role={role} onForbidden={() => setRole('limited')} backHref={listHref(lastList.current)} />
        )}
      </main>
      </ChainsContext.Provider>
    </NowContext.Provider>
  )
}

function Search({ apiKey, filter }: { apiKey: string; filter: ListFilter }) {
  const [q, setQ] = useState('')
  const [problem, setProblem] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const submit = async (e: Event) => {
    e.preventDefault()
    const v = q.trim()
    setProblem(null)
    if (!v) return
    if (UUID_RE.test(v)) {
      location.hash = txHref(v.toLowerCase())
      return setQ('')
    }
    if (ADDRESS_RE.test(v)) return void (location.hash = listHref({ ...filter, from: v }))
    const idStart = v.replace(/-/g, '')
    if (/^[0-9a-f]{8,32}$/i.test(idStart)) return void byIdPrefix(v)
    if (!HASH_RE.test(v))
      return setProblem('Search by transaction id (a UUID, or its first 8 characters as the list shows them), transaction hash (0x + 64 hex digits) or signer address (0x + 40).')
    setBusy(true)
    try {
      const data = await gql<{ transactionByHash: { id: string } | null }>(apiKey, `query ByHash($hash: Hex!) { transactionByHash(hash: $hash) { id } }`, { hash: v })
      if (data.transactionByHash) {
        location.hash = txHref(data.transactionByHash.id)
        setQ('')
      } else setProblem(`No transaction has an attempt with hash ${v.slice(0, 10)}…`)
    } catch (err) {
      setProblem((err as ApiError).message)
    } finally {
      setBusy(false)
    }
  }
  /** The short id the list shows (or any longer start of an id): the one transaction it names, or why not. */
  const byIdPrefix = async (prefix: string) => {
    setBusy(true)
    try {
      const data = await gql<{ found: { id: string }[] }>(apiKey, `query ByIdPrefix($prefix: String!) { found: transactionsByIdPrefix(prefix: $prefix) { id } }`, { prefix })
      if (data.found.length === 1) {
        location.hash = txHref(data.found[0]!.id)
        setQ('')
      } else if (data.found.length === 0) setProblem(`No transaction id starts with ${prefix}.`)
      else setProblem(`${data.found.length === 10 ? '10 or more' : data.found.length} transaction ids start with ${prefix}: type more of it.`)
    } catch (err) {
      setProblem((err as ApiError).message)
    } finally {
      setBusy(false)
    }
  }
  return (
    <form class="search" role="search" onSubmit={submit}>
      <input
        type="search"
        name="q"
        placeholder="Search id, hash or signer"
        aria-label="Search by transaction id (or its first 8 characters), hash or signer address"
        spellcheck={false}
        value={q}
        onInput={(e) => {
          setQ(e.currentTarget.value)
          setProblem(null)
        }}
      />
      <button type="submit" disabled={busy}>
        Go
      </button>
      {problem && (
        <p class="search-problem error-text" role="alert">
          {problem}
        </p>
      )}
    </form>
  )
}

import { createContext } from 'preact'
import { useContext, useEffect, useState } from 'preact/hooks'
import { explorerHref, type Chain, type TxStatus } from './api.ts'
import { age, dateTime, formatGwei, shortHex } from './format.ts'

export function StatusBadge({ status }: { status: TxStatus }) {
  return (
    <span class={`badge s-${status.toLowerCase()}`} data-status={status}>
      {status}
    </span>
  )
}

/**
 * A hash or address: monospace, shortened, the whole value on hover and one click from the clipboard.
 * With `href` (a block explorer page) it is a link that opens in a new tab.
 */
export function Hex({ value, full = false, head, tail, href }: { value: string | null | undefined; full?: boolean; head?: number; tail?: number; href?: string }) {
  if (!value) return <span class="muted">—</span>
  const text = full ? value : shortHex(value, head, tail)
  if (href)
    return (
      <a class="hex explorer" title={value} href={href} target="_blank" rel="noopener noreferrer" onClick={(e) => e.stopPropagation()}>
        {text}
      </a>
    )
  return (
    <span class="hex" title={value}>
      {text}
    </span>
  )
}

/** A fee in gwei (see formatGwei), the exact wei on hover. */
export function Gwei({ wei }: { wei: string | null | undefined }) {
  if (wei == null) return <span class="muted">—</span>
  return (
    <span class="gwei" title={`${wei} wei`}>
      {formatGwei(wei)}
    </span>
  )
}

/** The configured chains (from the API's `chains`), for names and block explorer links. */
export const ChainsContext = createContext<readonly Chain[]>([])

/** The native currency of `chainId` (ETH until the chains are read, or for a chain not configured any more). */
export function useCurrency(): (chainId: number) => string {
  const chains = useContext(ChainsContext)
  return (chainId) => chains.find((c) => c.chainId === chainId)?.currencySymbol ?? 'ETH'
}

/** A link to the block explorer page of a transaction hash or an address on `chainId`, when the chain has one. */
export function useExplorer(): (chainId: number, kind: 'tx' | 'address', value: string | null | undefined) => string | undefined {
  const chains = useContext(ChainsContext)
  return (chainId, kind, value) => explorerHref(chains, chainId, kind, value)
}

/**
 * Puts `text` on the clipboard, from a click. navigator.clipboard exists on secure origins only (https, localhost):
 * on a plain-HTTP one (the service by its LAN name) it is undefined, and the button did nothing. It may also refuse
 * (no permission, the page not focused). The copy command, with the text put in its copy event, does it then.
 */
async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard) {
      await navigator.clipboard.writeText(text)
      return true
    }
  } catch {
    // Refused: the copy command below may still be allowed.
  }
  const put = (e: ClipboardEvent) => {
    e.clipboardData?.setData('text/plain', text)
    e.preventDefault()
  }
  document.addEventListener('copy', put)
  try {
    return document.execCommand('copy')
  } catch {
    return false
  } finally {
    document.removeEventListener('copy', put)
  }
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [outcome, setOutcome] = useState<'copied' | 'failed' | null>(null)
  return (
    <button
      type="button"
      class="copy"
      title={outcome === 'failed' ? `Could not copy: select ${text} and copy it` : `Copy ${text}`}
      onClick={(e) => {
        e.stopPropagation()
        void copyText(text).then((ok) => {
          setOutcome(ok ? 'copied' : 'failed')
          setTimeout(() => setOutcome(null), ok ? 1200 : 3000)
        })
      }}
    >
      {outcome === 'copied' ? 'Copied' : outcome === 'failed' ? 'Copy failed' : label}
    </button>
  )
}

/** One clock for every "age" on the page, ticking every few seconds. */
export const NowContext = createContext(Date.now())

export function useTicker(everyMs: number): number {
  const [now, setNow] = useState(Date.now())
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs)
    return () => clearInterval(t)
  }, [everyMs])
  return now
}

export function Age({ at }: { at: string }) {
  const now = useContext(NowContext)
  return (
    <time dateTime={at} title={dateTime(at)}>
      {age(at, now)}
    </time>
  )
}

export function Spinner({ label }: { label: string }) {
  return (
    <div class="loading" role="status">
      <span class="spinner" aria-hidden="true" /> {label}
    </div>
  )
}

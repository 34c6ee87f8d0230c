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

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [done, setDone] = useState(false)
  return (
    <button
      type="button"
      class="copy"
      title={`Copy ${text}`}
      onClick={(e) => {
        e.stopPropagation()
        void navigator.clipboard?.writeText(text).then(() => {
          setDone(true)
          setTimeout(() => setDone(false), 1200)
        })
      }}
    >
      {done ? 'Copied' : label}
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

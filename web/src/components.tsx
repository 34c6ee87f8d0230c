import { createContext } from 'preact'
import { useContext, useEffect, useState } from 'preact/hooks'
import type { TxStatus } from './api.ts'
import { age, dateTime, shortHex } from './format.ts'

export function StatusBadge({ status }: { status: TxStatus }) {
  return (
    <span class={`badge s-${status.toLowerCase()}`} data-status={status}>
      {status}
    </span>
  )
}

/** A hash or address: monospace, shortened, the whole value on hover and one click from the clipboard. */
export function Hex({ value, full = false, head, tail }: { value: string | null | undefined; full?: boolean; head?: number; tail?: number }) {
  if (!value) return <span class="muted">—</span>
  return (
    <span class="hex" title={value}>
      {full ? value : shortHex(value, head, tail)}
    </span>
  )
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

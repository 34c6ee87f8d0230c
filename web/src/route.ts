import type { TxStatus } from './api.ts'

export type TabId = 'all' | 'inflight' | 'passed' | 'failed'
export const TABS: ReadonlyArray<{ id: TabId; label: string; statuses: TxStatus[] | null }> = [
  { id: 'all', label: 'All', statuses: null },
  { id: 'inflight', label: 'In flight', statuses: ['QUEUED', 'PENDING', 'INCLUDED'] },
  { id: 'passed', label: 'Passed', statuses: ['CONFIRMED'] },
  // Every final status in a tab, so All = In flight + Passed + Failed: CANCELLED did not run as asked.
  { id: 'failed', label: 'Failed', statuses: ['FAILED', 'REVERTED', 'CANCELLED'] },
]

export type ListFilter = { tab: TabId; chainId: number | null; from: string | null }
export type Route = ({ name: 'list' } & ListFilter) | { name: 'tx'; id: string }

/**
 * A link's id as typed: one with a stray `%` (cut short, or pasted with one) is kept as it is and shown as no
 * transaction id. decodeURIComponent threw on it before the app mounted, and the page said it was not built.
 */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    return part
  }
}

/** `#/?tab=failed&chain=1&from=0x...` (the list) or `#/tx/<id>` (one transaction): every view can be linked. */
export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/'
  const [pathname = '/', search = ''] = path.split('?')
  const tx = /^\/tx\/([^/]+)$/.exec(pathname)
  // Ids are lowercase (the API answers with them so): one typed or pasted in capitals showed the page, but its
  // Retry and Cancel compared it with the id shown and silently did nothing.
  if (tx) return { name: 'tx', id: decoded(tx[1]!).toLowerCase() }
  const q = new URLSearchParams(search)
  const tab = TABS.find((t) => t.id === q.get('tab'))?.id ?? 'all'
  const chain = Number(q.get('chain'))
  return { name: 'list', tab, chainId: Number.isSafeInteger(chain) && chain > 0 ? chain : null, from: q.get('from') || null }
}

export function listHref(f: ListFilter): string {
  const q = new URLSearchParams()
  if (f.tab !== 'all') q.set('tab', f.tab)
  if (f.chainId != null) q.set('chain', String(f.chainId))
  if (f.from) q.set('from', f.from)
  const s = q.toString()
  return `#/${s ? `?${s}` : ''}`
}

export const txHref = (id: string): string => `#/tx/${encodeURIComponent(id)}`

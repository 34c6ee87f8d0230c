import { useEffect, useState } from 'preact/hooks'
import { gql } from './api.ts'
import { dateTime, shortHex } from './format.ts'

type ShortSigner = { chainId: number; name: string; address: string; balance: string | null; shortOfFundsSince: string | null; others: number }

/** How often the signers are read: a drained signer shows within this, and goes once it is funded. */
const POLL_MS = 5_000

/**
 * Signers the service found unable to pay. Their requests move to other signers (or wait, when they named
 * the signer), so no queue on the page shows the problem: this says which signer to fund.
 */
export function SignerAlerts({ apiKey }: { apiKey: string }) {
  const [short, setShort] = useState<ShortSigner[]>([])
  useEffect(() => {
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const read = async () => {
      // A tab in the background asks nothing (each read costs a balance read per signer); it reads again when shown.
      if (document.hidden) return
      try {
        const data = await gql<{ signers: Omit<ShortSigner, 'others'>[] }>(
          apiKey,
          `query Signers { signers { chainId name address balance shortOfFundsSince } }`,
          {},
          { quiet401: true },
        )
        const perChain = new Map<number, number>()
        for (const s of data.signers) perChain.set(s.chainId, (perChain.get(s.chainId) ?? 0) + 1)
        if (!stopped) setShort(data.signers.filter((s) => s.shortOfFundsSince !== null).map((s) => ({ ...s, others: (perChain.get(s.chainId) ?? 1) - 1 })))
      } catch {
        // Kept as last read: the list's own notices say when the API cannot be reached.
      }
      if (!stopped) timer = setTimeout(read, POLL_MS)
    }
    const onVisible = () => {
      if (document.hidden || stopped) return
      clearTimeout(timer)
      void read()
    }
    document.addEventListener('visibilitychange', onVisible)
    void read()
    return () => {
      stopped = true
      clearTimeout(timer)
      document.removeEventListener('visibilitychange', onVisible)
    }
  }, [apiKey])
  if (short.length === 0) return null
  return (
    <div class="notice warn signer-alert" role="status">
      {short.map((s) => (
        <p key={`${s.chainId}:${s.address}`} data-signer={s.address}>
          Signer <strong>{s.name}</strong> (<code title={s.address}>{shortHex(s.address)}</code>, chain {s.chainId}) cannot pay for
          requests since {dateTime(s.shortOfFundsSince)}
          {s.balance !== null ? ` (balance ${s.balance} wei)` : ''}: fund it.
          {s.others > 0 ? ' Requests that name no signer go to the others meanwhile.' : ''}
        </p>
      ))}
    </div>
  )
}

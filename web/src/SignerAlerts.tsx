import { useEffect, useState } from 'preact/hooks'
import { gql } from './api.ts'
import { dateTime, shortHex } from './format.ts'

type ShortSigner = { chainId: number; name: string; address: string; balance: string | null; shortOfFundsSince: string | null }

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
      try {
        const data = await gql<{ signers: ShortSigner[] }>(apiKey, `query Signers { signers { chainId name address balance shortOfFundsSince } }`, {}, { quiet401: true })
        if (!stopped) setShort(data.signers.filter((s) => s.shortOfFundsSince !== null))
      } catch {
        // Kept as last read: the list's own notices say when the API cannot be reached.
      }
      if (!stopped) timer = setTimeout(read, POLL_MS)
    }
    void read()
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  }, [apiKey])
  if (short.length === 0) return null
  return (
    <div class="notice warn signer-alert" role="status">
      {short.map((s) => (
        <p key={`${s.chainId}:${s.address}`} data-signer={s.address}>
          Signer <strong>{s.name}</strong> (<code title={s.address}>{shortHex(s.address)}</code>, chain {s.chainId}) cannot pay for
          requests since {dateTime(s.shortOfFundsSince)}
          {s.balance !== null ? ` (balance ${s.balance} wei)` : ''}: fund it. Requests that name no signer go to the others meanwhile.
        </p>
      ))}
    </div>
  )
}

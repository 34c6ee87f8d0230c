import { Fragment } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { gql } from './api.ts'
import { useCurrency } from './components.tsx'
import { dateTime, formatValue, shortHex } from './format.ts'

type SignerView = {
  chainId: number
  name: string
  address: string
  balance: string | null
  shortOfFundsSince: string | null
  signerFailingSince: string | null
  pending: number
  waitingForSigner: number
  refusedBySigner: number
  signerError: string | null
}
type AlertSigner = SignerView & { others: number }

/** How often the signers are read: a drained signer shows within this, and goes once it is funded. */
const POLL_MS = 5_000

/**
 * Signers the service found unable to pay, and remote signers (Web3Signer, Clef) that fail to sign or refuse
 * requests. Their requests move to other signers (or wait, when they named the signer), so no queue on the page
 * shows the problem: this says which signer to fund, or which remote signer to look at, in its own words.
 */
export function SignerAlerts({ apiKey }: { apiKey: string }) {
  const [alerts, setAlerts] = useState<AlertSigner[]>([])
  const currency = useCurrency()
  useEffect(() => {
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const read = async () => {
      // A tab in the background asks nothing (each read costs a balance read per signer); it reads again when shown.
      if (document.hidden) return
      try {
        const data = await gql<{ signers: SignerView[] }>(
          apiKey,
          `query Signers { signers { chainId name address balance shortOfFundsSince signerFailingSince pending waitingForSigner refusedBySigner signerError } }`,
          {},
          { quiet401: true },
        )
        const perChain = new Map<number, number>()
        for (const s of data.signers) perChain.set(s.chainId, (perChain.get(s.chainId) ?? 0) + 1)
        const needsLook = (s: SignerView) => s.shortOfFundsSince !== null || s.signerFailingSince !== null || s.waitingForSigner > 0 || s.refusedBySigner > 0
        if (!stopped) setAlerts(data.signers.filter(needsLook).map((s) => ({ ...s, others: (perChain.get(s.chainId) ?? 1) - 1 })))
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
  if (alerts.length === 0) return null
  const who = (s: AlertSigner) => (
    <>
      <strong>{s.name}</strong> (<code title={s.address}>{shortHex(s.address)}</code>, chain {s.chainId})
    </>
  )
  return (
    <div class="notice warn signer-alert" role="status">
      {alerts.map((s) => (
        <Fragment key={`${s.chainId}:${s.address}`}>
          {s.shortOfFundsSince !== null && (
            <p class="signer-short" data-signer={s.address}>
              Signer {who(s)} cannot pay for requests since {dateTime(s.shortOfFundsSince)}
              {s.balance !== null ? (
                <>
                  {' '}
                  (balance <span title={`${s.balance} wei`}>{formatValue(s.balance, currency(s.chainId))}</span>)
                </>
              ) : (
                ''
              )}
              : fund it.
              {s.others > 0 ? ' Requests that name no signer go to the others meanwhile.' : ''}
            </p>
          )}
          {(s.signerFailingSince !== null || s.waitingForSigner > 0) && (
            <p class="signer-failing" data-signer={s.address}>
              Remote signer {who(s)} is not signing{s.signerFailingSince !== null ? ` since ${dateTime(s.signerFailingSince)}` : ''}
              {s.waitingForSigner > 0 ? `: ${s.waitingForSigner} ${s.waitingForSigner === 1 ? 'request waits' : 'requests wait'} for it` : ''}
              {s.signerError ? <> (its last answer: <code>{s.signerError}</code>)</> : ''}.
              {s.pending > 0 ? ' Its sent transactions go out again as signed, without fee bumps.' : ''}
              {s.others > 0 ? ' Requests that name no signer go to the others meanwhile.' : ''}
            </p>
          )}
          {s.refusedBySigner > 0 && (
            <p class="signer-refusing" data-signer={s.address}>
              Remote signer {who(s)} refused {s.refusedBySigner} {s.refusedBySigner === 1 ? 'request' : 'requests'} while it signs others; each fails after the
              chain's patience.
            </p>
          )}
        </Fragment>
      ))}
    </div>
  )
}

/**
 * One place that turns a node's answer to eth_sendRawTransaction into what we do
 * next (DESIGN.md, "Send answers"). Handlers switch on the kind; none matches strings.
 * Wordings differ between geth, erigon, nethermind, besu, reth and anvil, so each
 * pattern lists them; the test beside this file keeps one vector per client.
 */

export type SendOutcome =
  /** The node has the transaction (hash returned, or it already knew it). */
  | 'sent'
  /** The nonce is used on chain: settle from our receipts, or reconcile. */
  | 'nonce_too_low'
  /** An earlier attempt of ours at this nonce is in the pool with fees we did not beat. */
  | 'replacement_underpriced'
  /** Fees are below what the node takes now: bump. */
  | 'fee_too_low'
  /** The signer cannot pay gas × maxFee + value. */
  | 'insufficient_funds'
  /** This transaction can never be valid, whatever the fees. */
  | 'invalid'
  /** The provider failed, not the transaction: try the others. */
  | 'provider_error'
  /** Could have been sent: check receipts and the pending nonce before deciding. */
  | 'unknown'

const PATTERNS: ReadonlyArray<[SendOutcome, RegExp]> = [
  ['sent', /already known|already imported|known transaction|alreadyknown|transaction already exists|already in (the )?(tx|transaction)?\s*pool/i],
  ['replacement_underpriced', /replacement transaction underpriced|replacementnotallowed|replacement fee too low|replacement underpriced|could not replace existing tx/i],
  ['nonce_too_low', /nonce too low|oldnonce|nonce has already been used|invalid nonce.*(lower|too low)|nonce is too low/i],
  ['insufficient_funds', /insufficient funds|insufficientfunds|upfront cost exceeds (account )?balance|sender doesn't have enough funds|insufficient balance/i],
  [
    'fee_too_low',
    /transaction underpriced|max fee per gas less than block base fee|feetoolow|fee cap less than block base fee|gas price below (configured )?minimum|gas price below current base fee|underpriced|miner premium is negative|maxfeepergas too low|gas price too low/i,
  ],
  // We sign with the chain id the providers were checked to serve: a node refusing it serves another chain (a
  // balancer routed it elsewhere), which its next health check finds. Read as "never valid", a request every
  // provider refused so was failed INVALID_TRANSACTION and its nonce filled, though any node of the chain takes it.
  ['provider_error', /invalid chain ?id|incorrect chain ?id|chain id mismatch|wrong ?chain ?id|invalidtxchainid/i],
  [
    'invalid',
    /intrinsic gas too low|exceeds block gas limit|invalid sender|oversized data|gaslimitexceeded|intrinsicgas|transaction size exceeds|tip higher than fee cap|max priority fee per gas (higher than|exceeds) max fee per gas|invalid signature|tx type not supported|transaction type not supported|gas limit reached|nonce max value|intrinsic gas exceeds gas limit|intrinsic gas too high|invalidtxsignature|transaction gas limit too high|gas ?limit ?cap ?exceeded|max initcode size exceeded/i,
  ],
]

/** HTTP statuses that mean the provider, not the transaction, failed. */
export function isProviderHttpStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500
}

/**
 * HTTP 413: the request's body was over the node's limit (geth and besu: 5 MiB), and none of its calls ran. Says
 * nothing about the transaction (a smaller batch, or another provider, may take it), nor that the provider is
 * failing (it answers everything else).
 */
export function isTooLargeHttpStatus(status: number): boolean {
  return status === 413
}

export type SendAnswer =
  | { kind: 'ok' }
  /** `status`: the HTTP status when the error came in a non-2xx answer (a 429 or 503 with a JSON-RPC error body). */
  | { kind: 'rpc_error'; message: string; code?: number; status?: number }
  | { kind: 'http_error'; status: number; message?: string }
  | { kind: 'network_error'; message: string }
  | { kind: 'timeout' }

export function classifySendAnswer(answer: SendAnswer): SendOutcome {
  switch (answer.kind) {
    case 'ok':
      return 'sent'
    case 'timeout':
    case 'network_error':
      return 'provider_error'
    case 'http_error':
      if (isProviderHttpStatus(answer.status) || isTooLargeHttpStatus(answer.status)) return 'provider_error'
      return answer.message ? classifySendMessage(answer.message) : 'unknown'
    case 'rpc_error': {
      const byMessage = classifySendMessage(answer.message)
      if (byMessage !== 'unknown') return byMessage
      // -32005 is "limit exceeded" (rate limiting) on Infura/Alchemy-style providers.
      if (answer.code === -32005 || /rate limit|too many requests|capacity|timeout|timed out|header not found|service unavailable/i.test(answer.message))
        return 'provider_error'
      // Words we do not know, in an HTTP 408/429/5xx (QuickNode's "100/second request limit reached", a balancer's
      // "no healthy upstream"): the provider failed. Read as a possible send, a rate-limited backlog waited as
      // unknown and was failed SEND_REFUSED after patience.sendMs. Known words still win (besu's -32005 vectors).
      if (answer.status !== undefined && isProviderHttpStatus(answer.status)) return 'provider_error'
      return 'unknown'
    }
  }
}

export function classifySendMessage(message: string): SendOutcome {
  // Besu answers in SCREAMING_SNAKE_CASE (NONCE_TOO_LOW); read it as words.
  const text = message.replace(/_/g, ' ')
  for (const [outcome, pattern] of PATTERNS) if (pattern.test(text)) return outcome
  return 'unknown'
}

import { describe, it, expect } from 'vitest'
import { classifySendAnswer, classifySendMessage, isProviderHttpStatus, type SendAnswer, type SendOutcome } from './classifySendError.ts'

/**
 * One realistic eth_sendRawTransaction error message per client wording and outcome.
 * Sources: geth core/txpool errors, erigon ("<ImportResult>: <DiscardReason>"), nethermind
 * (AcceptTxResult names in older releases, geth-style phrases in newer ones), besu (RpcErrorType
 * messages and TransactionInvalidReason names), reth, and anvil (recorded from the bundled anvil).
 */
const ADDR = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266'

const VECTORS: ReadonlyArray<[client: string, message: string, expected: SendOutcome]> = [
  // --- sent ---
  ['geth', 'already known', 'sent'],
  ['geth (old)', 'known transaction: 0x3a0f3b1c9ad0bc02f8c1c9e3b4a2f5a2e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9', 'sent'],
  ['erigon', 'ALREADY_EXISTS: already known', 'sent'],
  ['nethermind', 'AlreadyKnown', 'sent'],
  ['nethermind (new)', 'already known', 'sent'],
  ['besu', 'Known transaction', 'sent'],
  ['besu (reason)', 'TRANSACTION_ALREADY_KNOWN', 'sent'],
  ['reth', 'already known', 'sent'],
  ['anvil', 'transaction already imported', 'sent'],

  // --- nonce_too_low ---
  ['geth', `nonce too low: address ${ADDR}, tx: 0 state: 5`, 'nonce_too_low'],
  ['erigon', 'INTERNAL_ERROR: nonce too low', 'nonce_too_low'],
  ['nethermind', 'OldNonce, Current nonce: 5, nonce of rejected tx: 0', 'nonce_too_low'],
  ['nethermind (new)', 'nonce too low', 'nonce_too_low'],
  ['besu', 'Nonce too low', 'nonce_too_low'],
  ['besu (reason)', 'NONCE_TOO_LOW', 'nonce_too_low'],
  ['anvil', 'nonce too low', 'nonce_too_low'],

  // --- replacement_underpriced ---
  ['geth', 'replacement transaction underpriced', 'replacement_underpriced'],
  ['erigon', 'INTERNAL_ERROR: could not replace existing tx', 'replacement_underpriced'],
  ['erigon (fee class)', 'FEE_TOO_LOW: replacement transaction underpriced', 'replacement_underpriced'],
  ['nethermind', 'ReplacementNotAllowed', 'replacement_underpriced'],
  ['besu', 'Replacement transaction underpriced', 'replacement_underpriced'],
  ['besu (reason)', 'REPLACEMENT_UNDERPRICED', 'replacement_underpriced'],
  ['besu (reason, long)', 'TRANSACTION_REPLACEMENT_UNDERPRICED', 'replacement_underpriced'],
  ['anvil', 'replacement transaction underpriced', 'replacement_underpriced'],

  // --- fee_too_low ---
  ['geth', 'transaction underpriced', 'fee_too_low'],
  ['geth (tip detail)', 'transaction underpriced: tip needed 1000000000, tip permitted 1', 'fee_too_low'],
  ['geth', `max fee per gas less than block base fee: address ${ADDR}, maxFeePerGas: 1, baseFee: 7`, 'fee_too_low'],
  ['geth (short)', 'max fee per gas less than block base fee: maxFeePerGas: 1, baseFee: 7', 'fee_too_low'],
  ['erigon', 'FEE_TOO_LOW: underpriced', 'fee_too_low'],
  ['nethermind', 'FeeTooLow, MaxFeePerGas too low. MaxFeePerGas: 1, BaseFee: 7, MaxPriorityFeePerGas:1', 'fee_too_low'],
  ['nethermind', 'FeeTooLowToCompete', 'fee_too_low'],
  ['besu', 'Gas price below configured minimum gas price', 'fee_too_low'],
  ['besu', 'Gas price below current base fee', 'fee_too_low'],
  ['besu (reason)', 'GAS_PRICE_TOO_LOW', 'fee_too_low'],
  ['anvil', 'max fee per gas less than block base fee', 'fee_too_low'],

  // --- insufficient_funds ---
  ['geth', `insufficient funds for gas * price + value: address ${ADDR} have 0 want 21000`, 'insufficient_funds'],
  ['geth (new)', 'insufficient funds for gas * price + value: balance 0, tx cost 42000000000000, overshot 42000000000000', 'insufficient_funds'],
  ['erigon', 'INTERNAL_ERROR: insufficient funds', 'insufficient_funds'],
  ['nethermind', 'InsufficientFunds, Account balance: 0, cumulative cost: 21000', 'insufficient_funds'],
  ['nethermind (new)', 'insufficient funds for gas * price + value, Account balance: 0, pending cost: 0, transaction cost: 21000', 'insufficient_funds'],
  ['besu', 'Upfront cost exceeds account balance', 'insufficient_funds'],
  ['besu (reason)', 'UPFRONT_COST_EXCEEDS_BALANCE', 'insufficient_funds'],
  ['anvil', 'Insufficient funds for gas * price + value', 'insufficient_funds'],

  // --- invalid ---
  ['geth', 'intrinsic gas too low: gas 20000, minimum needed 21000', 'invalid'],
  ['geth', 'exceeds block gas limit', 'invalid'],
  ['geth', 'invalid sender', 'invalid'],
  ['geth', 'oversized data: transaction size 200000, limit 131072', 'invalid'],
  ['geth', 'invalid chain id for signer: have 5 want 1', 'provider_error'],
  ['geth (wrapped)', 'invalid sender: invalid chain id for signer: have 5 want 1', 'provider_error'],
  ['geth', `max priority fee per gas higher than max fee per gas: address ${ADDR}, maxPriorityFeePerGas: 2, maxFeePerGas: 1`, 'invalid'],
  ['geth', 'transaction type not supported', 'invalid'],
  // EIP-7825 (Osaka): a gas limit over 2^24 is never valid; EIP-3860: init code over 49152 bytes.
  ['geth', `transaction gas limit too high (cap: 16777216, tx: 16800000)`, 'invalid'],
  ['nethermind', 'TxGasLimitCapExceeded: Gas limit 16800000 exceeded cap of 16777216.', 'invalid'],
  ['geth', 'max initcode size exceeded: code size 60000 limit 49152', 'invalid'],
  ['erigon', 'INTERNAL_ERROR: IntrinsicGas', 'invalid'],
  ['erigon', 'INVALID: oversized data', 'invalid'],
  ['erigon', 'INVALID: invalid sender', 'invalid'],
  ['erigon', 'invalid chain id, expected: 1 got: 5', 'provider_error'],
  ['nethermind', 'GasLimitExceeded', 'invalid'],
  ['nethermind (new)', 'gas limit reached', 'invalid'],
  ['nethermind', 'Invalid, IntrinsicGasTooLow: Gas limit is too low.', 'invalid'],
  ['nethermind', 'transaction invalid, InvalidTxChainId: Expected 1, got 5.', 'provider_error'],
  ['nethermind', 'transaction invalid, InvalidTxSignature: Signature is invalid.', 'invalid'],
  ['besu', 'Intrinsic gas exceeds gas limit', 'invalid'],
  ['besu', 'Transaction gas limit exceeds block gas limit', 'invalid'],
  ['besu', 'Wrong chainId', 'provider_error'],
  ['besu (old)', 'Wrong Chain ID in transaction signature', 'provider_error'],
  ['besu', 'Invalid signature', 'invalid'],
  ['besu', 'Max priority fee per gas exceeds max fee per gas', 'invalid'],
  ['besu (reason)', 'INTRINSIC_GAS_EXCEEDS_GAS_LIMIT', 'invalid'],
  ['besu (reason)', 'EXCEEDS_BLOCK_GAS_LIMIT', 'invalid'],
  ['besu (reason)', 'WRONG_CHAIN_ID', 'provider_error'],
  ['besu (reason)', 'INVALID_SIGNATURE', 'invalid'],
  ['reth', 'invalid chain ID', 'provider_error'],
  ['anvil', 'intrinsic gas too low', 'invalid'],
  ['anvil', 'intrinsic gas too high -- tx.gas_limit > env.block.gas_limit', 'invalid'],
  ['anvil', 'invalid chain id for signer', 'provider_error'],

  // --- unknown ---
  ['any', 'something odd', 'unknown'],
  ['any', '', 'unknown'],
  ['geth', 'txpool is full', 'unknown'],
]

describe('classifySendMessage', () => {
  it.each(VECTORS)('%s: %j -> %s', (_client, message, expected) => {
    expect(classifySendMessage(message)).toBe(expected)
  })

  it.each([
    ['geth', 'replacement transaction underpriced'],
    ['besu', 'Replacement transaction underpriced'],
    ['besu (reason)', 'REPLACEMENT_UNDERPRICED'],
    ['nethermind', 'ReplacementNotAllowed'],
    ['erigon', 'FEE_TOO_LOW: replacement transaction underpriced'],
  ])('%s: %j is replacement_underpriced, not fee_too_low', (_client, message) => {
    const outcome = classifySendMessage(message)
    expect(outcome).not.toBe('fee_too_low')
    expect(outcome).toBe('replacement_underpriced')
  })

  it('is case-insensitive', () => {
    expect(classifySendMessage('NONCE TOO LOW')).toBe('nonce_too_low')
    expect(classifySendMessage('Already Known')).toBe('sent')
  })
})

describe('isProviderHttpStatus', () => {
  it.each([
    [408, true],
    [429, true],
    [500, true],
    [502, true],
    [503, true],
    [504, true],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
  ])('%i -> %s', (status, expected) => {
    expect(isProviderHttpStatus(status)).toBe(expected)
  })
})

describe('classifySendAnswer', () => {
  const cases: ReadonlyArray<[label: string, answer: SendAnswer, expected: SendOutcome]> = [
    ['ok', { kind: 'ok' }, 'sent'],
    ['timeout', { kind: 'timeout' }, 'provider_error'],
    ['network_error', { kind: 'network_error', message: 'fetch failed: ECONNREFUSED 10.0.0.5:8545' }, 'provider_error'],
    // A network error is a provider failure even if its text looks like a node answer.
    ['network_error with node-like text', { kind: 'network_error', message: 'nonce too low' }, 'provider_error'],
    ['HTTP 408', { kind: 'http_error', status: 408 }, 'provider_error'],
    ['HTTP 429', { kind: 'http_error', status: 429, message: 'Too Many Requests' }, 'provider_error'],
    ['HTTP 500', { kind: 'http_error', status: 500, message: 'Internal Server Error' }, 'provider_error'],
    ['HTTP 503 with a node-like message', { kind: 'http_error', status: 503, message: 'nonce too low' }, 'provider_error'],
    // geth's and besu's answer to a body over their limit: no call of it ran, whatever the transaction.
    ['HTTP 413 body too large', { kind: 'http_error', status: 413, message: 'content length too large (5242881>5242880)' }, 'provider_error'],
    ['HTTP 400 nonce too low', { kind: 'http_error', status: 400, message: 'nonce too low' }, 'nonce_too_low'],
    ['HTTP 400 insufficient funds', { kind: 'http_error', status: 400, message: 'insufficient funds for gas * price + value' }, 'insufficient_funds'],
    ['HTTP 400 without message', { kind: 'http_error', status: 400 }, 'unknown'],
    ['HTTP 400 unrelated message', { kind: 'http_error', status: 400, message: 'Bad Request' }, 'unknown'],
    ['rpc -32000 already known', { kind: 'rpc_error', code: -32000, message: 'already known' }, 'sent'],
    ['rpc -32003 anvil underpriced', { kind: 'rpc_error', code: -32003, message: 'replacement transaction underpriced' }, 'replacement_underpriced'],
    ['rpc -32005 limit exceeded', { kind: 'rpc_error', code: -32005, message: 'limit exceeded' }, 'provider_error'],
    // besu uses -32005 for a real transaction error: the message wins over the code.
    ['rpc -32005 besu block gas limit', { kind: 'rpc_error', code: -32005, message: 'Transaction gas limit exceeds block gas limit' }, 'invalid'],
    ['rpc rate limit text', { kind: 'rpc_error', code: -32000, message: 'rate limit exceeded, retry in 1s' }, 'provider_error'],
    ['rpc too many requests', { kind: 'rpc_error', message: 'Too Many Requests' }, 'provider_error'],
    ['rpc capacity', { kind: 'rpc_error', code: 429, message: 'Your app has exceeded its compute units per second capacity' }, 'provider_error'],
    ['rpc timeout text', { kind: 'rpc_error', code: -32000, message: 'request timed out' }, 'provider_error'],
    ['rpc header not found', { kind: 'rpc_error', code: -32000, message: 'header not found' }, 'provider_error'],
    ['rpc service unavailable', { kind: 'rpc_error', code: -32603, message: 'Service Unavailable' }, 'provider_error'],
    ['rpc something odd', { kind: 'rpc_error', code: -32000, message: 'something odd' }, 'unknown'],
    ['rpc something odd, no code', { kind: 'rpc_error', message: 'something odd' }, 'unknown'],
    // A JSON-RPC error body in an HTTP 429 or 5xx: unknown words are the provider failing; known words still win.
    ['HTTP 429 rpc QuickNode limit', { kind: 'rpc_error', code: -32007, status: 429, message: '100/second request limit reached - reduce calls per second' }, 'provider_error'],
    ['HTTP 503 rpc no healthy upstream', { kind: 'rpc_error', code: -32603, status: 503, message: 'no healthy upstream' }, 'provider_error'],
    ['HTTP 500 rpc nonce too low', { kind: 'rpc_error', code: -32000, status: 500, message: 'nonce too low' }, 'nonce_too_low'],
    ['HTTP 400 rpc something odd', { kind: 'rpc_error', code: -32000, status: 400, message: 'something odd' }, 'unknown'],
  ]

  it.each(cases.map(([label, answer, expected]) => ({ label, answer, expected })))('$label -> $expected', ({ answer, expected }) => {
    expect(classifySendAnswer(answer)).toBe(expected)
  })
})

import {
  BaseError,
  createClient,
  getAddress,
  http,
  isAddressEqual,
  keccak256,
  numberToHex,
  parseTransaction,
  recoverTransactionAddress,
  RpcRequestError,
  type Address,
  type Hex,
  type TransactionSerializable,
} from 'viem'
import { describeSendAnswer, toSendAnswer } from '../chain/toSendAnswer.ts'
import { isProviderFault } from '../chain/isProviderFault.ts'
import { createUrlRedactor, redactErrorInPlace } from '../chain/redactUrls.ts'
import { SignerLoadError } from './signerLoadError.ts'

export type RemoteSignerConfig = { name: string; remote: { url: string; address: Address; timeoutMs?: number } }

/** A remote signer that did not sign: unreachable, or answered with something other than the transaction asked for. */
export class RemoteSignerError extends Error {
  override name = 'RemoteSignerError'
  constructor(
    message: string,
    /**
     * The signer answered this request with an error of its own (a Clef rule, a Web3Signer policy, a person
     * who said no): it is up, and may well sign the next one. Not set when it could not be reached, timed out,
     * answered with an HTTP error, or signed something other than what was asked (the signer is then broken).
     */
    readonly refused = false,
  ) {
    super(message)
  }
}

const DEFAULT_TIMEOUT_MS = 10_000
/** JSON-RPC's "method not found". */
const METHOD_NOT_FOUND = -32601
/** Half the order of secp256k1: a signature's s above it is valid math but refused by every node (EIP-2). */
const HALF_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n / 2n

/** The JSON-RPC error of a failed call, if it has one. */
function rpcErrorOf(err: unknown): RpcRequestError | null {
  return err instanceof BaseError ? (err.walk((e) => e instanceof RpcRequestError) as RpcRequestError | null) : null
}

/**
 * A JSON-RPC signer answering `eth_signTransaction` (Web3Signer, geth or anvil with an unlocked account), or
 * Clef's external API (`account_list`, `account_signTransaction`: Clef has no `eth_*` methods). At start-up it
 * must be reachable and hold the address (`eth_accounts` or `account_list`, when it offers one). Each answer (the
 * raw signed transaction, or geth/Clef's `{ raw, tx }`) is decoded and checked field by field, by its recovered
 * sender and for a signature nodes take, before it is used: what is stored and broadcast is exactly the
 * transaction we asked for.
 */
export async function loadRemoteSigner(cfg: RemoteSignerConfig): Promise<{ address: Address; signTransaction: (tx: TransactionSerializable) => Promise<Hex> }> {
  const address = getAddress(cfg.remote.address)
  const redact = createUrlRedactor([cfg.remote.url])
  const client = createClient({ transport: http(cfg.remote.url, { timeout: cfg.remote.timeoutMs ?? DEFAULT_TIMEOUT_MS, retryCount: 0 }) })
  const call = async <T>(method: string, params: unknown[]): Promise<T> => {
    try {
      return (await client.request({ method: method as never, params: params as never })) as T
    } catch (err) {
      // The URL may carry credentials; nothing that leaves here holds them.
      throw redactErrorInPlace(err, redact)
    }
  }
  const where = redact(cfg.remote.url)

  let accounts: unknown
  /** Clef answers no eth_* method: its external API signs with account_signTransaction (same answer, `{ raw, tx }`). */
  let signMethod = 'eth_signTransaction'
  try {
    accounts = await call('eth_accounts', [])
  } catch (err) {
    if (isProviderFault(err)) throw new SignerLoadError(cfg.name, `remote signer ${where} cannot be reached: ${redact(describeSendAnswer(toSendAnswer(err)) ?? 'failed')}`)
    // Answered, but without eth_accounts (some signers offer only signing): reachable is all we can check. Unless it
    // is Clef: before, every request was sent eth_signTransaction, answered "method not found", taken for a refusal,
    // and waited on it for good while the service ran as if all was well.
    accounts = null
    if (rpcErrorOf(err)?.code === METHOD_NOT_FOUND) {
      const clef = await call('account_list', []).catch(() => null)
      if (Array.isArray(clef)) {
        accounts = clef
        signMethod = 'account_signTransaction'
      }
    }
  }
  if (Array.isArray(accounts) && !accounts.some((a) => typeof a === 'string' && isAddressEqual(a as Address, address)))
    throw new SignerLoadError(cfg.name, `remote signer ${where} does not hold ${address}`)

  return {
    address,
    async signTransaction(tx) {
      const request = toRpcRequest(address, tx)
      let answer: unknown
      try {
        answer = await call(signMethod, [request])
      } catch (err) {
        const refused = isRefusal(err)
        throw new RemoteSignerError(`signer "${cfg.name}": ${signMethod} at ${where} ${refused ? 'refused' : 'failed'}: ${redact(describeSendAnswer(toSendAnswer(err)) ?? 'failed')}`, refused)
      }
      const raw = typeof answer === 'string' ? answer : (answer as { raw?: unknown } | null)?.raw
      if (typeof raw !== 'string' || !/^0x[0-9a-fA-F]+$/.test(raw))
        throw new RemoteSignerError(`signer "${cfg.name}": ${signMethod} at ${where} answered without a signed transaction`)
      await checkSigned(cfg.name, address, tx, raw as Hex)
      return raw.toLowerCase() as Hex
    },
  }
}

/**
 * Whether the signer itself said no: a JSON-RPC error in an HTTP 2xx answer (Clef's "Request denied", a policy's
 * words). Not an internal error (-32603: the signer's own trouble), not an error with an HTTP error status (an
 * expired token at a proxy in front of it), not a timeout, a dropped connection or anything else viem throws.
 */
function isRefusal(err: unknown): boolean {
  const rpc = rpcErrorOf(err)
  // Nor "method not found" or "invalid params": the signer does not speak this request's form (a setup to fix), and
  // taken for a "no", the request was never moved to another signer.
  if (!rpc || rpc.code === -32603 || rpc.code === METHOD_NOT_FOUND || rpc.code === -32602) return false
  if (rpc.status !== undefined && (rpc.status < 200 || rpc.status >= 300)) return false
  return !isProviderFault(err)
}

/** The request as JSON-RPC wants it: hex quantities, `data` for the call, `type` and the fee fields of that type. */
export function toRpcRequest(from: Address, tx: TransactionSerializable): Record<string, string> {
  const hex = (v: bigint | number | undefined) => numberToHex(v ?? 0)
  const base: Record<string, string> = {
    from,
    gas: hex(tx.gas),
    value: hex(tx.value),
    data: tx.data ?? '0x',
    nonce: hex(tx.nonce),
    chainId: hex(tx.chainId),
  }
  if (tx.to) base.to = tx.to
  if (tx.type === 'legacy' || tx.gasPrice !== undefined) return { ...base, type: '0x0', gasPrice: hex(tx.gasPrice) }
  return { ...base, type: '0x2', maxFeePerGas: hex(tx.maxFeePerGas), maxPriorityFeePerGas: hex(tx.maxPriorityFeePerGas) }
}

async function checkSigned(name: string, from: Address, asked: TransactionSerializable, raw: Hex): Promise<void> {
  let got: ReturnType<typeof parseTransaction>
  let sender: Address
  try {
    got = parseTransaction(raw)
    sender = await recoverTransactionAddress({ serializedTransaction: raw as never })
  } catch {
    throw new RemoteSignerError(`signer "${name}": the remote signer answered with bytes that are not a signed transaction (${keccak256(raw)})`)
  }
  const legacy = asked.type === 'legacy' || asked.gasPrice !== undefined
  const same = (a: unknown, b: unknown) => String(a ?? 0) === String(b ?? 0)
  const differences = [
    !isAddressEqual(sender, from) && `sender ${sender}`,
    got.type !== (legacy ? 'legacy' : 'eip1559') && `type ${got.type}`,
    !same(got.chainId, asked.chainId) && `chainId ${got.chainId}`,
    !same(got.nonce, asked.nonce) && `nonce ${got.nonce}`,
    !same(got.gas, asked.gas) && `gas ${got.gas}`,
    !same(got.value, asked.value) && `value ${got.value}`,
    (got.to ?? null)?.toLowerCase() !== (asked.to ?? null)?.toLowerCase() && `to ${got.to}`,
    (got.data ?? '0x').toLowerCase() !== (asked.data ?? '0x').toLowerCase() && 'data',
    legacy ? !same(got.gasPrice, asked.gasPrice) && `gasPrice ${got.gasPrice}` : !same(got.maxFeePerGas, asked.maxFeePerGas) && `maxFeePerGas ${got.maxFeePerGas}`,
    !legacy && !same(got.maxPriorityFeePerGas, asked.maxPriorityFeePerGas) && `maxPriorityFeePerGas ${got.maxPriorityFeePerGas}`,
    // We never ask for one: an access list added costs intrinsic gas (a 21,000-gas cancel or filler turns invalid).
    !legacy && ((got as { accessList?: readonly unknown[] }).accessList?.length ?? 0) > 0 && 'accessList',
  ].filter((d): d is string => typeof d === 'string')
  if (differences.length)
    throw new RemoteSignerError(`signer "${name}": the remote signer signed a different transaction than asked (${differences.join(', ')})`)
  // A KMS or HSM behind the signer that does not normalize s returns a high s half the time: the transaction
  // recovers to the right sender, but nodes refuse it as an invalid sender, and the request failed as never valid.
  if (got.s !== undefined && BigInt(got.s) > HALF_N)
    throw new RemoteSignerError(`signer "${name}": the remote signer answered with a high-s signature (EIP-2), which nodes refuse (${keccak256(raw)})`)
}

import type { Address, Hex } from 'viem'
import type { FileConfig } from '../config/schema.ts'
import { ERROR_CODE, InputError } from '../core/errors.ts'
import { minimumGasLimit } from '../core/intrinsicGas.ts'
import { parseAddress, parseBigInt, parseDateTime, parseHex, parseInteger, parseShortString } from './parseFields.ts'

/** A request whose fields passed every check that needs neither the chain nor the config's policy and signers. */
export type BroadcastRequest = {
  chainId: number
  to: Address | null
  data: Hex
  value: bigint
  gasLimit: bigint | null
  idempotencyKey: string | null
  validUntil: Date | null
  /** The signer to use; null: round-robin over the chain's signers. Checked against the signers when accepted. */
  from: Address | null
  /**
   * False when it named no chain (the one served was taken): a retry under its idempotencyKey then matches the stored
   * request on whichever chain it went to, as after the only chain was replaced. Absent: named.
   */
  chainNamed?: boolean
}

/**
 * A request refused for the config as it is now (its chain is not served, or several chains are and it names none,
 * or its gasLimit is under the chain's floor), carrying an idempotency key: a retry of one stored before the config
 * changed (its answer lost) gets that transaction, as it does past its validUntil (acceptTransaction.ts,
 * checkBeforeStoring); else `refusal` is the answer. `chainId` is null when it named none.
 */
export type RefusedUnlessStored = Omit<BroadcastRequest, 'chainId' | 'idempotencyKey'> & { chainId: number | null; idempotencyKey: string; refusal: InputError }

export const BROADCAST_FIELDS = ['chainId', 'to', 'data', 'value', 'gasLimit', 'idempotencyKey', 'validUntil', 'from'] as const

/** Gas above this is more than any EVM chain's block gas limit today. */
const MAX_GAS_LIMIT = 1_000_000_000n

/**
 * Checks a broadcast request from either API. Fields may come as JSON values
 * (REST) or already parsed by the GraphQL scalars; both go through the same parsers.
 */
export function validateBroadcastRequest(input: unknown, config: Pick<FileConfig, 'chains'>, now = new Date()): BroadcastRequest | RefusedUnlessStored {
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw new InputError(ERROR_CODE.INVALID_INPUT, 'Expected a JSON object with the transaction fields')
  const body = input as Record<string, unknown>
  for (const key of Object.keys(body))
    if (!(BROADCAST_FIELDS as readonly string[]).includes(key))
      throw new InputError(ERROR_CODE.UNKNOWN_FIELD, `Unknown field "${key.slice(0, 64)}"; expected some of: ${BROADCAST_FIELDS.join(', ')}`, key.slice(0, 64))
  const present = (k: string) => body[k] !== undefined && body[k] !== null

  // Checked first: its words ("chainId: …") come before those of the other fields' values.
  const chainId = present('chainId') ? parseInteger(body.chainId, 'chainId', { min: 1, max: 2 ** 53 - 1 }) : null
  const to = present('to') ? parseAddress(body.to, 'to') : null
  const data = present('data') ? parseHex(body.data, 'data') : '0x'
  if (to === null && data === '0x')
    throw new InputError(ERROR_CODE.INVALID_INPUT, 'to: required unless data holds contract creation code', 'to')
  const value = present('value') ? parseBigInt(body.value, 'value') : 0n
  const gasLimit = present('gasLimit') ? parseBigInt(body.gasLimit, 'gasLimit', { min: 21_000n, max: MAX_GAS_LIMIT }) : null
  const idempotencyKey = present('idempotencyKey') ? parseShortString(body.idempotencyKey, 'idempotencyKey', 200) : null
  const validUntil = present('validUntil') ? parseDateTime(body.validUntil, 'validUntil') : null
  // With an idempotency key the request may be a retry of one stored before its deadline: the accept path
  // answers with that one, or refuses it as past (acceptTransaction.ts).
  if (validUntil && validUntil.getTime() <= now.getTime() && idempotencyKey === null) throw validUntilPassed()
  const from = present('from') ? parseAddress(body.from, 'from') : null
  const fields = { to, data, value, gasLimit, validUntil, from }
  const refusal = refusedByConfig(config, chainId, fields)
  // The chain's policy and signers are checked when it is accepted (acceptTransaction.ts, checkBeforeStoring): a
  // retry of a request stored before the config changed gets that transaction. So for these checks of the config.
  if (refusal && idempotencyKey !== null) return { ...fields, chainId, idempotencyKey, refusal, chainNamed: chainId !== null }
  if (refusal) throw refusal
  return { ...fields, chainId: chainId ?? config.chains[0]!.chainId, idempotencyKey, chainNamed: chainId !== null }
}

/** Why the config as it is now refuses a request: its chain, or its gasLimit under the chain's floor; null if it passes. */
function refusedByConfig(config: Pick<FileConfig, 'chains'>, chainId: number | null, { to, data, gasLimit }: Pick<BroadcastRequest, 'to' | 'data' | 'gasLimit'>): InputError | null {
  const served = config.chains.map((c) => c.chainId).join(', ')
  if (chainId === null && config.chains.length !== 1)
    return new InputError(ERROR_CODE.CHAIN_REQUIRED, `chainId: required when several chains are configured (${served})`, 'chainId')
  const chain = chainId === null ? config.chains[0]! : config.chains.find((c) => c.chainId === chainId)
  if (!chain) return new InputError(ERROR_CODE.UNKNOWN_CHAIN, `chainId: chain ${chainId} is not served here; configured: ${served}`, 'chainId')
  if (gasLimit !== null) {
    const least = minimumGasLimit({ to, data }, { calldataFloor: chain.calldataFloor ?? true })
    if (gasLimit < least)
      return new InputError(
        ERROR_CODE.VALUE_OUT_OF_RANGE,
        `gasLimit: ${gasLimit} is below the ${least} gas this transaction costs before it runs (21000, its calldata${to === null ? ', contract creation' : ''}); nodes refuse it`,
        'gasLimit',
      )
  }
  return null
}

export function validUntilPassed(): InputError {
  return new InputError(ERROR_CODE.VALID_UNTIL_PASSED, 'validUntil: is already in the past', 'validUntil')
}

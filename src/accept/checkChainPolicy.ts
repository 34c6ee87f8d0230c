import type { ChainConfig } from '../config/schema.ts'
import { ERROR_CODE, InputError } from '../core/errors.ts'
import type { BroadcastRequest } from './validateBroadcastRequest.ts'

/**
 * A chain's policy (config `chains[].policy`), checked before anything is stored:
 * a leaked submitter key can then only do what the operator allowed.
 */
export function checkChainPolicy(req: BroadcastRequest, chain: Pick<ChainConfig, 'chainId' | 'policy'> | undefined): void {
  const policy = chain?.policy
  if (!policy) return
  if (policy.allowedTo) {
    if (req.to === null)
      throw new InputError(ERROR_CODE.TO_NOT_ALLOWED, `to: chain ${chain.chainId} allows only listed recipients; contract creation is refused`, 'to')
    // Both sides are checksummed (config and parser), so plain comparison is exact.
    if (!policy.allowedTo.includes(req.to))
      throw new InputError(ERROR_CODE.TO_NOT_ALLOWED, `to: ${req.to} is not an allowed recipient on chain ${chain.chainId}`, 'to')
  }
  if (policy.maxValue !== undefined && req.value > policy.maxValue)
    throw new InputError(ERROR_CODE.VALUE_TOO_HIGH, `value: at most ${policy.maxValue} wei on chain ${chain.chainId}`, 'value')
  if (policy.maxGasLimit !== undefined && req.gasLimit !== null && req.gasLimit > policy.maxGasLimit)
    throw new InputError(ERROR_CODE.GAS_LIMIT_TOO_HIGH, `gasLimit: at most ${policy.maxGasLimit} on chain ${chain.chainId}`, 'gasLimit')
}

import { getAddress, type Address, type Hex, type TransactionSerializable } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import type { SignerConfig } from '../config/schema.ts'

/** A key that can sign for one or more chains. The key itself never leaves this module. */
export type Signer = {
  name: string
  address: Address
  chainIds: number[]
  signTransaction: (tx: TransactionSerializable) => Promise<Hex>
}

export class SignerLoadError extends Error {
  override name = 'SignerLoadError'
  constructor(signerName: string, reason: string) {
    super(`signer "${signerName}": ${reason}`)
  }
}

export async function loadSigner(cfg: SignerConfig): Promise<Signer> {
  if (cfg.privateKey) {
    let account
    try {
      account = privateKeyToAccount(cfg.privateKey as Hex)
    } catch {
      // Never echo the key.
      throw new SignerLoadError(cfg.name, 'privateKey is not a valid secp256k1 private key')
    }
    return { name: cfg.name, address: account.address, chainIds: cfg.chainIds, signTransaction: (tx) => account.signTransaction(tx) }
  }
  if (cfg.remote) throw new SignerLoadError(cfg.name, 'remote signers are not supported yet')
  throw new SignerLoadError(cfg.name, 'keystore signers are not supported yet')
}

export type SignerRegistry = {
  all: Signer[]
  forChain: (chainId: number) => Signer[]
  get: (chainId: number, address: string) => Signer | undefined
}

export async function loadSigners(cfgs: SignerConfig[]): Promise<SignerRegistry> {
  const all = await Promise.all(cfgs.map(loadSigner))
  const byChain = new Map<number, Signer[]>()
  for (const s of all) for (const id of s.chainIds) byChain.set(id, [...(byChain.get(id) ?? []), s])
  return {
    all,
    forChain: (chainId) => byChain.get(chainId) ?? [],
    get: (chainId, address) => byChain.get(chainId)?.find((s) => s.address === getAddress(address)),
  }
}

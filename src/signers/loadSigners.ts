import { getAddress, type Address, type Hex, type TransactionSerializable } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { createKeySigner } from './signWithKey.ts'
import type { SignerConfig } from '../config/schema.ts'
import { loadKeystoreSigner } from './keystoreSigner.ts'
import { loadRemoteSigner } from './remoteSigner.ts'
import { SignerLoadError } from './signerLoadError.ts'

export { SignerLoadError }

export type SignerKind = 'privateKey' | 'keystore' | 'remote'

/** A key that can sign for one or more chains. The key itself never leaves the module that loaded it. */
export type Signer = {
  name: string
  kind: SignerKind
  address: Address
  chainIds: number[]
  signTransaction: (tx: TransactionSerializable) => Promise<Hex>
}

export async function loadSigner(cfg: SignerConfig): Promise<Signer> {
  const common = { name: cfg.name, chainIds: cfg.chainIds }
  if (cfg.privateKey) {
    let account
    let signTransaction
    try {
      account = privateKeyToAccount(cfg.privateKey as Hex)
      signTransaction = createKeySigner(cfg.privateKey as Hex)
    } catch {
      // Never echo the key.
      throw new SignerLoadError(cfg.name, 'privateKey is not a valid secp256k1 private key')
    }
    return { ...common, kind: 'privateKey', address: account.address, signTransaction }
  }
  if (cfg.keystore !== undefined) {
    // The config schema makes a keystore come with its password.
    const loaded = await loadKeystoreSigner({ name: cfg.name, keystore: cfg.keystore, password: cfg.password ?? '' })
    return { ...common, kind: 'keystore', ...loaded }
  }
  if (cfg.remote) return { ...common, kind: 'remote', ...(await loadRemoteSigner({ name: cfg.name, remote: cfg.remote })) }
  throw new SignerLoadError(cfg.name, 'give one of privateKey, keystore or remote')
}

export type SignerRegistry = {
  all: Signer[]
  forChain: (chainId: number) => Signer[]
  get: (chainId: number, address: string) => Signer | undefined
}

/** Loads every signer at start-up (in parallel: keystore decryption takes a second or two each); any failure stops the start. */
export async function loadSigners(cfgs: SignerConfig[]): Promise<SignerRegistry> {
  const all = await Promise.all(cfgs.map(loadSigner))
  const byChain = new Map<number, Signer[]>()
  for (const s of all)
    for (const id of s.chainIds) {
      const same = byChain.get(id)?.find((other) => other.address === s.address)
      // Two signers with one address would hand out the same nonces twice.
      if (same) throw new SignerLoadError(s.name, `has the same address ${s.address} as signer "${same.name}" on chain ${id}`)
      byChain.set(id, [...(byChain.get(id) ?? []), s])
    }
  return {
    all,
    forChain: (chainId) => byChain.get(chainId) ?? [],
    get: (chainId, address) => byChain.get(chainId)?.find((s) => s.address === getAddress(address)),
  }
}

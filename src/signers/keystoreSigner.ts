import { readFile } from 'node:fs/promises'
import { Wallet } from '@ethereumjs/wallet'
import { bytesToHex, getAddress, isAddress, type Address, type Hex, type TransactionSerializable } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { SignerLoadError } from './signerLoadError.ts'
import { createKeySigner } from './signWithKey.ts'

export type KeystoreSignerConfig = { name: string; keystore: string; password: string }

/**
 * An encrypted JSON keystore (Web3 Secret Storage v3, as geth, Clef, ethers and
 * foundry's `cast wallet` write them: scrypt or pbkdf2, aes-128-ctr), decrypted
 * once at start-up. viem cannot decrypt keystores; @ethereumjs/wallet does. The
 * key stays in this closure; errors name the file, never the password.
 */
export async function loadKeystoreSigner(cfg: KeystoreSignerConfig): Promise<{ address: Address; signTransaction: (tx: TransactionSerializable) => Promise<Hex> }> {
  let text: string
  try {
    text = await readFile(cfg.keystore, 'utf8')
  } catch (err) {
    throw new SignerLoadError(cfg.name, `cannot read keystore ${cfg.keystore}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  let json: { version?: unknown; address?: unknown }
  try {
    json = JSON.parse(text) as typeof json
  } catch {
    throw new SignerLoadError(cfg.name, `keystore ${cfg.keystore} is not valid JSON`)
  }
  if (json.version !== 3) throw new SignerLoadError(cfg.name, `keystore ${cfg.keystore} is not a version 3 keystore`)
  let wallet: Wallet
  try {
    // nonStrict: ethers writes "Crypto" where geth writes "crypto".
    wallet = await Wallet.fromV3(text, cfg.password, true)
  } catch (err) {
    const why = /passphrase/i.test((err as Error).message) ? 'wrong password (or a damaged file)' : (err as Error).message
    throw new SignerLoadError(cfg.name, `cannot decrypt keystore ${cfg.keystore}: ${why}`)
  }
  const privateKey = bytesToHex(wallet.getPrivateKey())
  const account = privateKeyToAccount(privateKey)
  const stated = typeof json.address === 'string' ? (json.address.startsWith('0x') ? json.address : `0x${json.address}`) : null
  // The address beside the ciphertext is not protected by the MAC: a mismatch means a damaged or tampered file.
  if (stated !== null && isAddress(stated, { strict: false })) {
    if (getAddress(stated) !== account.address)
      throw new SignerLoadError(cfg.name, `keystore ${cfg.keystore} says address ${getAddress(stated)} but its key is for ${account.address}`)
  }
  // The same native signer as a privateKey signer (signWithKey.ts): signing runs on the API's event loop.
  return { address: account.address, signTransaction: createKeySigner(privateKey) }
}

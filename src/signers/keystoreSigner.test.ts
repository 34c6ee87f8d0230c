import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Wallet } from '@ethereumjs/wallet'
import { hexToBytes, recoverTransactionAddress } from 'viem'
import { loadKeystoreSigner } from './keystoreSigner.ts'

/** Written by ethers v6 (so the key is "Crypto"), scrypt N=4096, password "correct horse": anvil dev account 1. */
const FIXTURE = new URL('../../tests/fixtures/keystore-anvil-1.json', import.meta.url).pathname
const ACCOUNT_1 = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
const ACCOUNT_1_KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d'
const dir = mkdtempSync(join(tmpdir(), 'keystore-test-'))

describe('loadKeystoreSigner', () => {
  it('decrypts an ethers keystore (scrypt) and signs with its key', async () => {
    const signer = await loadKeystoreSigner({ name: 'cold', keystore: FIXTURE, password: 'correct horse' })
    expect(signer.address).toBe(ACCOUNT_1)
    const raw = await signer.signTransaction({ chainId: 1, nonce: 0, gas: 21_000n, to: ACCOUNT_1, value: 1n, maxFeePerGas: 2n, maxPriorityFeePerGas: 1n, type: 'eip1559' })
    expect(await recoverTransactionAddress({ serializedTransaction: raw as never })).toBe(ACCOUNT_1)
  })

  it('decrypts a geth-style keystore ("crypto", pbkdf2)', async () => {
    const json = await Wallet.fromPrivateKey(hexToBytes(ACCOUNT_1_KEY)).toV3String('pw', { kdf: 'pbkdf2', c: 1024 })
    expect(json).toContain('"crypto"')
    const path = join(dir, 'geth.json')
    writeFileSync(path, json)
    expect((await loadKeystoreSigner({ name: 'geth', keystore: path, password: 'pw' })).address).toBe(ACCOUNT_1)
  })

  it.each([
    ['a wrong password', { keystore: FIXTURE, password: 'wrong horse' }, `signer "cold": cannot decrypt keystore ${FIXTURE}: wrong password (or a damaged file)`],
    ['a missing file', { keystore: join(dir, 'missing.json'), password: 'x' }, `signer "cold": cannot read keystore ${join(dir, 'missing.json')}: ENOENT`],
  ])('refuses %s, naming the signer and never the password', async (_, cfg, message) => {
    const err = await loadKeystoreSigner({ name: 'cold', ...cfg }).catch((e: Error) => e)
    expect((err as Error).message).toBe(message)
    expect(`${(err as Error).message}${(err as Error).stack}`).not.toContain('wrong horse')
  })

  it('refuses a file that is not a keystore, or whose address is not its key', async () => {
    const notJson = join(dir, 'not.json')
    writeFileSync(notJson, 'hello')
    await expect(loadKeystoreSigner({ name: 'k', keystore: notJson, password: 'x' })).rejects.toThrow(`signer "k": keystore ${notJson} is not valid JSON`)
    const tampered = join(dir, 'tampered.json')
    writeFileSync(tampered, readFileSync(FIXTURE, 'utf8').replace('70997970c51812dc3a010c7d01b50e0d17dc79c8', 'f39fd6e51aad88f6f4ce6ab8827279cfffb92266'))
    await expect(loadKeystoreSigner({ name: 'k', keystore: tampered, password: 'correct horse' })).rejects.toThrow(
      'says address 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 but its key is for 0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
    )
  })
})

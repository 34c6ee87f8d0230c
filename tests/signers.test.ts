import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getAddress, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { ANVIL_DEV_ACCOUNTS } from '../src/dev/startAnvil.ts'
import { REMOTE_FAILED } from '../src/sign/moveToFundedSigner.ts'
import { chainControl, submit } from './helpers/chainControl.ts'
import type { FaultProxy } from './helpers/faultProxy.ts'
import { ADMIN_KEY, SIGNER, capturedLogger, startTestEnv, waitFor, type TestEnv } from './helpers/testService.ts'
import { ensureWebBuilt, launchBrowser } from './helpers/browser.ts'
import { REMOTE_ADDRESS, startWithRemoteSigner } from './helpers/remoteSigner.ts'

/** anvil dev account 1, in a keystore written by ethers (scrypt), password "correct horse". */
const KEYSTORE = new URL('./fixtures/keystore-anvil-1.json', import.meta.url).pathname
const KEYSTORE_PASSWORD = 'correct horse'
const KEYSTORE_ADDRESS = ANVIL_DEV_ACCOUNTS[1].address
const TO = '0x000000000000000000000000000000000000dEaD'
/** anvil dev account 6's key. */
const FUNDED_6 = '0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e'

const SECRETS = [SIGNER.privateKey, SIGNER.privateKey.slice(2), ANVIL_DEV_ACCOUNTS[1].privateKey.slice(2), KEYSTORE_PASSWORD]

describe('several signers on one chain: private key, keystore, remote', () => {
  let env: TestEnv
  const { log, lines } = capturedLogger()
  beforeAll(async () => {
    env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      log,
      config: (c, anvil) => {
        c.signers.push(
          { name: 'cold', chainIds: [31337], keystore: KEYSTORE, password: KEYSTORE_PASSWORD },
          { name: 'remote', chainIds: [31337], remote: { url: anvil.url, address: REMOTE_ADDRESS } },
        )
      },
    })
  })
  afterAll(async () => {
    await env?.stop()
  })

  async function confirmed(ids: string[]): Promise<any[]> {
    return waitFor(
      'all CONFIRMED',
      async () => {
        const all = await Promise.all(
          ids.map(async (id) => (await env.graphql(`query($id: ID!) { transaction(id: $id) { id status from nonce hash } }`, { id })).json.data.transaction),
        )
        return all.every((t) => t.status === 'CONFIRMED') && all
      },
      60_000,
      200,
    )
  }

  it('sends from the signer named in `from` (REST and GraphQL), each with its own nonces', async () => {
    const ids: string[] = []
    for (const from of [SIGNER.address, KEYSTORE_ADDRESS, REMOTE_ADDRESS]) {
      for (let i = 0; i < 3; i++) ids.push(await submit(env, { to: TO, value: String(i + 1), from: from.toLowerCase() }))
      const { json } = await env.graphql(`mutation($input: BroadcastTransactionInput!) { broadcastTransaction(input: $input) { id from } }`, {
        input: { to: TO, value: '4', from },
      })
      expect(json.data.broadcastTransaction.from).toBe(from)
      ids.push(json.data.broadcastTransaction.id)
    }
    const txs = await confirmed(ids)
    for (const [i, from] of [SIGNER.address, KEYSTORE_ADDRESS, REMOTE_ADDRESS].entries()) {
      const mine = txs.slice(i * 4, i * 4 + 4)
      expect(mine.every((t) => t.from === from)).toBe(true)
      const onChain = await Promise.all(mine.map((t) => env.chain.getTransaction({ hash: t.hash })))
      expect(onChain.map((tx) => getAddress(tx.from))).toEqual([from, from, from, from])
      expect(onChain.map((tx) => tx.nonce).sort()).toEqual([0, 1, 2, 3])
    }
  })

  it('takes turns over the signers when `from` is left out', async () => {
    const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => submit(env, { to: TO, value: String(10 + i) })))
    const txs = await confirmed(ids)
    const counts = new Map<string, number>()
    for (const t of txs) counts.set(t.from, (counts.get(t.from) ?? 0) + 1)
    expect(Object.fromEntries(counts)).toEqual({ [SIGNER.address]: 2, [KEYSTORE_ADDRESS]: 2, [REMOTE_ADDRESS]: 2 })
    for (const from of [SIGNER.address, KEYSTORE_ADDRESS, REMOTE_ADDRESS]) expect(await env.chain.getTransactionCount({ address: from })).toBe(6)
  })

  it('refuses a `from` that is no signer of the chain: 400 UNKNOWN_SIGNER', async () => {
    const rest = await env.post('/broadcast_transaction', { to: TO, from: ANVIL_DEV_ACCOUNTS[2].address })
    expect(rest.status).toBe(400)
    expect(rest.json.error).toMatchObject({ code: 'UNKNOWN_SIGNER', field: 'from' })
    expect(rest.json.error.message).toContain(`from: ${ANVIL_DEV_ACCOUNTS[2].address} is not a signer of chain 31337`)
    const gql = await env.graphql(`mutation($input: BroadcastTransactionInput!) { broadcastTransaction(input: $input) { id } }`, {
      input: { to: TO, from: ANVIL_DEV_ACCOUNTS[2].address },
    })
    expect(gql.json.errors[0].extensions).toEqual({ code: 'UNKNOWN_SIGNER', field: 'from' })
    const bad = await env.post('/broadcast_transaction', { to: TO, from: '0x1234' })
    expect(bad.json.error).toMatchObject({ code: 'INVALID_ADDRESS', field: 'from' })
  })

  it('an idempotent retry naming another signer is a conflict', async () => {
    await submit(env, { to: TO, value: '1', idempotencyKey: 'signer-key', from: SIGNER.address })
    const again = await env.post('/broadcast_transaction', { to: TO, value: '1', idempotencyKey: 'signer-key', from: KEYSTORE_ADDRESS })
    expect(again.status).toBe(409)
    expect(again.json.error.code).toBe('IDEMPOTENCY_CONFLICT')
  })

  it('never shows a key or password in logs or API answers', async () => {
    const { json } = await env.graphql(`{ transactions(first: 100) { edges { node { from attempts { hash providers { error } } } } } }`)
    const text = JSON.stringify(json) + lines.join('')
    expect(lines.length).toBeGreaterThan(0)
    expect(SECRETS.filter((s) => text.toLowerCase().includes(s.toLowerCase()))).toEqual([])
  })
})

describe('a signer that cannot load stops the start, naming it', () => {
  it('wrong keystore password', async () => {
    const err = (await startTestEnv({
      config: (c) => c.signers.push({ name: 'cold', chainIds: [31337], keystore: KEYSTORE, password: 'not the password' }),
    }).catch((e: Error) => e)) as Error
    expect(err.message).toBe(`signer "cold": cannot decrypt keystore ${KEYSTORE}: wrong password (or a damaged file)`)
    expect(`${err.message}${err.stack}`).not.toContain('not the password')
  })

  it('unreachable remote signer', async () => {
    const err = (await startTestEnv({
      config: (c) => c.signers.push({ name: 'far', chainIds: [31337], remote: { url: 'http://127.0.0.1:9/', address: REMOTE_ADDRESS, timeoutMs: 1_000 } }),
    }).catch((e: Error) => e)) as Error
    expect(err.message).toMatch(/^signer "far": remote signer http:\/\/127\.0\.0\.1:9\/ cannot be reached: /)
  })

  it('remote signer that does not hold the address', async () => {
    const err = (await startTestEnv({
      config: (c, anvil) => c.signers.push({ name: 'stranger', chainIds: [31337], remote: { url: anvil.url, address: TO } }),
    }).catch((e: Error) => e)) as Error
    expect(err.message).toMatch(/^signer "stranger": remote signer http:\/\/127\.0\.0\.1:\d+ does not hold 0x000000000000000000000000000000000000dEaD$/)
  })
})

describe('requests that name no signer, with one signer that cannot send', () => {
  let env: TestEnv | undefined
  afterAll(async () => {
    await env?.stop()
  })

  /** The service with two more signers, `funded` and `broke` (two anvil dev accounts, the second emptied). */
  async function startWithBrokeSigner(fundedKey: Hex, brokeKey: Hex) {
    await env?.stop()
    const funded = privateKeyToAccount(fundedKey)
    const broke = privateKeyToAccount(brokeKey)
    env = await startTestEnv({
      anvil: { blockTimeSec: 0.2 },
      config: (c) =>
        c.signers.push({ name: 'funded', chainIds: [31337], privateKey: fundedKey }, { name: 'broke', chainIds: [31337], privateKey: brokeKey }),
    })
    await env.chain.request({ method: 'anvil_setBalance' as never, params: [broke.address, '0x0'] as never })
    return { env: env as TestEnv, funded, broke }
  }

  it('go to the signers that can: one short of funds, with work piling up, gets no more', async () => {
    // anvil's dev accounts 4 and 5 (funded at start).
    const { env, funded, broke } = await startWithBrokeSigner(
      '0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a',
      '0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba',
    )
    const stuck = await Promise.all([1, 2, 3].map((i) => submit(env!, { to: TO, value: String(i), from: broke.address })))
    await waitFor('the broke signer set its requests aside', async () => {
      const all = await Promise.all(stuck.map(async (id) => (await env!.graphql(`query($id: ID!) { transaction(id: $id) { status error { code } } }`, { id })).json.data.transaction))
      return all.every((t) => t.status === 'QUEUED' && t.error?.code === 'INSUFFICIENT_FUNDS')
    })
    // The service's view of each signer's backlog is at most a second old.
    await new Promise((r) => setTimeout(r, 1_200))
    const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => submit(env!, { to: TO, value: String(20 + i) })))
    const txs = await waitFor('all CONFIRMED', async () => {
      const all = await Promise.all(ids.map(async (id) => (await env!.graphql(`query($id: ID!) { transaction(id: $id) { status from } }`, { id })).json.data.transaction))
      return all.every((t) => t.status === 'CONFIRMED') && all
    }, 30_000)
    const by = new Map<string, number>()
    for (const t of txs) by.set(t.from, (by.get(t.from) ?? 0) + 1)
    // Before, taking turns blindly: two of the six went to the broke signer and waited there with its own three.
    expect(Object.fromEntries(by)).toEqual({ [SIGNER.address]: 3, [funded.address]: 3 })
  })

  it('a signer that holds a request too dear for it still takes the requests moved off a broke signer', async () => {
    const { env, funded, broke } = await startWithBrokeSigner(FUNDED_6, '0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356')
    // A typo'd amount named for each signer that can pay: each sets it aside for funds (an hour's patience).
    const dear = await Promise.all([SIGNER.address, funded.address].map((from) => submit(env!, { to: TO, value: (10n ** 24n).toString(), gasLimit: '21000', from })))
    const query = `query($id: ID!) { transaction(id: $id) { status from error { code } } }`
    for (const id of dear) await waitFor('the too dear request set aside', async () => (await env!.graphql(query, { id })).json.data.transaction.error?.code === 'INSUFFICIENT_FUNDS')
    // The broke signer, the least loaded, is given requests; it cannot pay, and they move to the others.
    const ids = await Promise.all(Array.from({ length: 9 }, (_, i) => submit(env!, { to: TO, value: String(70 + i), gasLimit: '21000' })))
    // Before: the others' room counted the too dear request against them (below zero), so nothing moved and the
    // broke signer's requests waited for its funds.
    const txs = await waitFor('all nine CONFIRMED', async () => {
      const all = await Promise.all(ids.map(async (id) => (await env!.graphql(query, { id })).json.data.transaction))
      return all.every((t) => t.status === 'CONFIRMED') && all
    }, 30_000)
    expect(txs.filter((t) => t.from === broke.address)).toEqual([])
  })

  it('a request the service gave to a signer that cannot pay moves to one that can and confirms; one that named that signer waits', async () => {
    // anvil's dev accounts 6 and 7 (funded at start).
    const { env, funded, broke } = await startWithBrokeSigner(
      FUNDED_6,
      '0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356',
    )
    // Nine at once, before any backlog shows: taking turns, the broke signer is given three of them. A third name
    // no gas limit (the broke signer's estimate fails), the rest do (its balance check fails).
    const ids = await Promise.all(Array.from({ length: 9 }, (_, i) => submit(env!, { to: TO, value: String(30 + i), ...(i % 3 === 0 ? {} : { gasLimit: '21000' }) })))
    const pinned = await submit(env, { to: TO, value: '2', from: broke.address })
    const query = `query($id: ID!) { transaction(id: $id) { status from error { code } events { fromStatus toStatus detail } } }`
    const txs = await waitFor('all nine CONFIRMED', async () => {
      const all = await Promise.all(ids.map(async (id) => (await env!.graphql(query, { id })).json.data.transaction))
      return all.every((t) => t.status === 'CONFIRMED') && all
    }, 30_000)
    expect(txs.filter((t) => t.from === broke.address)).toEqual([])
    const moves = txs.flatMap((t) => t.events.filter((e: any) => e.fromStatus === 'QUEUED' && e.toStatus === 'QUEUED').map((e: any) => JSON.parse(e.detail)))
    expect(moves.length).toBeGreaterThanOrEqual(1)
    for (const m of moves) expect(m).toMatchObject({ action: 'signer_changed', from: broke.address })
    // Once found short, the broke signer is given no more: the next requests go straight to the others, unmoved.
    // (The service reads which signers are short with the backlogs: once the last read is over 5 s old, a pick waits
    // for a new one. A younger one is used while a new one runs in the background, on a slow machine for longer than
    // a pause between two requests.)
    await new Promise((r) => setTimeout(r, 5_200))
    await submit(env, { to: TO, value: '1', gasLimit: '21000' })
    await new Promise((r) => setTimeout(r, 300))
    const later = await Promise.all(Array.from({ length: 6 }, (_, i) => submit(env!, { to: TO, value: String(40 + i), gasLimit: '21000' })))
    const laterTxs = await waitFor('the later six CONFIRMED', async () => {
      const all = await Promise.all(later.map(async (id) => (await env!.graphql(query, { id })).json.data.transaction))
      return all.every((t) => t.status === 'CONFIRMED') && all
    }, 30_000)
    expect(laterTxs.flatMap((t) => t.events.filter((e: any) => e.fromStatus === 'QUEUED' && e.toStatus === 'QUEUED'))).toEqual([])
    // What the operator sees instead of a queue: the signer that cannot pay, by name, over GraphQL and in metrics.
    const signers = (await env.graphql(`{ signers { name address balance shortOfFundsSince queued } }`)).json.data.signers
    expect(signers.map((s: any) => s.name)).toEqual(['anvil-0', 'funded', 'broke'])
    const byName = new Map<string, any>(signers.map((s: any) => [s.name, s]))
    expect(byName.get('broke')).toMatchObject({ address: broke.address, balance: '0', queued: 1 })
    expect(Date.parse(byName.get('broke').shortOfFundsSince)).toBeGreaterThan(Date.now() - 60_000)
    expect(byName.get('funded').shortOfFundsSince).toBeNull()
    const metrics = await (await fetch(`${env.service.url}/metrics`)).text()
    expect(metrics).toContain(`txb_signer_short_of_funds{chain_id="31337",signer="${broke.address}"} 1`)
    expect(metrics).toContain(`txb_signer_short_of_funds{chain_id="31337",signer="${funded.address}"} 0`)
    // The one that named the broke signer is never signed by another: it waits for funds, as before.
    const stays = (await env.graphql(query, { id: pinned })).json.data.transaction
    expect(stays).toMatchObject({ status: 'QUEUED', from: broke.address, error: { code: 'INSUFFICIENT_FUNDS' } })
    expect(stays.events.filter((e: any) => e.toStatus === 'QUEUED' && e.fromStatus === 'QUEUED')).toEqual([])

    // One request a signer cannot afford says nothing of the signer: the funded one is not flagged for it.
    const tooDear = await submit(env, { to: TO, value: (10n ** 24n).toString(), gasLimit: '21000', from: funded.address })
    await waitFor('the too dear request set aside', async () => (await env!.graphql(query, { id: tooDear })).json.data.transaction.error?.code === 'INSUFFICIENT_FUNDS')
    const shortGauge = async () => (await (await fetch(`${env!.service.url}/metrics`)).text()).match(/^txb_signer_short_of_funds\{chain_id="31337",signer="(0x[0-9a-fA-F]{40})"\} (\d)$/gm)
    expect(await shortGauge()).toContain(`txb_signer_short_of_funds{chain_id="31337",signer="${funded.address}"} 0`)

    // Funded again, with nothing of its own queued (its request cancelled): the sweep clears the flag, since no
    // request would reach the signer to do it, and requests that name no signer go to it again.
    const cancelled = await env.graphql(`mutation($id: ID!) { cancelTransaction(id: $id) { status } }`, { id: pinned })
    // A QUEUED request an admin cancels ends FAILED (code CANCELLED): nothing of it was signed.
    expect(cancelled.json.data.cancelTransaction.status).toBe('FAILED')
    await env.chain.request({ method: 'anvil_setBalance' as never, params: [broke.address, '0x8ac7230489e80000'] as never })
    await waitFor('the broke signer no longer flagged', async () => (await shortGauge())?.includes(`txb_signer_short_of_funds{chain_id="31337",signer="${broke.address}"} 0`), 15_000)
    await new Promise((r) => setTimeout(r, 5_200))
    await submit(env, { to: TO, value: '1', gasLimit: '21000' })
    await new Promise((r) => setTimeout(r, 300))
    const again = await Promise.all(Array.from({ length: 6 }, (_, i) => submit(env!, { to: TO, value: String(60 + i), gasLimit: '21000' })))
    const againTxs = await waitFor('those six CONFIRMED', async () => {
      const all = await Promise.all(again.map(async (id) => (await env!.graphql(query, { id })).json.data.transaction))
      return all.every((t) => t.status === 'CONFIRMED') && all
    }, 30_000)
    expect(againTxs.filter((t) => t.from === broke.address).length).toBeGreaterThanOrEqual(1)
  }, 120_000)
})

describe('a remote signer that stops signing', () => {
  let env: TestEnv | undefined
  let proxy: FaultProxy | undefined
  afterAll(async () => {
    await env?.stop()
    await proxy?.stop()
  })

  it('its requests say SIGNER_UNAVAILABLE and wait; those the service gave it move to another signer; it signs again once back', async () => {
    ;({ env, proxy } = await startWithRemoteSigner({ anvil: { blockTimeSec: 0.2 } }))
    proxy!.setMode('http500')
    const query = `query($id: ID!) { transaction(id: $id) { status from error { code message } events { fromStatus toStatus detail } } }`
    // Two that name no signer, before it is known to fail: with no backlog anywhere, one of them goes to it.
    const early = await Promise.all([submit(env, { to: TO, value: '7', gasLimit: '21000' }), submit(env, { to: TO, value: '8', gasLimit: '21000' })])
    // Two that name it, in one batch: one with a deadline that passes while the signer is down.
    const [pinned, expiring] = await Promise.all([
      submit(env, { to: TO, value: '5', gasLimit: '21000', from: REMOTE_ADDRESS }),
      submit(env, { to: TO, value: '6', gasLimit: '21000', from: REMOTE_ADDRESS, validUntil: new Date(Date.now() + 2_000).toISOString() }),
    ])
    const waiting = await waitFor('the pinned request shows why it waits', async () => {
      const t = (await env!.graphql(query, { id: pinned })).json.data.transaction
      return t.status === 'QUEUED' && t.error?.code === 'SIGNER_UNAVAILABLE' && t
    })
    expect(waiting.error.message).toMatch(/^signer "remote": eth_signTransaction at .* failed: .*; it waits for the signer/)
    // The operator sees it without opening a request: the signers query and a notice on the dashboard.
    const remoteStatus = async () =>
      (await env!.graphql(`{ signers { name signerFailingSince waitingForSigner refusedBySigner signerError } }`)).json.data.signers.find((s: any) => s.name === 'remote')
    const down = await remoteStatus()
    expect(down.signerFailingSince).not.toBeNull()
    expect(down.waitingForSigner).toBeGreaterThanOrEqual(1)
    expect(down.refusedBySigner).toBe(0)
    expect(down.signerError).toMatch(/eth_signTransaction at .* failed: HTTP 500[^;]*$/)
    ensureWebBuilt()
    const browser = await launchBrowser()
    try {
      const page = await browser.newPage()
      await page.addInitScript((k) => sessionStorage.setItem('txb.apiKey', k), ADMIN_KEY)
      await page.goto(env.service.url)
      const notice = page.locator(`.signer-alert p.signer-failing[data-signer="${REMOTE_ADDRESS}"]`)
      await notice.waitFor({ timeout: 15_000 })
      expect(await notice.textContent()).toMatch(/^Remote signer remote \(0x90F7.*, chain 31337\) is not signing since .*: \d+ requests? waits? for it \(its last answer: signer "remote": eth_signTransaction at .* failed: HTTP 500[^;]*\)\./)
      // Looked at again with the other, whose signing fails again: its own outcome still counts (before, the failed
      // signature rolled the whole batch back, and it waited as SIGNER_UNAVAILABLE for as long as the outage).
      const expired = await waitFor('the expiring one FAILED', async () => {
        const t = (await env!.graphql(query, { id: expiring })).json.data.transaction
        return t.status === 'FAILED' && t
      }, 20_000)
      expect(expired.error.code).toBe('EXPIRED')
      // A failing remote signer is given none of these (its backlog, moved off it, was the smallest: it got them, and
      // each waited out its time-out there, then moved).
      const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => submit(env!, { to: TO, value: String(50 + i), gasLimit: '21000' })))
      const txs = await waitFor('all six CONFIRMED', async () => {
        const all = await Promise.all(ids.map(async (id) => (await env!.graphql(query, { id })).json.data.transaction))
        return all.every((t) => t.status === 'CONFIRMED') && all
      }, 30_000)
      expect(new Set(txs.map((t) => t.from))).toEqual(new Set([SIGNER.address]))
      const movesOf = (list: any[]) => list.flatMap((t) => t.events.filter((e: any) => e.fromStatus === 'QUEUED' && e.toStatus === 'QUEUED').map((e: any) => JSON.parse(e.detail)))
      expect(movesOf(txs)).toEqual([])
      // The early one it was given moved to the other signer.
      const earlyTxs = await Promise.all(early.map(async (id) => (await env!.graphql(query, { id })).json.data.transaction))
      expect(earlyTxs.map((t) => [t.status, t.from])).toEqual([['CONFIRMED', SIGNER.address], ['CONFIRMED', SIGNER.address]])
      const moves = movesOf(earlyTxs)
      expect(moves).toHaveLength(1)
      expect(moves[0]).toMatchObject({ action: 'signer_changed', from: REMOTE_ADDRESS, to: SIGNER.address, reason: 'its remote signer failed to sign' })
      // Back: the request that named it is signed by it.
      proxy!.setMode('ok')
      const done = await waitFor('the pinned request CONFIRMED', async () => {
        const t = (await env!.graphql(query, { id: pinned })).json.data.transaction
        return t.status === 'CONFIRMED' && t
      }, 60_000)
      expect(done).toMatchObject({ from: REMOTE_ADDRESS, error: null })
      // Nothing waits for it any more: the notice goes.
      await notice.waitFor({ state: 'detached', timeout: 15_000 })
      expect(await remoteStatus()).toMatchObject({ waitingForSigner: 0, signerFailingSince: null, signerError: null })
    } finally {
      await browser.close()
    }
  })
})

describe('a remote signer that takes seconds to sign (a KMS, a Clef asking a human)', () => {
  let env: TestEnv | undefined
  let proxy: FaultProxy | undefined
  afterAll(async () => {
    await env?.stop()
    await proxy?.stop()
  })

  it('what it signed goes out while it signs the rest, not after the whole batch', async () => {
    ;({ env, proxy } = await startWithRemoteSigner({ anvil: { blockTimeSec: 0.2 } }))
    const read = async (id: string) => (await env!.graphql(`query($id: ID!) { transaction(id: $id) { status error { code } } }`, { id })).json.data.transaction
    // Down while eight requests come in: they wait for it, and are signed in one batch once it is back.
    proxy!.setMode('http500')
    const ids: string[] = []
    for (let i = 1; i <= 8; i++) ids.push(await submit(env, { to: TO, value: String(i), gasLimit: '21000', from: REMOTE_ADDRESS }))
    await waitFor('all wait for the signer', async () => (await Promise.all(ids.map(read))).every((t) => t.error?.code === 'SIGNER_UNAVAILABLE'), 30_000)
    proxy!.setMode('slow', { slowMethods: ['eth_signTransaction'], slowMs: 1_000 })
    proxy!.resetStats()
    await waitFor('its first signature asked for', async () => (proxy!.stats.calls['eth_signTransaction'] ?? 0) >= 1, 30_000)
    const asked = Date.now()
    // Before: nothing was committed (nor sent) until all eight were signed, a second each.
    await waitFor('the first ones sent', async () => (await Promise.all(ids.map(read))).some((t) => t.status !== 'QUEUED'), 20_000)
    expect(Date.now() - asked).toBeLessThan(5_500)
    await waitFor('all CONFIRMED', async () => (await Promise.all(ids.map(read))).every((t) => t.status === 'CONFIRMED'), 60_000)
  }, 120_000)
})

describe('a remote signer that refuses one request (a Clef rule, a Web3Signer policy)', () => {
  let env: TestEnv | undefined
  let proxy: FaultProxy | undefined
  afterAll(async () => {
    await env?.stop()
    await proxy?.stop()
  })
  /** A fresh service whose remote signer (anvil, which holds the key) answers "Request denied", as Clef does, for value 1234 only. */
  const startDenying1234 = async (chain?: (c: Record<string, any>) => void) => {
    await env?.stop()
    await proxy?.stop()
    return startWithRemoteSigner({
      anvil: { blockTimeSec: 0.2 },
      chain,
      mode: 'methodError',
      modeOptions: { errorMethods: ['eth_signTransaction'], errorParamsInclude: '"value":"0x4d2"', error: { code: -32000, message: 'Request denied' } },
    })
  }

  it('holds up none behind it: the refused one waits out patience.signMs and fails SIGNER_REFUSED with no nonce; one that named no signer does not move', async () => {
    ;({ env, proxy } = await startDenying1234((c) => (c.patience = { signMs: 4_000 })))
    const query = `query($id: ID!) { transaction(id: $id) { status from nonce error { code message } events { fromStatus toStatus detail } } }`
    const read = async (id: string) => (await env!.graphql(query, { id })).json.data.transaction
    // The refused one first, so it is at the head of the signer's queue; three behind it.
    const refused = await submit(env, { to: TO, value: '1234', gasLimit: '21000', from: REMOTE_ADDRESS })
    const behind: string[] = []
    for (let i = 1; i <= 3; i++) behind.push(await submit(env, { to: TO, value: String(i), gasLimit: '21000', from: REMOTE_ADDRESS }))
    const signed = await waitFor('the three behind it CONFIRMED', async () => {
      const all = await Promise.all(behind.map(read))
      return all.every((t) => t.status === 'CONFIRMED') && all
    }, 30_000)
    for (const t of signed) expect(t.from).toBe(REMOTE_ADDRESS)
    // Signed at the nonces the refused one never took: 0, 1, 2.
    expect(signed.map((t) => t.nonce).sort()).toEqual(['0', '1', '2'])
    // Refused while the signer signs others: its own problem, with the signer's words.
    const waiting = await waitFor('the refused one SIGNER_REFUSED', async () => {
      const t = await read(refused)
      return t.status === 'QUEUED' && t.error?.code === 'SIGNER_REFUSED' && t
    }, 30_000)
    expect(waiting.error.message).toMatch(/^signer "remote": eth_signTransaction at .* refused: .*Request denied.*; it waits until .*, then fails$/)
    // Once the signer has signed something since (so it still signs others), the refused one fails after its patience.
    const later = await submit(env, { to: TO, value: '4', gasLimit: '21000', from: REMOTE_ADDRESS })
    expect(await waitFor('the later one CONFIRMED', async () => (await read(later)).status === 'CONFIRMED' && (await read(later)), 30_000)).toMatchObject({ nonce: '3' })
    const failed = await waitFor('the refused one FAILED', async () => {
      const t = await read(refused)
      return t.status === 'FAILED' && t
    }, 30_000)
    expect(failed).toMatchObject({ from: REMOTE_ADDRESS, nonce: null, error: { code: 'SIGNER_REFUSED' } })
    expect(failed.error.message).toMatch(/Request denied.*\(still so after \d+ s\)$/)

    // Named no signer, refused all the same: the ones given to the remote signer stay with it (its "no" may be the
    // operator's policy for that key; another key must not sign what it refused) and fail as the first did.
    // The ones given to the local signer confirm.
    const unnamed = await Promise.all(Array.from({ length: 4 }, () => submit(env!, { to: TO, value: '1234', gasLimit: '21000' })))
    const given = await Promise.all(unnamed.map(read))
    const toRemote = unnamed.filter((_, i) => given[i].from === REMOTE_ADDRESS)
    // Equal backlogs take turns: half went to the remote signer.
    expect(toRemote.length).toBeGreaterThanOrEqual(1)
    // Something signed after their refusal: the evidence that the signer still signs others.
    await waitFor('their first refusal', async () => (await Promise.all(toRemote.map(read))).every((t) => t.error !== null), 30_000)
    const evidence = await submit(env, { to: TO, value: '5', gasLimit: '21000', from: REMOTE_ADDRESS })
    await waitFor('the evidence CONFIRMED', async () => (await read(evidence)).status === 'CONFIRMED', 30_000)
    const ends = await waitFor('the four unnamed final', async () => {
      const all = await Promise.all(unnamed.map(read))
      return all.every((t) => t.status === 'CONFIRMED' || t.status === 'FAILED') && all
    }, 30_000)
    for (const [i, t] of ends.entries()) {
      expect(t.events.filter((e: any) => e.fromStatus === 'QUEUED' && e.toStatus === 'QUEUED')).toEqual([])
      if (toRemote.includes(unnamed[i]!)) expect(t).toMatchObject({ status: 'FAILED', from: REMOTE_ADDRESS, nonce: null, error: { code: 'SIGNER_REFUSED' } })
      else expect(t).toMatchObject({ status: 'CONFIRMED', from: SIGNER.address })
    }
  }, 120_000)

  it('found refused while the signer signed another, it fails after its patience on a signer with no other traffic since', async () => {
    ;({ env, proxy } = await startDenying1234((c) => (c.patience = { signMs: 1_000 })))
    const read = async (id: string) => (await env!.graphql(`query($id: ID!) { transaction(id: $id) { status nonce error { code message } } }`, { id })).json.data.transaction
    const refused = await submit(env, { to: TO, value: '1234', gasLimit: '21000', from: REMOTE_ADDRESS })
    await waitFor('its first refusal', async () => (await read(refused)).error !== null, 10_000)
    // The signer signs another: at its next look the refusal is the request's own.
    const other = await submit(env, { to: TO, value: '1', gasLimit: '21000', from: REMOTE_ADDRESS })
    await waitFor('the other CONFIRMED', async () => (await read(other)).status === 'CONFIRMED', 30_000)
    await waitFor('SIGNER_REFUSED', async () => (await read(refused)).error?.code === 'SIGNER_REFUSED', 30_000)
    // Nothing else is sent to the signer. Its patience (1 s) is over by the next look, 5 s on: it fails there.
    const failed = await waitFor('it FAILED', async () => {
      const t = await read(refused)
      return t.status === 'FAILED' && t
    }, 30_000)
    expect(failed).toMatchObject({ nonce: null, error: { code: 'SIGNER_REFUSED' } })
    expect(failed.error.message).toMatch(/Request denied.*\(still so after \d+ s\)$/)
  }, 90_000)

  it('a request its remote signer refused stays with it through a later outage: the outage does not move it to another signer', async () => {
    ;({ env, proxy } = await startDenying1234())
    const e = env
    const read = async (id: string) =>
      (await e.graphql(`query($id: ID!) { transaction(id: $id) { status from error { code message } events { fromStatus toStatus detail } } }`, { id })).json.data.transaction
    // Named no signer: half go to the remote signer, which says no to them.
    const unnamed = await Promise.all(Array.from({ length: 4 }, () => submit(e, { to: TO, value: '1234', gasLimit: '21000' })))
    const refused = (await Promise.all(unnamed.map(async (id) => ({ id, t: await read(id) })))).filter((r) => r.t.from === REMOTE_ADDRESS).map((r) => r.id)
    expect(refused.length).toBeGreaterThanOrEqual(1)
    await waitFor('the refusals noted', async () => (await Promise.all(refused.map(read))).every((t) => / refused: .*Request denied/.test(t.error?.message ?? '')), 30_000)
    // Then the signer goes down: at their next look (5 s on) it fails to answer, and their note says so.
    proxy!.setMode('http500')
    await submit(e, { to: TO, value: '1', gasLimit: '21000', from: REMOTE_ADDRESS })
    await waitFor('the refused ones looked at in the outage (or moved)', async () =>
      (await Promise.all(refused.map(read))).every((t) => / failed: /.test(t.error?.message ?? '') || t.from !== REMOTE_ADDRESS), 30_000)
    // A move would follow in the same drain; give it time, then check none happened.
    await new Promise((r) => setTimeout(r, 2_000))
    for (const t of await Promise.all(refused.map(read))) {
      expect(t).toMatchObject({ status: 'QUEUED', from: REMOTE_ADDRESS, error: { code: 'SIGNER_UNAVAILABLE' } })
      expect(t.events.filter((ev: any) => ev.fromStatus === 'QUEUED' && ev.toStatus === 'QUEUED')).toEqual([])
    }
  }, 90_000)

  it('a request set aside in an outage, refused once the signer is back but locked again, is not taken for refused: it waits as SIGNER_UNAVAILABLE', async () => {
    await env?.stop()
    await proxy?.stop()
    ;({ env, proxy } = await startWithRemoteSigner({ anvil: { blockTimeSec: 0.2 }, chain: (c) => (c.patience = { signMs: 1_000 }) }))
    const read = async (id: string) => (await env!.graphql(`query($id: ID!) { transaction(id: $id) { status error { code message } } }`, { id })).json.data.transaction
    proxy!.setMode('http500')
    const waiting = await submit(env, { to: TO, value: '1', gasLimit: '21000', from: REMOTE_ADDRESS })
    await waitFor('it waits for the signer', async () => (await read(waiting)).error?.code === 'SIGNER_UNAVAILABLE')
    // Right after one of its looks (the next is 5 s away): the signer is back just long enough to sign another ...
    proxy!.resetStats()
    await waitFor('a look at it', async () => (proxy!.stats.calls['eth_signTransaction'] ?? 0) >= 1, 30_000)
    // Back for the other request only: under load its signing could outlast the 5 s until the next look at the
    // waiting one, which the signer then signed (a flaky failure); that look now fails as the outage did.
    proxy!.setMode('methodError', { errorMethods: ['eth_signTransaction'], errorParamsInclude: '"value":"0x1"' })
    const other = await submit(env, { to: TO, value: '2', gasLimit: '21000', from: REMOTE_ADDRESS })
    // (If the waiting one's look comes first in the same batch, its failure holds the signer for one more look.)
    await waitFor('the other signed', async () => (await read(other)).status !== 'QUEUED', 30_000)
    // ... then locked again: it refuses everything, the waiting one included.
    proxy!.setMode('methodError', { errorMethods: ['eth_signTransaction'], error: { code: -32000, message: 'authentication needed: password or unlock' } })
    expect((await read(waiting)).status).toBe('QUEUED')
    const refusedLook = await waitFor('it is asked and refused', async () => {
      const t = await read(waiting)
      return /refused: /.test(t.error?.message ?? '') && t
    }, 30_000)
    // Something was signed since it was set aside, but not since a refusal of it: no evidence the "no" is its own.
    expect(refusedLook).toMatchObject({ status: 'QUEUED', error: { code: 'SIGNER_UNAVAILABLE' } })
  }, 120_000)

  it('one that signed, then says no to everything (an account locked again), is a signer down: its requests wait as SIGNER_UNAVAILABLE, never fail', async () => {
    await env?.stop()
    await proxy?.stop()
    ;({ env, proxy } = await startWithRemoteSigner({ anvil: { blockTimeSec: 0.2 }, chain: (c) => (c.patience = { signMs: 1_000 }) }))
    const query = `query($id: ID!) { transaction(id: $id) { status from error { code message } } }`
    const read = async (id: string) => (await env!.graphql(query, { id })).json.data.transaction
    const first = await submit(env, { to: TO, value: '1', gasLimit: '21000', from: REMOTE_ADDRESS })
    await waitFor('the first CONFIRMED', async () => (await read(first)).status === 'CONFIRMED', 30_000)
    proxy!.setMode('methodError', { errorMethods: ['eth_signTransaction'], error: { code: -32000, message: 'authentication needed: password or unlock' } })
    const ids = await Promise.all([2, 3].map((i) => submit(env!, { to: TO, value: String(i), gasLimit: '21000', from: REMOTE_ADDRESS })))
    await waitFor('both wait as SIGNER_UNAVAILABLE', async () => (await Promise.all(ids.map(read))).every((t) => t.status === 'QUEUED' && t.error?.code === 'SIGNER_UNAVAILABLE'))
    // Asked again, past signMs: a refusal taken for theirs would fail them now.
    proxy!.resetStats()
    await waitFor('a second look', async () => (proxy!.stats.calls['eth_signTransaction'] ?? 0) >= 2, 30_000)
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    for (const t of await Promise.all(ids.map(read))) expect(t).toMatchObject({ status: 'QUEUED', error: { code: 'SIGNER_UNAVAILABLE' } })
    proxy!.setMode('ok')
    const done = await waitFor('both CONFIRMED once it signs', async () => {
      const all = await Promise.all(ids.map(read))
      return all.every((t) => t.status === 'CONFIRMED') && all
    }, 60_000)
    for (const t of done) expect(t).toMatchObject({ from: REMOTE_ADDRESS, error: null })
  }, 120_000)
})

describe('a request moved off a signer that cannot pay, with two signers', () => {
  let env: TestEnv
  // anvil's dev accounts 8 and 9 (funded at start).
  const S1 = { ...privateKeyToAccount('0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97'), privateKey: '0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97' }
  const S2 = { ...privateKeyToAccount('0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6'), privateKey: '0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6' }
  beforeAll(async () => {
    env = await startTestEnv({
      // Two-second blocks: the sign stage reuses a signer's balance read for up to five seconds.
      anvil: { blockTimeSec: 2 },
      config: (c) => {
        // A transaction a test leaves unmined (s2's first, drained under it) is sent again within seconds once funded.
        c.chains[0].fees = { bumpAfterMs: 2_000 }
        c.signers = [
          { name: 's1', chainIds: [31337], privateKey: S1.privateKey },
          { name: 's2', chainIds: [31337], privateKey: S2.privateKey },
        ]
      },
    })
  })
  afterAll(async () => {
    await env?.stop()
  })

  const read = async (id: string): Promise<any> =>
    (await env.graphql(`query($id: ID!) { transaction(id: $id) { status from error { code } events { fromStatus toStatus detail } } }`, { id })).json.data.transaction
  const movesOf = (t: any): any[] => t.events.filter((e: any) => e.fromStatus === 'QUEUED' && e.toStatus === 'QUEUED')
  const setAside = (id: string) => waitFor('set aside', async () => {
    const t = await read(id)
    return t.status === 'QUEUED' && t.error?.code === 'INSUFFICIENT_FUNDS' && t
  })
  /** Both signers drained; then past the 5 s the sign stage may sign on its last balance read (from the test before,
   * funded): a request signed on it is refused by the node and waits PENDING, and cannot move. */
  const drainBoth = async () => {
    for (const s of [S1, S2]) await chainControl(env).setBalance(s.address, 0n)
    await new Promise((r) => setTimeout(r, 5_500))
  }
  /** Waits for request `id` to be CONFIRMED, sent from `from`. */
  const confirmsFrom = async (id: string, from: string, timeoutMs = 30_000) => {
    const done = await waitFor(`${id} confirmed`, async () => {
      const t = await read(id)
      return t.status === 'CONFIRMED' && t
    }, timeoutMs)
    expect(done.from).toBe(from)
  }
  /** Request `id` still waits on s1 for funds, moved `moves` times in all. */
  const waitsOnS1 = async (id: string, moves: number) => {
    const t = await read(id)
    expect(t).toMatchObject({ status: 'QUEUED', from: S1.address, error: { code: 'INSUFFICIENT_FUNDS' } })
    expect(movesOf(t)).toHaveLength(moves)
  }
  /** A move of request `id` from one signer to another in its execution, as the service records it. */
  const recordMove = (sql: postgres.Sql, id: string, from: string, to: string, reason = 'the signer first chosen cannot pay for it') => sql`
    INSERT INTO transaction_events (transaction_id, from_status, to_status, detail)
    SELECT id, 'QUEUED', 'QUEUED', jsonb_build_object('action', 'signer_changed', 'from', ${from}::text, 'to', ${to}::text,
      'reason', ${reason}::text, 'execution', execution)
    FROM transactions WHERE id = ${id}`

  it('goes only to a signer that can pay now, not by a balance read from before it was drained; it confirms once its own signer is funded', async () => {
    const control = chainControl(env)
    // s2 signs one (its balance is read for that), then both are drained at once.
    const warm = await submit(env, { to: TO, value: '1', gasLimit: '21000', from: S2.address })
    await waitFor('s2 signed', async () => (await read(warm)).status !== 'QUEUED')
    const funds = await env.chain.getBalance({ address: S1.address })
    await control.setBalance(S1.address, 0n)
    await control.setBalance(S2.address, 0n)
    // Goes to s1, the less loaded: it cannot pay, and neither can s2.
    const id = await submit(env, { to: TO, value: '1000' })
    const waiting = await waitFor('set aside', async () => {
      const t = await read(id)
      return t.error?.code === 'INSUFFICIENT_FUNDS' && t
    })
    // Before: moved to s2 on its balance read from before the drain, where it waited for funds.
    expect(movesOf(waiting)).toEqual([])
    expect(waiting.from).toBe(S1.address)
    await control.setBalance(S1.address, funds)
    const done = await waitFor('confirmed', async () => {
      const t = await read(id)
      return t.status === 'CONFIRMED' && t
    }, 30_000)
    expect(done.from).toBe(S1.address)
    // Never handed to s2 meanwhile (and back once s1 could pay).
    expect(movesOf(done)).toEqual([])
  }, 60_000)

  it('goes back to a signer it left once that one can pay again, instead of waiting out its patience where it is', async () => {
    await drainBoth()
    const id = await submit(env, { to: TO, value: '2000' })
    const waiting = await setAside(id)
    const other = waiting.from === S1.address ? S2.address : S1.address
    // It came here from the other signer, as the service moves it (that one could not pay then).
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      await recordMove(sql, id, other, waiting.from)
      // The signer it left is funded; the one it waits on is not. Before: it waited there for funds (an hour's
      // patience by default), the funded signer idle.
      await chainControl(env).setBalance(other, 10n ** 21n)
      // Its next look made due (not the point here; on a loaded machine the set-aside schedule took most of the time).
      await sql`UPDATE transactions SET updated_at = now() - interval '1 minute' WHERE id = ${id}`
    } finally {
      await sql.end()
    }
    let last: unknown
    const done = await waitFor('confirmed', async () => {
      const t = await read(id)
      last = t
      return t.status === 'CONFIRMED' && t
    }, 45_000).catch((err: Error) => {
      throw new Error(`${err.message}; the request as last read: ${JSON.stringify(last)}`)
    })
    expect(done.from).toBe(other)
    expect(JSON.parse(movesOf(done).at(-1).detail)).toMatchObject({ action: 'signer_changed', from: waiting.from, to: other })
  }, 60_000)

  it('does not go back to a signer it left because its remote signer failed, though that one can pay; one that left it for funds does', async () => {
    await drainBoth()
    const left = await submit(env, { to: TO, value: '3000', gasLimit: '21000' })
    const control = await submit(env, { to: TO, value: '3001', gasLimit: '21000' })
    for (const id of [left, control]) await setAside(id)
    // Both wait on s1, both came from s2: the first because s2's remote signer failed (a signer is remote or not by
    // its config; the service goes by the recorded reason), the second because s2 could not pay.
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      await sql`UPDATE transactions SET signer = ${S1.address} WHERE id IN (${left}, ${control})`
      await recordMove(sql, left, S2.address, S1.address, REMOTE_FAILED)
      await recordMove(sql, control, S2.address, S1.address)
      await chainControl(env).setBalance(S2.address, 10n ** 21n)
      await sql`UPDATE transactions SET updated_at = now() - interval '1 minute' WHERE id IN (${left}, ${control})`
    } finally {
      await sql.end()
    }
    // s2 has room for both. The control moves back to it and confirms; the first, looked at with it, stays.
    await confirmsFrom(control, S2.address, 45_000)
    await waitsOnS1(left, 1)
  }, 60_000)

  it('one that moved as often as it may stays where it is, and takes no room from one that can still move', async () => {
    await drainBoth()
    const eth = 10n ** 18n
    const capped = await submit(env, { to: TO, value: (5n * eth).toString(), gasLimit: '21000' })
    const movable = await submit(env, { to: TO, value: (5n * eth).toString(), gasLimit: '21000' })
    for (const id of [capped, movable]) await setAside(id)
    // Both wait on s1; the first already went to s2 and back (two moves: the most with two signers).
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} })
    try {
      await sql`UPDATE transactions SET signer = ${S1.address} WHERE id IN (${capped}, ${movable})`
      await recordMove(sql, capped, S1.address, S2.address)
      await recordMove(sql, capped, S2.address, S1.address)
    } finally {
      await sql.end()
    }
    // s2 can pay for one of them. Before: the first, which may not move again, was given s2's room on every look,
    // and the second waited out its patience beside it.
    await chainControl(env).setBalance(S2.address, 7n * eth)
    await confirmsFrom(movable, S2.address)
    await waitsOnS1(capped, 2)
  }, 60_000)
})

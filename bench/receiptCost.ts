/**
 * What anvil charges for receipts, by block size: `npm run bench:receipts`.
 *
 * The drain's ratio to the baseline (bench/run.ts) is bounded by the node, not only by the service: the
 * baseline only sends, but a relayer must read every transaction's receipt to report its outcome, and
 * anvil builds each receipt in time that grows with the size of its block (it answers nothing else
 * meanwhile). This fills blocks of growing size with pre-signed transfers (mining off, then one
 * `evm_mine`) and times, per block: sending them, mining, one `eth_getBlockReceipts`, the same receipts
 * asked for one by one in JSON-RPC batches, and the receipt of the block's last transaction alone.
 * From the figures it prints the highest steady rate at which a sender that reads receipts could keep
 * up with 1 s blocks, the bench's block time, if anvil did nothing else.
 */
import type { Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { ANVIL_DEV_ACCOUNTS, startAnvil } from '../src/dev/startAnvil.ts'
import { rpcClient, sendRawTransactions, signTransfers } from './baseline.ts'

const SIZES = (process.argv[2] ?? '500,1000,2000,4000').split(',').map(Number)
const BATCH = 500

const anvil = await startAnvil({ noMining: true, extraArgs: ['--gas-limit', '1000000000', '--no-request-size-limit'] })
try {
  const rpc = rpcClient(anvil.url)
  const account = privateKeyToAccount(ANVIL_DEV_ACCOUNTS[2].privateKey)
  const rows: { size: number; sendMs: number; mineMs: number; blockReceiptsMs: number; oneByOneMs: number; lastAloneMs: number }[] = []
  for (const size of SIZES) {
    const nonce = Number(BigInt(await rpc.call<Hex>('eth_getTransactionCount', [account.address, 'pending'])))
    const raws = await signTransfers(account, {
      chainId: anvil.chainId,
      to: ANVIL_DEV_ACCOUNTS[1].address,
      startNonce: nonce,
      count: size,
      maxFeePerGas: 100_000_000_000n,
      maxPriorityFeePerGas: 1n,
    })
    const timed = async (f: () => Promise<unknown>) => {
      const t = performance.now()
      await f()
      return performance.now() - t
    }
    const sendMs = await timed(async () => {
      const [refused] = await sendRawTransactions(rpc, raws, BATCH)
      if (refused) throw new Error(`eth_sendRawTransaction: ${refused}`)
    })
    const mineMs = await timed(() => rpc.call('evm_mine'))
    const block = await rpc.call<{ number: Hex; transactions: Hex[] }>('eth_getBlockByNumber', ['latest', false])
    if (block.transactions.length !== size) throw new Error(`block ${block.number} holds ${block.transactions.length} transactions, not ${size}`)
    const blockReceiptsMs = await timed(async () => {
      const receipts = await rpc.call<unknown[]>('eth_getBlockReceipts', [block.number])
      if (receipts.length !== size) throw new Error(`eth_getBlockReceipts gave ${receipts.length} receipts, not ${size}`)
    })
    const oneByOneMs = await timed(async () => {
      for (let i = 0; i < size; i += BATCH)
        await rpc.batch(block.transactions.slice(i, i + BATCH).map((hash) => ({ method: 'eth_getTransactionReceipt', params: [hash] })))
    })
    const lastAloneMs = await timed(() => rpc.call('eth_getTransactionReceipt', [block.transactions.at(-1)]))
    rows.push({ size, sendMs, mineMs, blockReceiptsMs, oneByOneMs, lastAloneMs })
  }

  const pad = (s: string | number, n: number) => String(s).padStart(n)
  const ms = (x: number) => Math.round(x)
  process.stdout.write(`\nanvil, one block of N value transfers (mining off, one evm_mine):\n\n`)
  process.stdout.write(`${pad('N', 6)} ${pad('send ms', 8)} ${pad('mine ms', 8)} ${pad('eth_getBlockReceipts ms', 24)} ${pad('one by one ms', 14)} ${pad('last receipt alone ms', 22)} ${pad('µs per receipt', 15)}\n`)
  for (const r of rows)
    process.stdout.write(
      `${pad(r.size, 6)} ${pad(ms(r.sendMs), 8)} ${pad(ms(r.mineMs), 8)} ${pad(ms(r.blockReceiptsMs), 24)} ${pad(ms(r.oneByOneMs), 14)} ${pad(ms(r.lastAloneMs), 22)} ${pad(((r.blockReceiptsMs * 1000) / r.size).toFixed(0), 15)}\n`,
    )
  // Fit receipts(N) = c·N² and send(N) = s·N on the largest block, then find the rate r (one block of r a
  // second) at which sending and reading receipts fill anvil's second: s·r + c·r² = 1000 ms.
  const big = rows.at(-1)!
  const c = big.blockReceiptsMs / big.size ** 2
  const s = (big.sendMs + big.mineMs) / big.size
  const steady = Math.floor((-s + Math.sqrt(s * s + 4 * c * 1000)) / (2 * c))
  process.stdout.write(
    `\nFitted on N = ${big.size}: receipts ≈ ${(c * 1e6).toFixed(3)} ns × N², sending and mining ≈ ${(s * 1000).toFixed(0)} µs × N.\n` +
      `With 1 s blocks, a sender that reads every receipt keeps up with at most ~${steady.toLocaleString('en-US')} tx/s ` +
      `(anvil busy the whole second, nothing else running); the baseline reads none.\n`,
  )
} finally {
  await anvil.stop()
}

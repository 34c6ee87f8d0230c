import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { freePort } from './freePort.ts'
import { waitForOutput } from './processes.ts'

/** anvil's first well-known dev account: funded with 10,000 ETH on every fresh anvil. */
export const ANVIL_DEV_ACCOUNTS = [
  { address: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266', privateKey: '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80' },
  { address: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', privateKey: '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d' },
  { address: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC', privateKey: '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a' },
] as const

export type Anvil = { url: string; port: number; chainId: number; process: ChildProcess; stop: () => Promise<void> }

export type StartAnvilOptions = {
  port?: number
  chainId?: number
  /** Interval mining in seconds; leave out for automine (a block per transaction). */
  blockTimeSec?: number
  /** Mine only on demand (`evm_mine`), for tests that drive blocks themselves. */
  noMining?: boolean
  extraArgs?: string[]
  /**
   * Own process group, so a Ctrl-C in the terminal (SIGINT to the foreground group) does not reach anvil
   * and the parent stops it in order. The parent must then stop it itself, also when it exits abruptly.
   */
  detached?: boolean
}

/** The anvil binary shipped by @foundry-rs/anvil for this platform (no node wrapper, so kill reaches anvil itself). */
export function anvilBinary(): string {
  const require = createRequire(import.meta.url)
  const arch = process.arch === 'x64' ? 'amd64' : process.arch
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`
  try {
    return join(dirname(require.resolve(`${pkg}/package.json`)), 'bin', 'anvil')
  } catch {
    throw new Error(`anvil is not installed for ${process.platform}-${process.arch} (package ${pkg}); run npm install`)
  }
}

/** Anvils of this process not detached: killed when it exits (a detached one is its starter's to stop). */
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

export async function startAnvil(opts: StartAnvilOptions = {}): Promise<Anvil> {
  const port = opts.port ?? (await freePort())
  const chainId = opts.chainId ?? 31337
  const args = ['--port', String(port), '--host', '127.0.0.1', '--chain-id', String(chainId)]
  if (opts.blockTimeSec !== undefined) args.push('--block-time', String(opts.blockTimeSec))
  if (opts.noMining) args.push('--no-mining')
  args.push(...(opts.extraArgs ?? []))
  const child = spawn(anvilBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached ?? false })
  if (!opts.detached) {
    // A child outlives its parent unless stopped: one a caller forgot (a test that left its anvil running) kept
    // mining on its own after the process was gone, taking CPU from every later run on the machine.
    running.add(child)
    child.once('exit', () => running.delete(child))
  }
  await waitForOutput(child, 'Listening on', 'anvil')
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve())
      child.kill('SIGTERM')
      setTimeout(() => child.kill('SIGKILL'), 3_000).unref()
    })
  }
  return { url: `http://127.0.0.1:${port}`, port, chainId, process: child, stop }
}

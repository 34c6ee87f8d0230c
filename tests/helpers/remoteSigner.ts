import { startFaultProxy, type FaultMode, type FaultOptions, type FaultProxy } from './faultProxy.ts'
import { startTestEnv, type StartTestEnvOptions, type TestEnv } from './testService.ts'

/** anvil dev account 3: anvil holds it unlocked and signs for it over eth_signTransaction, a real remote signer. */
export const REMOTE_ADDRESS = '0x90F79bf6EB2c4f870365E785982E1f101E93b906' as const

/**
 * The service with a second signer, "remote": anvil itself, reached through a fault proxy the test can break
 * (`mode`, or `proxy.setMode` later). `chain` edits the chain's config (fees, patience); `remoteFirst` lists the
 * remote signer before the local one (stages that go over a chain's signers do so in that order).
 */
export async function startWithRemoteSigner(opts: {
  anvil: StartTestEnvOptions['anvil']
  chain?: (chain: Record<string, any>) => void
  mode?: FaultMode
  modeOptions?: FaultOptions
  remoteFirst?: boolean
  log?: StartTestEnvOptions['log']
}): Promise<{ env: TestEnv; proxy: FaultProxy }> {
  let proxy: FaultProxy | undefined
  const env = await startTestEnv({
    anvil: opts.anvil,
    log: opts.log,
    setup: async (anvil) => void (proxy = await startFaultProxy(anvil.url, opts.mode, opts.modeOptions)),
    config: (c) => {
      opts.chain?.(c.chains[0])
      const remote = { name: 'remote', chainIds: [31337], remote: { url: proxy!.url, address: REMOTE_ADDRESS } }
      if (opts.remoteFirst) c.signers.unshift(remote)
      else c.signers.push(remote)
    },
  }).catch(async (err: unknown) => {
    await proxy?.stop()
    throw err
  })
  return { env, proxy: proxy! }
}

import type { StartAnvilOptions } from '../../src/dev/startAnvil.ts'
import { startFaultProxy, type FaultProxy } from './faultProxy.ts'
import { startTestEnv, type TestEnv } from './testService.ts'

/**
 * A test service whose chain has one provider, a fault proxy (faultProxy.ts) in front of the test's anvil, named
 * `name`; `configure` changes the rest of the config (fees, patience, rpc). The caller stops the proxy.
 */
export async function startBehindFaultProxy(
  anvil: StartAnvilOptions,
  configure: (c: Record<string, any>) => void = () => {},
  name = 'proxy',
  { beside = false }: { beside?: boolean } = {},
): Promise<{ env: TestEnv; proxy: FaultProxy }> {
  let proxy: FaultProxy | undefined
  const env = await startTestEnv({
    anvil,
    setup: async (a) => {
      proxy = await startFaultProxy(a.url)
    },
    config: (c) => {
      c.chains[0].providers = [...(beside ? c.chains[0].providers : []), { name, url: proxy!.url }]
      configure(c)
    },
  })
  return { env, proxy: proxy! }
}

/** The same, the proxy a second provider beside anvil itself (named `anvil`). */
export function startBesideFaultProxy(anvil: StartAnvilOptions, configure: (c: Record<string, any>) => void, name: string): Promise<{ env: TestEnv; proxy: FaultProxy }> {
  return startBehindFaultProxy(anvil, configure, name, { beside: true })
}

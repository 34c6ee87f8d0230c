import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, it, expect } from 'vitest'
import { ConfigError, formatPath, loadOptions, parseConfig, readConfigFile, substituteEnv } from './loadConfig.ts'
import { thrown } from '../../tests/helpers/thrown.ts'
import { webhookName } from './schema.ts'

const HOT_1_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'
const ENV = { ALCHEMY_KEY: 'alchemy-secret', HOT_1_KEY, FRONTEND_API_KEY: 'frontend-key-0123456789' }

/** The example from the docs; a fresh deep copy each call so cases can mutate it. */
function validConfig(): any {
  return {
    chains: [
      {
        chainId: 1,
        name: 'mainnet',
        providers: [
          { name: 'alchemy', url: 'https://eth-mainnet.g.alchemy.com/v2/${ALCHEMY_KEY}' },
          { name: 'own-node', url: 'http://10.0.0.5:8545', weight: 2 },
        ],
        confirmations: 12,
        blockTimeMs: 12000,
        fees: { model: 'eip1559', maxFeePerGasCap: '300000000000', bumpPercent: 12.5, bumpAfterMs: 30000 },
      },
    ],
    signers: [{ name: 'hot-1', chainIds: [1], privateKey: '${HOT_1_KEY}' }],
    apiKeys: [{ name: 'frontend', role: 'submitter', key: '${FRONTEND_API_KEY}' }],
  }
}

const configError = (fn: () => unknown) => thrown(fn, ConfigError)

describe('parseConfig: a valid config', () => {
  const config = parseConfig(validConfig(), ENV)
  const chain = config.chains[0]!

  it('substitutes ${NAME} from the env argument', () => {
    expect(chain.providers[0]!.url).toBe('https://eth-mainnet.g.alchemy.com/v2/alchemy-secret')
    expect(config.signers[0]!.privateKey).toBe(HOT_1_KEY)
    expect(config.apiKeys[0]!.key).toBe(ENV.FRONTEND_API_KEY)
  })

  it('reads the wei cap as a bigint', () => {
    expect(chain.fees.maxFeePerGasCap).toBe(300_000_000_000n)
  })

  it('fills defaults', () => {
    expect(chain.providers[0]!.weight).toBe(1)
    expect(chain.providers[1]!.weight).toBe(2)
    expect(chain.fees.gasLimitMarginPercent).toBe(20)
    expect(config.auth).toBe('enabled')
    expect(config.retentionDays).toBe(30)
    expect(config.pipeline).toEqual({ process: 'inline', nice: 10 })
  })

  it('does not read process.env', () => {
    expect(() => parseConfig(validConfig(), {})).toThrow(ConfigError)
  })
})

describe('parseConfig: defaults of a minimal config', () => {
  const config = parseConfig(
    {
      chains: [{ chainId: 31337, name: 'local', providers: [{ name: 'anvil', url: 'http://127.0.0.1:8545' }] }],
      signers: [{ name: 's', chainIds: [31337], privateKey: HOT_1_KEY }],
    },
    {},
  )
  const chain = config.chains[0]!

  it.each<[string, unknown, unknown]>([
    ['confirmations', chain.confirmations, 12],
    ['blockTimeMs', chain.blockTimeMs, 12_000],
    ['fees.model', chain.fees.model, 'eip1559'],
    ['fees.bumpPercent', chain.fees.bumpPercent, 12.5],
    ['fees.bumpAfterMs', chain.fees.bumpAfterMs, 30_000],
    ['fees.maxFeePerGasCap', chain.fees.maxFeePerGasCap, 500_000_000_000n],
    ['fees.maxTxFeeWei', chain.fees.maxTxFeeWei, 1_000_000_000_000_000_000n],
    ['fees.gasLimitMarginPercent', chain.fees.gasLimitMarginPercent, 20],
    ['providers[0].weight', chain.providers[0]!.weight, 1],
    ['apiKeys', config.apiKeys, []],
    ['auth', config.auth, 'enabled'],
    ['retentionDays', config.retentionDays, 30],
    ['database.maxConnections', config.database.maxConnections, 20],
    ['metrics.requireKey', config.metrics.requireKey, false],
  ])('%s defaults to %s', (_name, actual, expected) => {
    expect(actual).toEqual(expected)
  })
})

describe('parseConfig: environment substitution', () => {
  it('a missing env var is a ConfigError naming the path and the variable', () => {
    const err = configError(() => parseConfig(validConfig(), { ...ENV, ALCHEMY_KEY: undefined }))
    expect(err.problems).toEqual(['chains[0].providers[0].url: environment variable ALCHEMY_KEY is not set'])
    expect(err.message).toContain('chains[0].providers[0].url')
    expect(err.message).toContain('ALCHEMY_KEY')
  })

  it('reports every missing variable, each with its path', () => {
    const err = configError(() => parseConfig(validConfig(), {}))
    expect(err.problems).toEqual([
      'chains[0].providers[0].url: environment variable ALCHEMY_KEY is not set',
      'signers[0].privateKey: environment variable HOT_1_KEY is not set',
      'apiKeys[0].key: environment variable FRONTEND_API_KEY is not set',
    ])
  })

  it('a variable set but empty, where the value is only that variable, is said so (a secret mounted empty)', () => {
    const err = configError(() => parseConfig(validConfig(), { ...ENV, HOT_1_KEY: '' }))
    // Before: "Expected a 32-byte hex private key", about a value the file does not show.
    expect(err.problems).toEqual(['signers[0].privateKey: environment variable HOT_1_KEY is set but empty'])
  })

  it('a missing variable does not hide the other problems of the file (nor adds the ones it causes itself)', () => {
    const config = validConfig()
    config.chains[0].confirmations = -1
    const err = configError(() => parseConfig(config, { ...ENV, HOT_1_KEY: undefined }))
    expect(err.problems).toEqual(['signers[0].privateKey: environment variable HOT_1_KEY is not set', 'chains[0].confirmations: Too small: expected number to be >=1'])
  })

  it('an empty variable inside a longer value is a value, not a missing variable', () => {
    const config = validConfig()
    config.apiKeys[0].key = 'prefix-${FRONTEND_API_KEY}'
    const err = configError(() => parseConfig(config, { ...ENV, FRONTEND_API_KEY: '' }))
    expect(err.problems).toEqual(['apiKeys[0].key: API keys must be at least 16 characters'])
  })
})

describe('substituteEnv', () => {
  it.each<[string, unknown, Record<string, string | undefined>, unknown]>([
    ['one variable', 'a-${X}-b', { X: '1' }, 'a-1-b'],
    ['two variables', '${A}${B}', { A: 'x', B: 'y' }, 'xy'],
    ['no placeholder', 'plain', {}, 'plain'],
    ['$NAME without braces is left alone', '$X', { X: '1' }, '$X'],
    ['numbers untouched', 42, {}, 42],
    ['nested', { a: ['${X}', { b: '${X}' }] }, { X: 'v' }, { a: ['v', { b: 'v' }] }],
    ['$${ is a literal ${', 'a$${X}b', { X: '1' }, 'a${X}b'],
  ])('%s', (_label, input, env, expected) => {
    const missing: string[] = []
    expect(substituteEnv(input, env, [], missing)).toEqual(expected)
    expect(missing).toEqual([])
  })

  // Before: left in the value as written, so an admin key or a webhook secret was that guessable text.
  it.each([['${FRONTEND-API-KEY}'], ['${ KEY }'], ['${KEY'], ['prefix-${}']])('%s names no variable: an error naming where', (text) => {
    const missing: string[] = []
    substituteEnv({ apiKeys: [{ key: text }] }, { KEY: 'secret-value-0123456789' }, [], missing)
    expect(missing).toHaveLength(1)
    expect(missing[0]).toMatch(/^apiKeys\[0\]\.key: ".*" names no environment variable/)
  })

  it('a config whose key names no variable does not parse', () => {
    const raw = validConfig() as any
    raw.apiKeys[0].key = '${FRONTEND-API-KEY}'
    expect(configError(() => parseConfig(raw, ENV)).problems).toEqual([expect.stringMatching(/^apiKeys\[0\]\.key: "\$\{FRONTEND-API-KEY\}" names no environment variable/)])
  })
})

describe('formatPath', () => {
  it.each<[PropertyKey[], string]>([
    [[], '(root)'],
    [['chains'], 'chains'],
    [['chains', 0, 'providers', 1, 'url'], 'chains[0].providers[1].url'],
    [['signers', 0, 'chainIds', 0], 'signers[0].chainIds[0]'],
  ])('%j -> %s', (path, expected) => {
    expect(formatPath(path)).toBe(expected)
  })
})

describe('parseConfig: rejected configs', () => {
  const cases: ReadonlyArray<{ label: string; mutate: (c: any) => void; problems: string[] }> = [
    {
      // Before: "Invalid input" and "Too big: expected int", saying nothing of the string to write instead.
      label: 'a wei amount as a fractional or a too large JSON number',
      mutate: (c) => {
        c.chains[0].fees = { maxFeePerGasCap: 1.5, maxTxFeeWei: '0' }
        c.chains[0].policy = { maxValue: 1e21 }
      },
      problems: [
        'chains[0].fees.maxFeePerGasCap: Expected a non-negative integer amount in wei as a decimal string, such as "1000000000000000000"; got 1.5',
        'chains[0].fees.maxTxFeeWei: At least 16777216 wei (1 wei per gas at the largest gas limit, 2^24); it is in wei, not gwei; null for no cap',
        'chains[0].policy.maxValue: Expected a non-negative integer amount in wei as a decimal string, such as "1000000000000000000"; got 1e+21 (a JSON number above 2^53 loses digits)',
      ],
    },
    {
      // Before: any case passed, so a typo in a checksummed allowlist entry allowed an address nobody meant.
      label: 'a mixed-case address with a wrong EIP-55 checksum (as the API refuses it)',
      mutate: (c) => (c.chains[0].policy = { allowedTo: ['0x70997970C51812dc3A010C7d01b50e0d17dc79c9'] }),
      problems: ['chains[0].policy.allowedTo[0]: Wrong EIP-55 checksum (mixed case must be the checksummed form; a typo? all lowercase skips the check)'],
    },
    {
      label: 'invalid provider URL',
      mutate: (c) => (c.chains[0].providers[1].url = 'not a url'),
      problems: ['chains[0].providers[1].url: Expected an http:// or https:// URL (WebSocket providers are not supported)'],
    },
    {
      label: 'provider URL with an unsupported protocol',
      mutate: (c) => (c.chains[0].providers[1].url = 'ftp://10.0.0.5:8545'),
      problems: ['chains[0].providers[1].url: Expected an http:// or https:// URL (WebSocket providers are not supported)'],
    },
    {
      label: 'a fee cap of 0 wei (nothing could ever be sent)',
      mutate: (c) => (c.chains[0].fees = { maxFeePerGasCap: '0' }),
      problems: ['chains[0].fees.maxFeePerGasCap: Must be above 0: a cap of 0 wei lets nothing be sent'],
    },
    {
      label: 'a policy maxGasLimit below 21000 (every request would be refused)',
      mutate: (c) => (c.chains[0].policy = { maxGasLimit: '0' }),
      problems: ['chains[0].policy.maxGasLimit: At least 21000: every transaction needs that much gas'],
    },
    {
      label: 'a WebSocket provider (every call goes over HTTP)',
      mutate: (c) => (c.chains[0].providers[1].url = 'wss://eth-mainnet.example/ws'),
      problems: ['chains[0].providers[1].url: Expected an http:// or https:// URL (WebSocket providers are not supported)'],
    },
    {
      label: 'retentionDays past a century (it overflowed Postgres timestamps in every prune)',
      mutate: (c) => (c.retentionDays = 1_000_000_000),
      problems: ['retentionDays: At most 36500 (100 years)'],
    },
    {
      label: 'database.maxConnections of 1 (a sign batch holds one until it commits)',
      mutate: (c) => (c.database = { maxConnections: 1 }),
      problems: ['database.maxConnections: At least 2: a sign batch holds one until it commits'],
    },
    {
      label: 'metrics.requireKey with auth disabled (no key is checked anywhere then)',
      mutate: (c) => ((c.metrics = { requireKey: true }), (c.auth = 'disabled')),
      problems: ['metrics.requireKey: Needs "auth": "enabled" (with auth disabled, no key is checked anywhere)'],
    },
    {
      label: 'an unknown key under database',
      mutate: (c) => (c.database = { poolSize: 5 }),
      problems: ['database: Unrecognized key: "poolSize"'],
    },
    {
      label: 'unknown top-level key',
      mutate: (c) => (c.bogus = true),
      problems: ['(root): Unrecognized key: "bogus"'],
    },
    {
      label: 'signer with both privateKey and keystore',
      mutate: (c) => Object.assign(c.signers[0], { keystore: '/keys/hot-1.json', password: 'pw' }),
      problems: ['signers[0]: Give exactly one of privateKey, keystore or remote'],
    },
    {
      label: 'signer with no key at all',
      mutate: (c) => delete c.signers[0].privateKey,
      problems: ['signers[0]: Give exactly one of privateKey, keystore or remote'],
    },
    {
      label: 'signer naming an unknown chainId',
      mutate: (c) => (c.signers[0].chainIds = [5]),
      problems: ['signers[0].chainIds[0]: Unknown chainId 5: not in "chains"'],
    },
    {
      label: 'chainId over 32 bits (Palm, 11297108109)',
      mutate: (c) => {
        c.chains[0].chainId = 11297108109
        c.signers[0].chainIds = [11297108109]
      },
      problems: ['chains[0].chainId: chain ids above 2147483647 are not supported (the API and the database take 32-bit chain ids)'],
    },
    {
      label: 'duplicate chainId',
      mutate: (c) => c.chains.push({ ...c.chains[0], name: 'again' }),
      problems: ['chains[1].chainId: Duplicate chainId 1'],
    },
    {
      label: 'duplicate provider name',
      mutate: (c) => (c.chains[0].providers[1].name = 'alchemy'),
      problems: ['chains[0].providers[1].name: Duplicate provider name "alchemy"'],
    },
    {
      label: 'duplicate signer name',
      mutate: (c) => c.signers.push({ name: 'hot-1', chainIds: [1], privateKey: '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d' }),
      problems: ['signers[1].name: Duplicate signer name "hot-1"'],
    },
    {
      // Before: accepted, and every request with it refused as an unknown key (no header can carry the newline).
      label: 'an API key with a trailing newline (from a secret file)',
      mutate: (c) => (c.apiKeys[0].key = `${c.apiKeys[0].key}\n`),
      problems: ["apiKeys[0].key: API keys cannot contain spaces or line breaks (a secret file's trailing newline?)"],
    },
    {
      // Before: accepted, then the start failed with "has the same address as signer hot-1", naming no setting.
      label: 'a signer listing a chain twice',
      mutate: (c) => (c.signers[0].chainIds = [1, 1]),
      problems: ['signers[0].chainIds[1]: Duplicate chainId 1'],
    },
    {
      label: 'unknown pipeline process mode',
      mutate: (c) => (c.pipeline = { process: 'child' }),
      problems: ['pipeline.process: Invalid option: expected one of "inline"|"separate"'],
    },
    {
      label: 'pipeline niceness out of range',
      mutate: (c) => (c.pipeline = { process: 'separate', nice: 20 }),
      problems: ['pipeline.nice: Too big: expected number to be <=19'],
    },
    {
      label: 'two API keys with the same value (the first listed decided the role)',
      mutate: (c) => c.apiKeys.push({ name: 'viewer', role: 'reader', key: '${FRONTEND_API_KEY}' }),
      problems: ['apiKeys[1].key: The same key as API key "frontend": give each its own'],
    },
    {
      label: 'an explorerUrl that is not http(s) (it becomes a link on the dashboard)',
      mutate: (c) => (c.chains[0].explorerUrl = 'javascript:alert(1)'),
      problems: ['chains[0].explorerUrl: Expected an http:// or https:// URL'],
    },
    {
      label: 'API key too short',
      mutate: (c) => (c.apiKeys[0].key = 'short'),
      problems: ['apiKeys[0].key: API keys must be at least 16 characters'],
    },
  ]

  it.each(cases)('$label', ({ mutate, problems }) => {
    const raw = validConfig()
    mutate(raw)
    const err = configError(() => parseConfig(raw, ENV))
    expect(err.problems).toEqual(problems)
    expect(err.message).toContain(problems[0])
  })

  it('the unknown key problem names the key', () => {
    const raw = validConfig()
    raw.retentionDayz = 3
    expect(configError(() => parseConfig(raw, ENV)).problems.join('\n')).toContain('retentionDayz')
  })

  it('an unknown key inside a chain names the key at its path', () => {
    const raw = validConfig()
    raw.chains[0].confirmation = 3
    expect(configError(() => parseConfig(raw, ENV)).problems).toEqual(['chains[0]: Unrecognized key: "confirmation"'])
  })

  it.each([
    ['a negative wei cap', '-1'],
    ['a decimal wei cap', '1.5'],
    ['a hex wei cap', '0x10'],
  ])('%s is rejected at fees.maxFeePerGasCap', (_label, cap) => {
    const raw = validConfig()
    raw.chains[0].fees.maxFeePerGasCap = cap
    const problems = configError(() => parseConfig(raw, ENV)).problems
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/^chains\[0\]\.fees\.maxFeePerGasCap: /)
  })
})

describe('readConfigFile and loadOptions', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loadConfig-test-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const write = (name: string, text: string) => {
    const path = join(dir, name)
    writeFileSync(path, text)
    return path
  }
  const goodPath = write('config.json', JSON.stringify(validConfig()))

  it('loadOptions(["--config", path], env) reads and parses the file', () => {
    const options = loadOptions(['--config', goodPath], { ...ENV, DATABASE_URL: 'postgres://db/tx' })
    expect(options.configPath).toBe(resolve(goodPath))
    expect(options.devMode).toBe(false)
    expect(options.host).toBe('0.0.0.0')
    expect(options.port).toBe(4000)
    expect(options.embeddedPostgres).toBe(false)
    expect(options.file?.chains[0]!.providers[0]!.url).toBe('https://eth-mainnet.g.alchemy.com/v2/alchemy-secret')
  })

  it('accepts --config=path and BROADCASTER_CONFIG', () => {
    const withDb = { ...ENV, DATABASE_URL: 'postgres://db/tx' }
    expect(loadOptions([`--config=${goodPath}`], withDb).configPath).toBe(resolve(goodPath))
    expect(loadOptions([], { ...withDb, BROADCASTER_CONFIG: goodPath }).configPath).toBe(resolve(goodPath))
    // A deployment that clears the variable and passes the file: the argument decides.
    expect(loadOptions(['--config', goodPath], { ...withDb, BROADCASTER_CONFIG: '' }).configPath).toBe(resolve(goodPath))
  })

  it('with a config file DATABASE_URL is required (before: a private embedded Postgres); DATABASE_URL=embedded asks for one', () => {
    expect(configError(() => loadOptions(['--config', goodPath], ENV)).message).toMatch(/^DATABASE_URL is not set\. With a config file .*DATABASE_URL=embedded/)
    expect(loadOptions(['--config', goodPath], { ...ENV, DATABASE_URL: 'embedded' })).toMatchObject({ databaseUrl: null, embeddedPostgres: true, devMode: false })
    expect(loadOptions([], {})).toMatchObject({ databaseUrl: null, embeddedPostgres: true, devMode: true })
  })

  it('PORT: blanks around it are dropped (an env file\'s), and a blank one is the default (before: " " was port 0, a random one)', () => {
    expect(loadOptions(['--config', goodPath], { ...ENV, DATABASE_URL: 'postgres://db/tx', PORT: ' 8080\n' }).port).toBe(8080)
    expect(loadOptions(['--config', goodPath], { ...ENV, DATABASE_URL: 'postgres://db/tx', PORT: ' ' }).port).toBe(4000)
  })

  it('reads DATABASE_URL, PORT, HOST and LOG_LEVEL from the env argument', () => {
    const options = loadOptions(['--config', goodPath], { ...ENV, DATABASE_URL: 'postgres://db/tx', PORT: '8080', HOST: '127.0.0.1', LOG_LEVEL: 'debug' })
    expect(options).toMatchObject({ databaseUrl: 'postgres://db/tx', embeddedPostgres: false, port: 8080, host: '127.0.0.1', logLevel: 'debug' })
  })

  it('without a config file it is dev mode on localhost', () => {
    const options = loadOptions([], {})
    expect(options).toMatchObject({ file: null, configPath: null, devMode: true, host: '127.0.0.1', logLevel: 'info' })
  })

  it.each<[string, string[], Record<string, string>, RegExp]>([
    ['an unknown argument', ['--bogus'], {}, /Unknown argument "--bogus"/],
    ['--config without a path', ['--config='], {}, /--config needs a path/],
    ['--config with nothing after it (a deployment whose $CFG is unset)', ['--config'], {}, /--config needs a path/],
    ['--config followed by another flag', ['--config', '--verbose'], {}, /--config needs a path/],
    ['BROADCASTER_CONFIG set but empty', [], { BROADCASTER_CONFIG: '' }, /^BROADCASTER_CONFIG is set but empty/],
    ['BROADCASTER_CONFIG empty and --config with nothing after it', ['--config'], { BROADCASTER_CONFIG: '' }, /--config needs a path/],
    ['a bad PORT', [], { PORT: 'eighty' }, /PORT: expected a port number \(0 to 65535, digits only\), got "eighty"/],
    // Number() read these as 0 (a random port, unsaid), 8080 and 1000.
    ['a hex PORT', [], { PORT: '0x1f90' }, /PORT: expected a port number/],
    ['a PORT in exponent form', [], { PORT: '1e3' }, /PORT: expected a port number/],
    ['a PORT out of range', [], { PORT: '70000' }, /PORT/],
    ['a LOG_LEVEL pino does not have', [], { LOG_LEVEL: 'verbose' }, /^LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "verbose"$/],
  ])('%s is a ConfigError', (_label, argv, env, message) => {
    expect(configError(() => loadOptions(argv, env)).message).toMatch(message)
  })

  it('a missing file is a ConfigError naming it', () => {
    const missing = join(dir, 'nope.json')
    expect(configError(() => loadOptions(['--config', missing], ENV)).message).toContain(`Cannot read config file ${missing}`)
  })

  it('a file that is not JSON is a ConfigError naming it', () => {
    const path = write('broken.json', '{ "chains": [')
    expect(configError(() => readConfigFile(path, ENV)).message).toContain(`Config file ${path} is not valid JSON`)
  })

  it('problems in the file keep their paths and the message names the file', () => {
    const raw = validConfig()
    raw.chains[0].providers[1].url = 'not a url'
    const path = write('bad-url.json', JSON.stringify(raw))
    const err = configError(() => readConfigFile(path, ENV))
    expect(err.message).toContain(`Invalid configuration in ${path}`)
    expect(err.problems).toEqual(['chains[0].providers[1].url: Expected an http:// or https:// URL (WebSocket providers are not supported)'])
  })
})

describe('webhook names', () => {
  const hook = (url: string, events?: string[]) => ({ url, secret: 'whsec-0123456789abcdef', ...(events ? { events } : {}) })
  it('the default name does not depend on the place in the list (queued deliveries follow their webhook)', () => {
    const a = hook('https://a.example/hook')
    const b = hook('https://b.example/hook', ['CONFIRMED', 'FAILED'])
    expect(webhookName(b)).toBe(webhookName(hook('https://b.example/hook', ['FAILED', 'CONFIRMED'])))
    expect([a, b].map(webhookName)[1]).toBe([b].map(webhookName)[0])
    expect(webhookName(a)).not.toBe(webhookName(b))
    expect(webhookName({ ...a, name: 'mine' })).toBe('mine')
  })
})


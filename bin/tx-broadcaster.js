#!/usr/bin/env node
// The `tx-broadcaster` command: runs the TypeScript sources through tsx (no build step).
// `tx-broadcaster keys ...` manages API keys; anything else starts the service (see --help).
import { register } from 'tsx/esm/api'

register()
await import('../src/cli/main.ts')

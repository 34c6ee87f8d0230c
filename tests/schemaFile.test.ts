import { readFileSync } from 'node:fs'
import { printSchema } from 'graphql'
import { expect, it } from 'vitest'
import { buildSchema } from '../src/api/graphql/schema.ts'

it('schema.graphql matches the schema the code builds (run `npm run schema:print` after changing the API)', () => {
  const checkedIn = readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8')
  expect(checkedIn).toBe(`${printSchema(buildSchema())}\n`)
})

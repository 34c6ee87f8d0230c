import { fileURLToPath } from 'node:url'
import { writeSchemaFile } from '../../service.ts'

/** `npm run schema:print`: regenerates the checked-in schema.graphql from the code. */
const path = fileURLToPath(new URL('../../../schema.graphql', import.meta.url))
writeSchemaFile(path)
process.stdout.write(`wrote ${path}\n`)

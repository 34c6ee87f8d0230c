import { fileURLToPath } from 'node:url'
import { buildService } from '../src/dev/builtService.ts'

/** Once per test run: the build in dist/ that the tests starting the service as a process run (as `npm start` does). */
export default async function setup(): Promise<void> {
  await buildService(fileURLToPath(new URL('..', import.meta.url)))
}

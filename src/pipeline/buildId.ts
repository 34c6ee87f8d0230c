import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/**
 * The id `npm run build` writes into dist/ (src/dev/buildDist.ts), read from the build this module was loaded
 * from; null when running from the sources. The API's process reads it once at start and the pipeline process
 * compares it with its own: a pipeline process restarted after dist/ was rebuilt under the running service
 * would run the new code beside the old API (against a schema only the new one migrates).
 */
export function readBuildId(): string | null {
  try {
    return readFileSync(fileURLToPath(new URL('../build-id', import.meta.url)), 'utf8').trim()
  } catch {
    return null
  }
}

import type { IncomingMessage } from 'node:http'
import { ERROR_CODE, InputError } from '../core/errors.ts'

/** Request bodies above this are refused before they are buffered (a transaction is at most ~128 KiB of calldata as hex). */
export const MAX_BODY_BYTES = 512 * 1024

const tooLarge = (limit: number) => new InputError(ERROR_CODE.PAYLOAD_TOO_LARGE, `Request body is over ${limit} bytes`, undefined, 413)

/**
 * The GraphQL endpoint's body limit, from the headers alone: yoga then reads the body without its own
 * limit, which wrapped every request body in a web TransformStream (about 5 % of the event loop under
 * load). Node's parser reads exactly Content-Length bytes as the body, so the header is the limit.
 */
export function checkDeclaredLength(req: IncomingMessage, limit = MAX_BODY_BYTES): void {
  if (req.method !== 'POST') return
  const declared = req.headers['content-length']
  if (declared === undefined)
    throw new InputError(ERROR_CODE.LENGTH_REQUIRED, 'Send the GraphQL request with a Content-Length header (chunked bodies are not accepted)', undefined, 411)
  if (!/^\d+$/.test(declared)) throw new InputError(ERROR_CODE.INVALID_INPUT, 'Content-Length is not a number', undefined, 400)
  if (Number(declared) > limit) throw tooLarge(limit)
}

export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > limit) throw tooLarge(limit)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit) throw tooLarge(limit)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = String(req.headers['content-type'] ?? '')
  if (!/^application\/json\b/i.test(type))
    throw new InputError(ERROR_CODE.UNSUPPORTED_MEDIA_TYPE, 'Send the body as JSON with "Content-Type: application/json"', undefined, 415)
  const body = await readBody(req)
  try {
    return JSON.parse(body.toString('utf8'))
  } catch (err) {
    throw new InputError(ERROR_CODE.INVALID_JSON, `Body is not valid JSON: ${(err as Error).message}`)
  }
}

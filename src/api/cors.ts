import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'
import type { ApiKeyConfig } from '../config/schema.ts'
import { ERROR_CODE, InputError } from '../core/errors.ts'
import type { Principal } from './auth.ts'

/** Headers a browser may send with an API request, and the ones a page may read from the answer. */
const ALLOW_HEADERS = 'authorization, content-type, accept'
const EXPOSE_HEADERS = 'retry-after'
/** Browsers cache a preflight this long (seconds). */
const MAX_AGE = '600'

export type CorsPolicy = {
  /**
   * CORS headers for a request from `origin` (the Origin header) to this server (`host`, the Host header),
   * before the key is known: a preflight, or an answer (errors too) the page may read. Empty when the
   * origin is not one any key lists: the browser then refuses the page the answer.
   */
  headersFor: (origin: string | undefined, host: string | undefined, fetchSite?: string) => Record<string, string>
  /** Throws 403 when a page on `origin` uses a key that does not list it (DESIGN.md: no origin unless listed). */
  check: (origin: string | undefined, host: string | undefined, principal: Principal, fetchSite?: string) => void
}

/** The browser's Sec-Fetch-Site header ("same-origin", "cross-site", ...), when there is one. */
export const fetchSiteOf = (req: IncomingMessage): string | undefined => {
  const v = req.headers['sec-fetch-site']
  return typeof v === 'string' ? v : undefined
}

/** The origin (scheme://host[:port], lower case, no default port) of a URL, or null. */
export function normalizeOrigin(value: string): string | null {
  try {
    const url = new URL(value)
    return url.origin === 'null' ? null : url.origin.toLowerCase()
  } catch {
    return null
  }
}

/**
 * Which web pages may call the API from a browser (CORS), per API key: `apiKeys[].allowedOrigins`. The
 * dashboard's own origin (the server's) always may; in dev mode any origin may. Keys created with the CLI
 * list no origins. A preflight carries no key, so it is answered for an origin any key lists; the request
 * itself is then refused (403) unless its own key lists the origin. Without a key (auth disabled) only the
 * server's own origin may call it from a page: any site could otherwise act as admin from an operator's browser.
 */
export function createCorsPolicy(
  keys: ApiKeyConfig[],
  devMode: boolean,
  opts: { authDisabled?: boolean; allowedHosts?: readonly string[] } = {},
): CorsPolicy {
  const allowedHosts = new Set((opts.allowedHosts ?? []).map((h) => h.toLowerCase()))
  const byKey = new Map<string, Set<string>>()
  for (const k of keys) byKey.set(k.name, new Set((k.allowedOrigins ?? []).map((o) => normalizeOrigin(o)!)))
  const anyKey = new Set([...byKey.values()].flatMap((s) => [...s]))

  /**
   * The page is on this server (the dashboard): not a cross-origin request at all. The browser says so in
   * Sec-Fetch-Site, which pages cannot set; behind a proxy that rewrites Host (nginx's default) the Host
   * comparison alone would refuse the dashboard its own API.
   */
  const sameOrigin = (origin: string, host: string | undefined, fetchSite: string | undefined) =>
    fetchSite === 'same-origin' || (host !== undefined && new URL(origin).host === host.toLowerCase())

  return {
    headersFor(origin, host, fetchSite): Record<string, string> {
      const o = origin && normalizeOrigin(origin)
      if (!o || !(devMode || sameOrigin(o, host, fetchSite) || anyKey.has(o))) return {}
      return {
        'access-control-allow-origin': o,
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': ALLOW_HEADERS,
        'access-control-expose-headers': EXPOSE_HEADERS,
        'access-control-max-age': MAX_AGE,
        vary: 'Origin',
      }
    },
    check(origin, host, principal, fetchSite) {
      // DNS rebinding: a site the operator's browser visits points its own name at this server, and its page is
      // then "same origin" with it. With keys that gains nothing (the page has none); with auth disabled every
      // request is admin, so the API answers only at a name no one else controls (an IP address, localhost) or
      // one listed in allowedHosts. Every request, not only those with Origin: over plain http a browser's
      // same-origin GET carries neither Origin nor Sec-Fetch-Site, and looks like any other client's.
      if (opts.authDisabled && !hostAllowed(host, allowedHosts))
        throw new InputError(
          ERROR_CODE.FORBIDDEN,
          `With auth disabled, the API answers at an IP address, at localhost or at a name listed in allowedHosts, not at ${host ?? 'no Host'}`,
          undefined,
          403,
        )
      if (!origin || devMode) return
      const o = normalizeOrigin(origin)
      if (o && (sameOrigin(o, host, fetchSite) || byKey.get(principal.name)?.has(o))) return
      throw new InputError(
        ERROR_CODE.FORBIDDEN,
        `Requests from origin ${origin} are not allowed for key "${principal.name}"; list it in the key's allowedOrigins`,
        undefined,
        403,
      )
    },
  }
}

/** Whether a Host header names this server in a way a DNS rebinding cannot fake: an IP address, localhost, or a listed name. */
export function hostAllowed(host: string | undefined, allowedHosts: ReadonlySet<string>): boolean {
  if (!host) return false
  let name: string
  try {
    name = new URL(`http://${host}`).hostname.toLowerCase()
  } catch {
    return false
  }
  const bare = name.startsWith('[') ? name.slice(1, -1) : name
  return isIP(bare) !== 0 || name === 'localhost' || name.endsWith('.localhost') || allowedHosts.has(name)
}

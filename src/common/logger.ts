import pino, { type Logger } from 'pino'

export type { Logger }

/**
 * A URL path segment that may be a secret: anything but a plain lowercase word (`rpc`, `mainnet`) or a version
 * (`v2`). Only long opaque tokens were hidden before: a short key (`/v1/shortkey123` on a self-hosted proxy), a
 * dotted one (`/key/ab12.cd34.ef56`) or base64 (`.../Zm9vYmFy+/=`) showed in logs, errors and the providers query.
 */
export function isSecretSegment(segment: string): boolean {
  return segment !== '' && !/^[a-z][a-z-]{0,19}$/.test(segment) && !/^v\d{1,2}$/.test(segment)
}

/** Provider URLs may carry credentials (`user:pass@`, an API key in the path or the query). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.username || u.password) {
      u.username = '***'
      u.password = ''
    }
    // Alchemy/QuickNode/Infura put the key in the path: keep the host, hide every segment that may be one.
    u.pathname = u.pathname
      .split('/')
      .map((seg) => (isSecretSegment(seg) ? '***' : seg))
      .join('/')
    if (u.search) u.search = '?***'
    return u.toString()
  } catch {
    return '***'
  }
}

/** `destination`: where lines go instead of stdout (tests capture them). */
export function createLogger(opts: { level: string; pretty: boolean; destination?: pino.DestinationStream }): Logger {
  const options: pino.LoggerOptions = {
    level: opts.level,
    base: undefined,
    redact: {
      paths: ['privateKey', '*.privateKey', 'password', '*.password', 'key', '*.key', 'authorization', '*.authorization', 'headers.authorization', 'secret', '*.secret'],
      censor: '***',
    },
    ...(opts.pretty && !opts.destination ? { transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname' } } } : {}),
  }
  return opts.destination ? pino(options, opts.destination) : pino(options)
}

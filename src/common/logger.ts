import pino, { type Logger } from 'pino'

export type { Logger }

/** Provider URLs may carry credentials (`user:pass@`, or an API key as the last path segment). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.username || u.password) {
      u.username = '***'
      u.password = ''
    }
    // Alchemy/QuickNode/Infura put the key in the path: keep the host, hide long opaque segments.
    u.pathname = u.pathname
      .split('/')
      .map((seg) => (seg.length >= 16 && /^[A-Za-z0-9_-]+$/.test(seg) ? '***' : seg))
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

import { isSecretSegment, redactUrl } from '../common/logger.ts'

/** Removes the secrets of known URLs from a text. */
export type Redact = (text: string) => string

/** Shorter pieces are too likely to be ordinary words of an error message. */
const MIN_SECRET_LENGTH = 4

/**
 * Provider and signer URLs may carry credentials (`user:pass@`, an API key in
 * the path or query). viem puts the URL in its error messages, sometimes as
 * configured and sometimes with the credentials moved out (it sends them as a
 * Basic auth header), so every form is replaced by the redacted URL, and the
 * secret pieces themselves are replaced wherever else they appear.
 */
export function createUrlRedactor(urls: readonly string[]): Redact {
  const replacements = new Map<string, string>()
  for (const url of urls) {
    const safe = redactUrl(url)
    const forms = new Set<string>([url])
    const secrets: string[] = []
    try {
      const u = new URL(url)
      forms.add(u.toString())
      const bare = new URL(url)
      bare.username = ''
      bare.password = ''
      forms.add(bare.toString())
      for (const f of [...forms]) forms.add(f.replace(/\/$/, ''))
      secrets.push(u.username, u.password, decodeURIComponent(u.username), decodeURIComponent(u.password))
      // As redactUrl hides them; decoded too (a key with '+' or '=' may be written percent-encoded).
      const hidden = u.pathname.split('/').filter(isSecretSegment)
      secrets.push(...hidden, ...hidden.map((seg) => safeDecode(seg)))
      if (u.search) secrets.push(u.search.slice(1), ...[...u.searchParams.values()])
    } catch {
      // Not a URL: only the text as given is known.
    }
    // A form inside the redacted URL (the same URL without its trailing slash) has nothing to hide.
    for (const form of forms) if (form.length > 0 && !safe.includes(form)) replacements.set(form, safe)
    for (const secret of secrets) if (secret.length >= MIN_SECRET_LENGTH && !safe.includes(secret)) replacements.set(secret, '***')
  }
  // Longest first, so a whole URL is replaced before the pieces inside it.
  const ordered = [...replacements.entries()].sort((a, b) => b[0].length - a[0].length)
  return (text) => {
    let out = text
    for (const [from, to] of ordered) if (out.includes(from)) out = out.split(from).join(to)
    return out
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

const TEXT_FIELDS = ['message', 'shortMessage', 'details', 'stack', 'url'] as const

/**
 * Redacts an error and its causes in place (message, stack, viem's shortMessage,
 * details, metaMessages and url), so whoever logs, stores or wraps it later can
 * only see the redacted text. Returns the same error.
 */
export function redactErrorInPlace<T>(err: T, redact: Redact): T {
  let e: unknown = err
  for (let depth = 0; e && typeof e === 'object' && depth < 10; depth++) {
    const obj = e as Record<string, unknown>
    for (const field of TEXT_FIELDS) {
      const value = obj[field]
      if (typeof value === 'string') trySet(obj, field, redact(value))
    }
    if (Array.isArray(obj.metaMessages)) trySet(obj, 'metaMessages', obj.metaMessages.map((m) => (typeof m === 'string' ? redact(m) : m)))
    e = obj.cause
  }
  return err
}

function trySet(obj: Record<string, unknown>, field: string, value: unknown): void {
  if (obj[field] === value) return
  try {
    obj[field] = value
  } catch {
    // A frozen or getter-only field: nothing to do.
  }
}

/** withTimeout's rejection: told apart from the promise's own failure by its type, not its words. */
export class TimedOutError extends Error {
  override name = 'TimedOutError'
}

/** Rejects when `promise` has not settled after `ms`: a hung connection must not stall a loop forever. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimedOutError(`${what} did not finish within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

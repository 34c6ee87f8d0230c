import { expect } from 'vitest'

/** Runs fn, expects it to throw an instance of `type`, and returns that error for further checks. */
export function thrown<E extends Error>(fn: () => unknown, type: abstract new (...args: never[]) => E): E {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(type)
    return err as E
  }
  throw new Error(`expected a ${type.name}`)
}

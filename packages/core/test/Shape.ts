/**
 * Same prototypes, same own keys in the same order, same values (`Object.is`) all the way
 * down: stricter than deep equality, since key order shows in `toString` and the encoder.
 * Shared by the tests of the decoder and of the trusted builders, which both build
 * instances without their constructors.
 */
import { assert } from "@effect/vitest"

export const assertSameShape = (a: unknown, b: unknown, at = "envelope"): void => {
  const difference = shapeDifference(a, b, at)
  if (difference !== undefined) assert.fail(difference)
}

const shapeDifference = (a: unknown, b: unknown, at: string): string | undefined => {
  if (typeof a !== "object" || a === null || typeof b !== "object" || b === null)
    return Object.is(a, b) ? undefined : `${at}: ${String(a)} vs ${String(b)}`
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return `${at}: prototypes differ`
  const keys = Reflect.ownKeys(a)
  const otherKeys = Reflect.ownKeys(b)
  if (keys.length !== otherKeys.length || keys.some((key, i) => key !== otherKeys[i]))
    return `${at}: own keys differ: ${String(keys)} vs ${String(otherKeys)}`
  for (const key of keys) {
    const da = Object.getOwnPropertyDescriptor(a, key)!
    const db = Object.getOwnPropertyDescriptor(b, key)!
    if (da.enumerable !== db.enumerable || da.writable !== db.writable || da.configurable !== db.configurable)
      return `${at}.${String(key)}: property attributes differ`
    const difference = shapeDifference(da.value, db.value, `${at}.${String(key)}`)
    if (difference !== undefined) return difference
  }
  return undefined
}

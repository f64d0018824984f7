/**
 * JSON text of large values without stalling the event loop: `JSON.stringify` of a
 * replica's snapshot (tens of megabytes for a large store) would block every role of the
 * process for tens of milliseconds. `stringifyGradually` produces the same text in
 * slices, and `runGradually` drives such a generator, yielding to other fibers (and to
 * I/O: the scheduler lets the event loop turn) between slices. `textOf` stringifies a
 * value once for several users: a replica's snapshot is hashed for its digest, then
 * written to disk, the same text both times.
 *
 * @since 0.2.0
 */
import { Effect, type Schema } from "effect"
import { jsonLength } from "./Limits.ts"

/** Array elements stringified per slice, at most. */
export const sliceElements = 4096

/**
 * Characters of JSON stringified per slice, about (`Limits.jsonLength`): 4,096 entries of
 * a store of 4 KB values made a slice of 16 MB, which stalled the event loop for tens of
 * milliseconds at a time.
 */
export const sliceChars = 256 * 1024

/**
 * `JSON.stringify(value)` for a JSON value, as a generator that yields between slices:
 * an array is stringified `sliceElements` elements or about `sliceChars` characters at a
 * time, whichever comes first, an object property by property (recursively). Elements of
 * an array are not split further, so a slice is at least one element; snapshots are long
 * arrays of small entries.
 */
export function* stringifyGradually(value: Schema.Json): Generator<void, string, void> {
  // as JSON.stringify does: a value with a toJSON method is written as what it returns
  const own = value as { readonly toJSON?: unknown } | null
  if (own !== null && typeof own === "object" && typeof own.toJSON === "function") {
    return yield* stringifyGradually((own.toJSON as () => Schema.Json)())
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]"
    const parts: Array<string> = []
    let start = 0
    let chars = 0
    for (let i = 0; i < value.length; i++) {
      chars += jsonLength(value[i])
      if (i + 1 - start < sliceElements && chars < sliceChars && i + 1 < value.length) continue
      // "[a,b]" without its brackets; a slice is never empty here
      parts.push(JSON.stringify(value.slice(start, i + 1)).slice(1, -1))
      start = i + 1
      chars = 0
      if (start < value.length) yield
    }
    return `[${parts.join(",")}]`
  }
  if (value !== null && typeof value === "object") {
    const parts: Array<string> = []
    for (const key of Object.keys(value)) {
      const field = (value as { readonly [key: string]: Schema.Json | undefined })[key]
      // JSON.stringify leaves out undefined properties
      if (field === undefined) continue
      parts.push(`${JSON.stringify(key)}:${yield* stringifyGradually(field)}`)
    }
    return `{${parts.join(",")}}`
  }
  return JSON.stringify(value)
}

/**
 * `text` in consecutive slices of about `sliceChars` characters (at least one each), never
 * between the halves of a surrogate pair: each half alone would be encoded, or hashed, as
 * U+FFFD. For work done on a long text a slice per turn.
 */
export function* slices(text: string, sliceChars: number): Generator<string, void, void> {
  for (let at = 0; at < text.length; ) {
    let end = Math.min(text.length, at + Math.max(1, sliceChars))
    const last = text.charCodeAt(end - 1)
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end++
    yield text.slice(at, end)
    at = end
  }
}

/** Runs a generator to its result, yielding to other fibers after each slice. */
export const runGradually = <A>(make: () => Generator<void, A, void>): Effect.Effect<A> =>
  Effect.suspend(() => {
    const gen = make()
    const step: Effect.Effect<A> = Effect.suspend(() => {
      const r = gen.next()
      return r.done ? Effect.succeed(r.value) : Effect.andThen(Effect.yieldNow, step)
    })
    return step
  })

/** Texts `textOf` produced, by value, until `forget`. */
const texts = new WeakMap<object, string>()

/**
 * The JSON text of `value`, stringified gradually the first time and kept (weakly, with
 * the value) for the next caller until `forget`: the snapshot a replica hashed is the one
 * it then saves, and its tens of megabytes are stringified once instead of twice.
 */
export const textOf = (value: Schema.Json & object): Effect.Effect<string> =>
  Effect.suspend(() => {
    const known = texts.get(value)
    if (known !== undefined) return Effect.succeed(known)
    return Effect.tap(
      runGradually(() => stringifyGradually(value)),
      (text) => Effect.sync(() => texts.set(value, text))
    )
  })

/** Drops the text `textOf` kept for `value` (its last user is done with it). */
export const forget = (value: object): void => {
  texts.delete(value)
}

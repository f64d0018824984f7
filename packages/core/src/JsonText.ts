/**
 * JSON text of large values without stalling the event loop: `JSON.stringify` of a
 * replica's snapshot (tens of megabytes for a large store) would block every role of the
 * process for tens of milliseconds. `stringifyChunks` produces the same text in slices,
 * as chunks that are never joined (`pieces` regroups them for the hash and the file
 * writer), and `runGradually` drives such a generator, yielding to other fibers (and to
 * I/O: the scheduler lets the event loop turn) between slices. `textOf` stringifies a
 * value once for several users: a replica's snapshot is hashed for its digest, then
 * written to disk, the same chunks both times.
 *
 * @since 0.2.0
 */
import { Context, Effect, type Schema } from "effect"
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
 * `JSON.stringify(value)` for a JSON value, as a generator that yields between slices and
 * returns the text in chunks, whose concatenation is the text: an array is stringified
 * `sliceElements` elements or about `sliceChars` characters at a time, whichever comes
 * first, an object property by property (recursively). Elements of an array are not split
 * further, so a slice is at least one element; snapshots are long arrays of small entries.
 *
 * The chunks are not joined: the hash and the file writer take them one by one
 * (`digestTextGradually`, `Frame.encodeTextGradually`). Joining them (and the brackets
 * and fields around them) copied the whole text two or three times in one turn each: for
 * the 35 MB snapshot of a store of 4 KB values, 50-130 ms stalls of every role of the
 * process, on every replica at the same digest slot. A chunk never ends between the halves
 * of a surrogate pair (each is a whole `JSON.stringify` output, whose non-ASCII
 * characters are whole, or punctuation), so each can be encoded or hashed alone.
 */
export function* stringifyChunks(value: Schema.Json, chunks: Array<string> = []): Generator<void, Array<string>, void> {
  // as JSON.stringify does: a value with a toJSON method is written as what it returns
  const own = value as { readonly toJSON?: unknown } | null
  if (own !== null && typeof own === "object" && typeof own.toJSON === "function") {
    return yield* stringifyChunks((own.toJSON as () => Schema.Json)(), chunks)
  }
  if (Array.isArray(value)) {
    if (value.length === 0) {
      chunks.push("[]")
      return chunks
    }
    chunks.push("[")
    let start = 0
    let chars = 0
    for (let i = 0; i < value.length; i++) {
      chars += jsonLength(value[i])
      if (i + 1 - start < sliceElements && chars < sliceChars && i + 1 < value.length) continue
      // "[a,b]" without its brackets; a slice is never empty here
      if (start > 0) chunks.push(",")
      chunks.push(JSON.stringify(value.slice(start, i + 1)).slice(1, -1))
      start = i + 1
      chars = 0
      if (start < value.length) yield
    }
    chunks.push("]")
    return chunks
  }
  if (value !== null && typeof value === "object") {
    chunks.push("{")
    let first = true
    for (const key of Object.keys(value)) {
      const field = (value as { readonly [key: string]: Schema.Json | undefined })[key]
      // JSON.stringify leaves out undefined properties
      if (field === undefined) continue
      chunks.push(`${first ? "" : ","}${JSON.stringify(key)}:`)
      first = false
      yield* stringifyChunks(field, chunks)
    }
    chunks.push("}")
    return chunks
  }
  chunks.push(JSON.stringify(value))
  return chunks
}

/** `JSON.stringify(value)` for a JSON value, a slice per step (`stringifyChunks`, joined). */
export function* stringifyGradually(value: Schema.Json): Generator<void, string, void> {
  return (yield* stringifyChunks(value)).join("")
}

/**
 * The chunks of a text (`stringifyChunks`) regrouped into pieces of about `sliceChars`
 * characters for work done a piece per turn: small chunks are gathered, a large one is cut
 * (`slices`). A piece is an array of strings whose concatenation is that part of the text.
 */
export function* pieces(
  chunks: ReadonlyArray<string>,
  sliceChars: number
): Generator<ReadonlyArray<string>, void, void> {
  let piece: Array<string> = []
  let chars = 0
  for (const chunk of chunks) {
    if (chunk.length > sliceChars) {
      if (piece.length > 0) yield piece
      piece = []
      chars = 0
      for (const slice of slices(chunk, sliceChars)) yield [slice]
      continue
    }
    piece.push(chunk)
    chars += chunk.length
    if (chars >= sliceChars) {
      yield piece
      piece = []
      chars = 0
    }
  }
  if (piece.length > 0) yield piece
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

/**
 * How background work pauses after a slice that took `sliceMs` milliseconds
 * (`runGradually`): by default it yields to the other fibers (`Effect.yieldNow`), which is
 * what the simulator's scheduler orders, and the slice's length is not looked at. A
 * process on real time lets its sockets and timers in first and rests in proportion to
 * the slice (`HandoffScheduler.pause`). There a yield to other fibers is a microtask, up
 * to eight in a row, and the three replicas' snapshots of one digest slot, encoded at once,
 * held every message of a process up to 213 ms (the yardstick at 256 clients: max
 * 184–213 ms, against 62–77 ms when each slice waits for the event loop).
 */
export const Pause = Context.Reference<(sliceMs: number) => Effect.Effect<void>>("@synod/core/JsonText/Pause", {
  defaultValue: () => () => Effect.yieldNow
})

/**
 * Runs a generator to its result, pausing (`Pause`) after each slice. A slice is timed
 * by the wall clock, which only a process on real time's pause reads.
 */
export const runGradually = <A>(make: () => Generator<void, A, void>): Effect.Effect<A> =>
  Effect.flatMap(Pause, (pause) =>
    Effect.suspend(() => {
      const gen = make()
      const step: Effect.Effect<A> = Effect.suspend(() => {
        const started = performance.now()
        const r = gen.next()
        return r.done ? Effect.succeed(r.value) : Effect.andThen(pause(performance.now() - started), step)
      })
      return step
    })
  )

/** Texts `textOf` produced, in chunks, by value, until `forget`. */
const texts = new WeakMap<object, ReadonlyArray<string>>()

/**
 * The JSON text of `value` in chunks (`stringifyChunks`), stringified gradually the first
 * time and kept (weakly, with the value) for the next caller until `forget`: the snapshot
 * a replica hashed is the one it then saves, and its tens of megabytes are stringified
 * once instead of twice.
 */
export const textOf = (value: Schema.Json & object): Effect.Effect<ReadonlyArray<string>> =>
  Effect.suspend(() => {
    const known = texts.get(value)
    if (known !== undefined) return Effect.succeed(known)
    return Effect.tap(
      runGradually(() => stringifyChunks(value)),
      (chunks) => Effect.sync(() => texts.set(value, chunks))
    )
  })

/** Drops the text `textOf` kept for `value` (its last user is done with it). */
export const forget = (value: object): void => {
  texts.delete(value)
}

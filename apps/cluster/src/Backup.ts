/**
 * The backup file of `synod snapshot save` and `restore`: one JSON document holding the
 * store at one revision, with a SHA-256 of its contents.
 *
 * ```json
 * { "format": "synod-kv-backup", "formatVersion": 1, "revision": 42, "keys": 2,
 *   "sha256": "…", "entries": [["a", "1", 17], ["b", "2", 42]] }
 * ```
 *
 * `sha256` is the hex SHA-256 of `JSON.stringify({ revision, entries })` (UTF-8). A file is
 * checked whole before anything is sent: its shape, the checksum, keys in strictly
 * increasing order, every version between 1 and the revision, `keys` equal to the number of
 * entries; a damaged file is refused with an error saying which of these failed.
 *
 * @since 0.2.0
 */
import { createHash } from "node:crypto"
import { JsonText } from "@synod/core"
import { Kv } from "@synod/kv"
import { Effect, Result, Schema, SchemaIssue, Stream } from "effect"

export const format = "synod-kv-backup"
export const formatVersion = 1

export const Entry = Schema.Tuple([Kv.Key, Kv.Value, Kv.Version])
export type Entry = typeof Entry.Type

export const Backup = Schema.Struct({
  format: Schema.Literal(format),
  formatVersion: Schema.Literal(formatVersion),
  /** The store's revision: every write up to it is in, none after. */
  revision: Kv.Version,
  keys: Schema.Int,
  /** Hex SHA-256 of `JSON.stringify({ revision, entries })`. */
  sha256: Schema.String,
  /** `[key, value, version]`, in key order. */
  entries: Schema.Array(Entry)
})
export type Backup = typeof Backup.Type

export const checksum = (revision: number, entries: ReadonlyArray<Entry>): string =>
  createHash("sha256").update(JSON.stringify({ revision, entries }), "utf8").digest("hex")

/** The backup of a store's state (its entries at its revision; not its history). */
export const fromState = (state: Kv.State): Backup => {
  const entries = Array.from(state.entries.entries(), ([key, e]): Entry => [key, e.value, e.version])
  return {
    format,
    formatVersion,
    revision: state.revision,
    keys: entries.length,
    sha256: checksum(state.revision, entries),
    entries
  }
}

/** Characters of entries encoded per turn when a state's backup is streamed: the loop gets a turn between them. */
const charsPerTurn = 64 * 1024

/**
 * The next entries from `iterator`, each as `JSON.stringify` writes it in an array, joined:
 * about `charsPerTurn` characters of them (at least one entry); undefined once none are left.
 */
const encodeSome = (
  iterator: Iterator<[string, { readonly value: string; readonly version: number }]>,
  first: boolean
): string | undefined => {
  let text = ""
  for (let i = 0; text.length < charsPerTurn; i++) {
    const next = iterator.next()
    if (next.done === true) break
    const [key, e] = next.value
    text += `${first && i === 0 ? "" : ","}${JSON.stringify([key, e.value, e.version])}`
  }
  return text === "" ? undefined : text
}

/**
 * The backup of a state as a stream of bytes: the same document as `fromState`, with its
 * entries encoded a turn at a time as the reader takes them, never the whole file in
 * memory. Its SHA-256 is computed first, in the same turns; the state is persistent, so
 * both passes read the same entries while the store goes on.
 */
export const stream = Effect.fnUntraced(function* (state: Kv.State) {
  const pause = yield* JsonText.Pause
  const hash = createHash("sha256").update(`{"revision":${state.revision},"entries":[`, "utf8")
  const entries = state.entries.entries()
  for (let first = true; ; first = false) {
    const started = performance.now()
    const text = encodeSome(entries, first)
    if (text === undefined) break
    hash.update(text, "utf8")
    // background work: a slice, then a rest (`HandoffScheduler.pause` in a server)
    yield* pause(performance.now() - started)
  }
  const sha256 = hash.update("]}", "utf8").digest("hex")
  const header = JSON.stringify({
    format,
    formatVersion,
    revision: state.revision,
    keys: state.entries.size,
    sha256
  }).slice(0, -1)
  function* chunks(): Generator<Uint8Array> {
    yield Buffer.from(`${header},"entries":[`, "utf8")
    const entries = state.entries.entries()
    for (let first = true; ; first = false) {
      const text = encodeSome(entries, first)
      if (text === undefined) break
      yield Buffer.from(text, "utf8")
    }
    yield Buffer.from("]}\n", "utf8")
  }
  return { revision: state.revision, keys: state.entries.size, sha256, body: Stream.fromIteratorSucceed(chunks(), 1) }
})

export class DamagedBackup extends Schema.TaggedError<DamagedBackup>()("DamagedBackup", {
  message: Schema.String
}) {}

const formatter = SchemaIssue.makeFormatterDefault()
const decode = Schema.decodeUnknownResult(Backup, { errors: "first" })

/** Parses and checks a backup file's text; `DamagedBackup` says what is wrong. */
export const parse = (text: string): Result.Result<Backup, DamagedBackup> => {
  const damaged = (message: string) => Result.fail(new DamagedBackup({ message }))
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (e) {
    return damaged(`not JSON (${e instanceof Error ? e.message : String(e)}): the file is truncated or not a backup`)
  }
  if (typeof raw !== "object" || raw === null || (raw as { format?: unknown }).format !== format) {
    return damaged(`not a synod backup: its "format" is not "${format}"`)
  }
  const decoded = decode(raw)
  if (Result.isFailure(decoded)) return damaged(`malformed: ${formatter(decoded.failure.issue)}`)
  const b = decoded.success
  const sum = checksum(b.revision, b.entries)
  if (sum !== b.sha256) {
    return damaged(
      `checksum mismatch: the file says sha256 ${b.sha256}, its contents hash to ${sum}: it was changed or damaged`
    )
  }
  if (b.keys !== b.entries.length) return damaged(`it says ${b.keys} keys but holds ${b.entries.length} entries`)
  if (b.revision > Kv.maxRestoreRevision) {
    return damaged(`its revision ${b.revision} is above ${Kv.maxRestoreRevision}, the most a restore may set`)
  }
  const versions = new Set<number>()
  for (let i = 0; i < b.entries.length; i++) {
    const [key, , version] = b.entries[i]!
    if (i > 0 && !(b.entries[i - 1]![0] < key)) {
      return damaged(
        `entry ${i} (${JSON.stringify(key)}) is not after the one before it: keys must be unique and in order`
      )
    }
    if (version < 1 || version > b.revision) {
      return damaged(
        `entry ${i} (${JSON.stringify(key)}) has version ${version}, outside 1..${b.revision} (the revision)`
      )
    }
    if (versions.has(version)) {
      return damaged(`entry ${i} (${JSON.stringify(key)}) has version ${version}, as an entry before it has`)
    }
    versions.add(version)
  }
  return Result.succeed(b)
}

/** Most bytes of keys and values in one restore chunk: well within a message and a request body. */
export const chunkBytes = 128 * 1024

/** The entries in chunks of at most `Kv.maxRestoreEntries` entries and about `chunkBytes` bytes (at least one entry each). */
export const chunks = (entries: ReadonlyArray<Entry>, maxBytes = chunkBytes): Array<Array<Entry>> => {
  const out: Array<Array<Entry>> = [[]]
  let bytes = 0
  for (const e of entries) {
    const size = Buffer.byteLength(JSON.stringify(e), "utf8")
    const current = out.at(-1)!
    if (current.length > 0 && (current.length === Kv.maxRestoreEntries || bytes + size > maxBytes)) {
      out.push([e])
      bytes = size
    } else {
      current.push(e)
      bytes += size
    }
  }
  return out
}

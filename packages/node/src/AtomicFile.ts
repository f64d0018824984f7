/**
 * Small files replaced atomically and durably: the leader's round and the replica's
 * snapshot. Also the directory helpers the write-ahead log shares.
 *
 * `write` puts one frame (see `Frame`) in `<file>.tmp`, fsyncs it, renames it over `file`
 * and fsyncs the directory. A crash before the rename leaves the old file (and a stray
 * temp file, which `read` ignores and `removeStray` deletes); a crash after it leaves
 * the new one. The rename is atomic, so there is never a mix; the directory fsync is what
 * makes the rename itself survive a power cut, so `write` completes only after it.
 *
 * Directory fsync is done by opening the directory read-only and fsyncing that
 * descriptor, which Linux and macOS support.
 *
 * @since 0.1.0
 */
import { Effect, FileSystem, Option, Path, Schema } from "effect"
import type { PlatformError } from "effect/PlatformError"
import * as Frame from "./Frame.ts"

/** A file that exists but does not hold exactly one valid frame. */
export class CorruptFile extends Schema.TaggedError<CorruptFile>()("CorruptFile", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `corrupt file ${this.file}: ${this.reason}`
  }
}

/** Where `write` stages the new contents of `file`. */
export const tempOf = (file: string): string => `${file}.tmp`

/** Makes the entries of `dir` (creations, renames, removals) durable. */
export const syncDirectory = Effect.fnUntraced(function* (dir: string) {
  const fs = yield* FileSystem.FileSystem
  yield* Effect.scoped(Effect.flatMap(fs.open(dir, { flag: "r" }), (handle) => handle.sync))
})

/**
 * Creates `dir` (and missing parents) if needed and makes its entry durable, so files later
 * synced inside it cannot vanish with it after a power cut.
 */
export const makeDirectory = Effect.fnUntraced(function* (dir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  // The directories the recursive creation will add, deepest first: each one's entry lives
  // in its parent, which must be fsynced.
  const created: Array<string> = []
  for (let current = path.resolve(dir); !(yield* fs.exists(current)); current = path.dirname(current)) {
    created.push(current)
    if (path.dirname(current) === current) break
  }
  if (created.length === 0) return
  // one level at a time, not `recursive`: Node's recursive creation never returns where the
  // kernel answers ENOENT for a parent that exists (under /proc), and this fails instead
  for (const made of created.toReversed()) {
    yield* fs.makeDirectory(made).pipe(
      Effect.catchIf(
        (e) => e._tag === "PlatformError" && e.reason._tag === "AlreadyExists",
        () => Effect.void
      )
    )
  }
  for (const made of created) yield* syncDirectory(path.dirname(made))
})

/** Deletes a leftover temp file of `file`: it was never renamed, so it was never acknowledged. */
export const removeStray = Effect.fnUntraced(function* (file: string) {
  const fs = yield* FileSystem.FileSystem
  yield* fs.remove(tempOf(file), { force: true })
})

/** Replaces `file` with one frame holding `payload`; completes when the replacement is durable. */
export const write = (file: string, payload: Uint8Array) => writeParts(file, [Frame.encode(payload)])

/** The payload of `file`, `None` when it does not exist, `CorruptFile` when it is not one valid frame. */
export const read = (
  file: string
): Effect.Effect<Option.Option<Uint8Array>, CorruptFile | PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    if (!(yield* fs.exists(file))) return Option.none()
    const result = Frame.single(yield* fs.readFile(file))
    if ("reason" in result) return yield* new CorruptFile({ file, reason: result.reason })
    return Option.some(result.payload)
  })

/**
 * Bytes written between two fsyncs of `writeParts`: the disk then never holds much of a
 * snapshot unsynced, so the write-ahead log's fsync, which may have to wait for every
 * dirty page of the file system to reach the disk first, never waits for a whole one.
 */
export const syncEveryBytes = 4 * 1024 * 1024

/**
 * `write` of the frame whose parts are `parts` (`Frame.encodeTextGradually`), synced every
 * `syncEveryBytes` as it goes; completes when the replacement is durable.
 */
export const writeParts = Effect.fnUntraced(function* (file: string, parts: ReadonlyArray<Uint8Array>) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const temp = tempOf(file)
  yield* Effect.scoped(
    Effect.gen(function* () {
      const handle = yield* fs.open(temp, { flag: "w" })
      let unsynced = 0
      for (const part of parts) {
        yield* handle.writeAll(part)
        unsynced += part.length
        if (unsynced >= syncEveryBytes) {
          yield* handle.sync
          unsynced = 0
        }
      }
      yield* handle.sync
    })
  )
  yield* fs.rename(temp, file)
  yield* syncDirectory(path.dirname(file))
})

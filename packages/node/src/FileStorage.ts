/**
 * The `Storage` service on a data directory: what each role makes durable, in files.
 *
 * Layout (one directory per role instance, so roles never share a file):
 *
 * - `<dataDir>/acceptor-<id>/wal`: the acceptor's write-ahead log (`Wal`).
 * - `<dataDir>/leader-<id>/round`: the highest round the leader used, one frame.
 * - `<dataDir>/replica-<id>/snapshot`: the replica's `ReplicaSnapshot`, one frame.
 *
 * Single-value files are replaced with `AtomicFile.write` (temp file, fsync, rename,
 * directory fsync), so `saveRound` and `save` complete only when durable, and a crash
 * leaves the old value or the new one. Every file is checksummed: a file that exists but is
 * damaged fails with a `StorageError` naming it, never with an empty start.
 *
 * Stores are cached per id for the life of the layer, so two roles (or a restarted role)
 * never open the same files twice. An acceptor whose log was poisoned by an I/O failure is
 * reopened from disk on the next `acceptor(id)`.
 *
 * This process must be the only one using `dataDir`: `Host.run` locks it (`DataDirLock`)
 * before it builds this storage; nothing here does.
 *
 * @since 0.1.0
 */
import { Address, JsonText, Storage } from "@synod/core"
import { Effect, Exit, type FileSystem, Layer, Option, Path, Result, Schema, Scope, Semaphore } from "effect"
import type { PlatformError } from "effect/PlatformError"
import * as NodePath from "@effect/platform-node/NodePath"
import * as AtomicFile from "./AtomicFile.ts"
import * as DurableFileSystem from "./DurableFileSystem.ts"
import * as Frame from "./Frame.ts"
import * as Wal from "./Wal.ts"

export interface Options {
  readonly dataDir: string
  /** Compact an acceptor's log once it is larger than this many bytes (default 64 MiB). */
  readonly compactBytes?: number
  /** At most this many acceptor appends share one fsync (default 1024). */
  readonly maxBatch?: number
}

const RoundJson = Schema.fromJsonString(
  Schema.toCodecJson(Schema.Struct({ round: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)) }))
)
const SnapshotJson = Schema.fromJsonString(Schema.toCodecJson(Storage.ReplicaSnapshot))
const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder("utf-8", { fatal: true })
const isId = Schema.is(Address.Id)

const ioError =
  (what: string, file: string) =>
  (cause: PlatformError): Storage.StorageError =>
    new Storage.StorageError({ reason: `${what} ${file}: ${cause.message}`, cause })

const corruptError = (error: AtomicFile.CorruptFile | Wal.CorruptLog): Storage.StorageError =>
  new Storage.StorageError({ reason: error.message, cause: error })

/** `value` as UTF-8 JSON through `schema`, or a `StorageError` saying what of `file` failed to encode. */
const encodeValue = <A>(
  schema: Schema.Codec<A, string>,
  value: A,
  file: string
): Effect.Effect<Uint8Array, Storage.StorageError> =>
  Effect.suspend(() => {
    const json = Schema.encodeResult(schema)(value)
    return Result.isFailure(json)
      ? Effect.fail(new Storage.StorageError({ reason: `cannot encode ${file}: ${json.failure.message}` }))
      : Effect.succeed(utf8Encoder.encode(json.success))
  })

/** Reads the single-frame file `file` and decodes it with `schema`; `None` when it does not exist. */
const readValue = <A>(
  schema: Schema.Codec<A, string>,
  file: string
): Effect.Effect<Option.Option<A>, Storage.StorageError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const payload = yield* AtomicFile.read(file).pipe(
      Effect.catchTag("CorruptFile", (e) => Effect.fail(corruptError(e))),
      Effect.catchTag("PlatformError", (e) => Effect.fail(ioError("cannot read", file)(e)))
    )
    if (Option.isNone(payload)) return Option.none()
    let text: string
    try {
      text = utf8Decoder.decode(payload.value)
    } catch {
      return yield* corruptError(new AtomicFile.CorruptFile({ file, reason: "contents are not valid UTF-8" }))
    }
    const decoded = Schema.decodeUnknownResult(schema)(text)
    if (Result.isFailure(decoded)) {
      return yield* corruptError(
        new AtomicFile.CorruptFile({ file, reason: `contents do not decode: ${decoded.failure.message}` })
      )
    }
    return Option.some(decoded.success)
  })

/** Builds the storage on `options.dataDir`; stores close with the scope. */
export const make = Effect.fn("FileStorage.make")(function* (options: Options) {
  const path = yield* Path.Path
  const scope = yield* Effect.scope
  const context = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
  const dataDir = path.resolve(options.dataDir)
  yield* AtomicFile.makeDirectory(dataDir).pipe(Effect.mapError(ioError("cannot create", dataDir)))

  // One lock for opening stores: two concurrent `acceptor("a1")` calls must not open the log twice.
  const opening = yield* Semaphore.make(1)
  const acceptors = new Map<string, { readonly wal: Wal.Wal; readonly scope: Scope.Closeable }>()
  const leaders = new Map<string, Storage.LeaderStore>()
  const replicas = new Map<string, Storage.ReplicaStore>()

  /** The directory of role `id`, created durably; ids are checked because they become file names. */
  const roleDir = Effect.fnUntraced(function* (role: "acceptor" | "leader" | "replica", id: string) {
    if (!isId(id)) {
      return yield* new Storage.StorageError({ reason: `invalid ${role} id ${JSON.stringify(id)} for a file name` })
    }
    const dir = path.join(dataDir, `${role}-${id}`)
    yield* AtomicFile.makeDirectory(dir).pipe(Effect.mapError(ioError("cannot create", dir)))
    return dir
  })

  const openAcceptor = Effect.fnUntraced(function* (id: string) {
    const cached = acceptors.get(id)
    if (cached !== undefined) {
      if ((yield* cached.wal.failure) === undefined) return cached.wal
      // Poisoned by an I/O failure: only a fresh recovery from disk is trustworthy.
      acceptors.delete(id)
      yield* Scope.close(cached.scope, Exit.void)
    }
    const dir = yield* roleDir("acceptor", id)
    const walScope = yield* Scope.fork(scope)
    const walOptions: Wal.Options = {
      ...(options.compactBytes !== undefined ? { compactBytes: options.compactBytes } : {}),
      ...(options.maxBatch !== undefined ? { maxBatch: options.maxBatch } : {})
    }
    const wal = yield* Wal.open(path.join(dir, "wal"), walOptions).pipe(
      Scope.provide(walScope),
      Effect.catchTag("CorruptLog", (e) => Effect.fail(corruptError(e))),
      Effect.onError(() => Scope.close(walScope, Exit.void))
    )
    acceptors.set(id, { wal, scope: walScope })
    return wal
  })

  const openLeader = Effect.fnUntraced(function* (id: string) {
    const cached = leaders.get(id)
    if (cached !== undefined) return cached
    const file = path.join(yield* roleDir("leader", id), "round")
    yield* AtomicFile.removeStray(file).pipe(Effect.mapError(ioError("cannot remove the temp file of", file)))
    let current = Option.match(yield* readValue(RoundJson, file), { onNone: () => 0, onSome: (v) => v.round })
    const writing = yield* Semaphore.make(1)
    const store: Storage.LeaderStore = {
      loadRound: Effect.sync(() => current),
      saveRound: (round) =>
        writing.withPermits(1)(
          Effect.gen(function* () {
            // Rounds only grow: a lower one is already covered by the durable `current`.
            if (round <= current) return
            const payload = yield* encodeValue(RoundJson, { round }, file)
            yield* AtomicFile.write(file, payload).pipe(Effect.mapError(ioError("cannot write", file)))
            current = round
          }).pipe(Effect.provide(context))
        )
    }
    leaders.set(id, store)
    return store
  })

  const openReplica = Effect.fnUntraced(function* (id: string) {
    const cached = replicas.get(id)
    if (cached !== undefined) return cached
    const file = path.join(yield* roleDir("replica", id), "snapshot")
    yield* AtomicFile.removeStray(file).pipe(Effect.mapError(ioError("cannot remove the temp file of", file)))
    let current = yield* readValue(SnapshotJson, file)
    const writing = yield* Semaphore.make(1)
    const store: Storage.ReplicaStore = {
      load: Effect.sync(() => current),
      save: (snapshot) =>
        writing.withPermits(1)(
          Effect.gen(function* () {
            // a snapshot is plain JSON (the state as its schema encoded it, the client table):
            // JSON.stringify writes what the schema would, without walking the whole state again
            // (50–70 ms for 100,000 keys, so in slices, letting the roles run in between);
            // loading still decodes it through the schema
            // the text its digest was computed of, when a digest came first (`textOf`)
            const text = yield* JsonText.textOf(snapshot as unknown as Schema.Json & object)
            // encoded and checksummed a slice per turn, written and synced a few MiB at a time
            const parts = yield* JsonText.runGradually(() => Frame.encodeTextGradually(text))
            JsonText.forget(snapshot)
            yield* AtomicFile.writeParts(file, parts).pipe(Effect.mapError(ioError("cannot write", file)))
            current = Option.some(snapshot)
          }).pipe(Effect.provide(context))
        )
    }
    replicas.set(id, store)
    return store
  })

  return Storage.Storage.of({
    acceptor: (id) => opening.withPermits(1)(openAcceptor(id).pipe(Effect.provide(context))),
    leader: (id) => opening.withPermits(1)(openLeader(id).pipe(Effect.provide(context))),
    replica: (id) => opening.withPermits(1)(openReplica(id).pipe(Effect.provide(context)))
  })
})

/** `Storage` on files under `options.dataDir`. */
export const layer = (
  options: Options
): Layer.Layer<Storage.Storage, Storage.StorageError, FileSystem.FileSystem | Path.Path> =>
  Layer.effect(Storage.Storage, make(options))

/** `layer` wired to Node's file system, appends written and synced in place (`DurableFileSystem`). */
export const layerNode = (options: Options): Layer.Layer<Storage.Storage, Storage.StorageError> =>
  layer(options).pipe(Layer.provide([DurableFileSystem.layer, NodePath.layer]))

/**
 * The acceptor's write-ahead log: durable `AcceptorRecord`s, group commit, recovery after a
 * crash, and compaction into a checkpoint.
 *
 * Format: frames (see `Frame`), each payload the JSON of one `AcceptorRecord` encoded with
 * `Schema.toCodecJson`. The acceptor's state is the fold of the records in order
 * (`Storage.applyRecord`, shared with core's in-memory store): the highest promise, the
 * highest GC watermark, and per slot from the watermark on the pvalue with the highest
 * ballot. Compaction therefore drops every slot the acceptor garbage-collected, and keeps
 * the watermark that says so.
 *
 * Group commit: `append` frames its record and queues it; one writer fiber takes everything
 * queued (up to `maxBatch`), writes it with one `writeAll`, fsyncs once, applies the records
 * to the in-memory state and only then completes each caller. So an `append` that
 * succeeded is covered by an fsync, and `load` never shows an undurable record.
 *
 * Recovery (`open`): the file is scanned with `Frame.scan`. A torn tail is cut off and the
 * cut is fsynced before the log is used; damage followed by a valid frame fails with
 * `CorruptLog`, as does a checksum-valid frame that does not decode (that is a bug or a
 * foreign file, not a torn write). The log never starts empty because of damage it could
 * not explain.
 *
 * Compaction: after a batch, when the log is larger than `compactBytes` and at least twice
 * its last checkpoint, the writer writes the whole state as one record to `<wal>.tmp`,
 * fsyncs it, renames it over the log and fsyncs the directory, then keeps appending to the
 * new file. A crash before the rename leaves the old log (the stray temp file is deleted on
 * open); after it, the new one; both hold the full state. Appends that arrive meanwhile
 * wait in the queue, and none is written to the new file before the directory fsync: else
 * a power cut could bring back the old log without them.
 *
 * A failed write or fsync poisons the log: every later append fails. After a failed fsync
 * the kernel may already have dropped the dirty pages, so retrying could "succeed" without
 * the data ever reaching the disk; only reopening (which re-reads the disk) is trustworthy.
 *
 * @since 0.1.0
 */
import { Ballot, Storage } from "@synod/core"
import { Deferred, Effect, Exit, FileSystem, Metric, Path, Queue, Result, Schema, Scope } from "effect"
import type { PlatformError } from "effect/PlatformError"
import * as AtomicFile from "./AtomicFile.ts"
import * as Frame from "./Frame.ts"

/** Time of one group-commit write + fsync, in milliseconds (wall clock: it measures the disk). */
const fsyncMs = Metric.histogram("synod_wal_fsync_milliseconds", {
  description: "Write + fsync of one acceptor log batch",
  boundaries: [0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 1000]
})

/** The log is damaged in a way a crash cannot explain: the acceptor must not start on it. */
export class CorruptLog extends Schema.TaggedError<CorruptLog>()("CorruptLog", {
  file: Schema.String,
  /** Offset of the first damaged frame. */
  offset: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `corrupt log ${this.file} at offset ${this.offset}: ${this.reason}`
  }
}

export interface Options {
  /** Compact once the log is larger than this many bytes (default 64 MiB). */
  readonly compactBytes?: number
  /** At most this many appends share one write and fsync (default 1024). */
  readonly maxBatch?: number
}

export interface Stats {
  /** Records made durable since the log was opened. */
  readonly appends: number
  /** Fsyncs of the log file by the writer: one per batch. */
  readonly syncs: number
  readonly compactions: number
  /** The log's current length. */
  readonly bytes: number
}

/** What `open` found on disk. */
export interface Recovery {
  /** Records replayed. */
  readonly records: number
  /** Length of the valid prefix, which is the log's length after recovery. */
  readonly validBytes: number
  /** Bytes of torn tail cut off (0 when the log ended cleanly). */
  readonly truncatedBytes: number
  /** Why the tail was judged torn. */
  readonly tornReason: string | undefined
}

export interface Wal extends Storage.AcceptorStore {
  readonly file: string
  readonly recovery: Recovery
  readonly stats: Effect.Effect<Stats>
  /** Set once a write or fsync failed or the log was closed; appends then fail with it. */
  readonly failure: Effect.Effect<Storage.StorageError | undefined>
}

// -----------------------------------------------------------------------------------------
// State

/** The acceptor state `records` describe, in order. */
export const fold = (records: Iterable<Storage.AcceptorRecord>): Storage.AcceptorState => {
  const state: Storage.MutableAcceptorState = { promised: Ballot.bottom, watermark: 1, accepted: new Map() }
  for (const record of records) Storage.applyRecord(state, record)
  return state
}

/** One record whose fold is `state`: what compaction writes. */
export const checkpoint = (state: Storage.AcceptorState): Storage.AcceptorRecord => ({
  promised: state.promised,
  accepted: [...state.accepted.values()].sort((a, b) => a.slot - b.slot),
  ...(state.watermark > 1 ? { watermark: state.watermark } : {})
})

// -----------------------------------------------------------------------------------------
// Codec

const RecordJson = Schema.fromJsonString(Schema.toCodecJson(Storage.AcceptorRecord))
const encodeJson = Schema.encodeResult(RecordJson)
const decodeJson = Schema.decodeUnknownResult(RecordJson)
const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder("utf-8", { fatal: true })

/** Encodes through the schema: the reference `encodeFrame`'s JSON must agree with (a property test holds them equal). */
export const encodeWithSchema = (record: Storage.AcceptorRecord) => encodeJson(record)

/**
 * `record` as one frame, ready to be appended. Every field of a record is JSON-native, so
 * its schema encoding is exactly its JSON, and `JSON.stringify` writes it without walking
 * each command of each pvalue through the schemas (the records were validated when built).
 */
export const encodeFrame = (record: Storage.AcceptorRecord): Result.Result<Uint8Array, Storage.StorageError> => {
  const payload = utf8Encoder.encode(JSON.stringify(record))
  if (payload.length > Frame.MaxPayloadBytes) {
    return Result.fail(
      new Storage.StorageError({
        reason: `acceptor record of ${payload.length} bytes exceeds ${Frame.MaxPayloadBytes}`
      })
    )
  }
  return Result.succeed(Frame.encode(payload))
}

const decodePayload = (payload: Uint8Array): Result.Result<Storage.AcceptorRecord, string> => {
  let text: string
  try {
    text = utf8Decoder.decode(payload)
  } catch {
    return Result.fail("record is not valid UTF-8")
  }
  return Result.mapError(decodeJson(text), (e) => `record does not decode: ${e.message}`)
}

// -----------------------------------------------------------------------------------------
// The log

interface Pending {
  readonly record: Storage.AcceptorRecord
  readonly frame: Uint8Array
  readonly done: Deferred.Deferred<void, Storage.StorageError>
}

const concat = (batch: ReadonlyArray<Pending>): Uint8Array => {
  if (batch.length === 1) return batch[0]!.frame
  let length = 0
  for (const p of batch) length += p.frame.length
  const bytes = new Uint8Array(length)
  let at = 0
  for (const p of batch) {
    bytes.set(p.frame, at)
    at += p.frame.length
  }
  return bytes
}

/**
 * Opens (creating it if needed) the log at `file`, recovers it and starts its writer. The
 * log is closed with the scope: the writer finishes its current batch, queued appends fail.
 */
export const open = Effect.fn("Wal.open")(function* (file: string, options: Options = {}) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const scope = yield* Effect.scope
  const compactBytes = options.compactBytes ?? 64 * 1024 * 1024
  const maxBatch = options.maxBatch ?? 1024
  const dir = path.dirname(file)
  const ioError =
    (what: string) =>
    (cause: PlatformError): Storage.StorageError =>
      new Storage.StorageError({ reason: `${what} ${file}: ${cause.message}`, cause })

  yield* AtomicFile.makeDirectory(dir).pipe(Effect.mapError(ioError("cannot create the directory of")))
  // A temp file is the remains of a compaction that did not reach its rename: the log
  // itself is complete, and the temp file was never acknowledged.
  yield* AtomicFile.removeStray(file).pipe(Effect.mapError(ioError("cannot remove the stray checkpoint of")))
  const existed = yield* fs.exists(file).pipe(Effect.mapError(ioError("cannot stat")))

  // Each handle lives in its own scope, so compaction can swap it for the new file's. The
  // scopes are not children of `scope`: the handle must close only after the writer stopped
  // (a write to a closed, reused descriptor would land in another file), so the finalizer
  // below closes whichever is current.
  let handleScope = yield* Scope.make()
  yield* Effect.addFinalizer(() => Scope.close(handleScope, Exit.void))
  let handle = yield* fs
    .open(file, { flag: "a+" })
    .pipe(Scope.provide(handleScope), Effect.mapError(ioError("cannot open")))
  if (!existed) yield* AtomicFile.syncDirectory(dir).pipe(Effect.mapError(ioError("cannot sync the directory of")))

  const bytes = yield* fs.readFile(file).pipe(Effect.mapError(ioError("cannot read")))
  const scan = Frame.scan(bytes)
  if (scan.damage?._tag === "Corrupt") {
    return yield* new CorruptLog({ file, offset: scan.damage.offset, reason: scan.damage.reason })
  }
  const state: Storage.MutableAcceptorState = { promised: Ballot.bottom, watermark: 1, accepted: new Map() }
  for (const frame of scan.frames) {
    const record = decodePayload(frame.payload)
    if (Result.isFailure(record)) return yield* new CorruptLog({ file, offset: frame.offset, reason: record.failure })
    Storage.applyRecord(state, record.success)
  }
  if (scan.damage !== undefined) {
    // Cut only once the whole valid prefix decoded, and make the cut durable before any
    // append lands after it: else a crash could resurrect the torn bytes in the middle.
    yield* Effect.andThen(handle.truncate(scan.end), handle.sync).pipe(Effect.mapError(ioError("cannot truncate")))
  }
  const recovery: Recovery = {
    records: scan.frames.length,
    validBytes: scan.end,
    truncatedBytes: bytes.length - scan.end,
    tornReason: scan.damage?.reason
  }

  let size = scan.end
  let lastCheckpoint = 0
  let appends = 0
  let syncs = 0
  let compactions = 0
  let failure: Storage.StorageError | undefined
  const queue = yield* Queue.unbounded<Pending>()

  const poison = (reason: string, cause: unknown): Storage.StorageError =>
    (failure ??= new Storage.StorageError({ reason: `${reason} ${file}; the log must be reopened`, cause }))

  const compact = Effect.gen(function* () {
    const temp = AtomicFile.tempOf(file)
    const framed = encodeFrame(checkpoint(state))
    const tempScope = yield* Scope.make()
    const staged = yield* Effect.result(
      Effect.gen(function* () {
        const bytes = yield* Effect.fromResult(framed)
        // opened for appending (after removing a failed attempt's file): appends are what
        // the durable file system writes and syncs in place (`DurableFileSystem`)
        yield* fs.remove(temp, { force: true })
        const next = yield* fs.open(temp, { flag: "ax" }).pipe(Scope.provide(tempScope))
        yield* next.writeAll(bytes)
        yield* next.sync
        return { next, length: bytes.length }
      })
    )
    if (Result.isFailure(staged)) {
      // Nothing has changed yet: keep the old log, and wait for it to double before retrying.
      yield* Scope.close(tempScope, Exit.void)
      yield* fs.remove(temp, { force: true }).pipe(Effect.ignore)
      lastCheckpoint = size
      return yield* Effect.logWarning(`compaction of ${file} failed; continuing on the old log`, staged.failure)
    }
    const swapped = yield* Effect.result(Effect.andThen(fs.rename(temp, file), AtomicFile.syncDirectory(dir)))
    if (Result.isFailure(swapped)) {
      // Unknown whether the rename reached the disk: neither file may be appended to.
      yield* Scope.close(tempScope, Exit.void)
      poison("compaction failed to swap", swapped.failure)
      return
    }
    yield* Scope.close(handleScope, Exit.void)
    handle = staged.success.next
    handleScope = tempScope
    size = lastCheckpoint = staged.success.length
    compactions++
  })

  const commit = (batch: ReadonlyArray<Pending>) =>
    Effect.gen(function* () {
      if (failure === undefined) {
        const bytes = concat(batch)
        const started = performance.now()
        const written = yield* Effect.result(Effect.andThen(handle.writeAll(bytes), handle.sync))
        yield* Metric.update(fsyncMs, performance.now() - started)
        if (Result.isFailure(written)) {
          poison("write or fsync failed on", written.failure)
        } else {
          size += bytes.length
          syncs++
          appends += batch.length
          for (const p of batch) Storage.applyRecord(state, p.record)
          for (const p of batch) Deferred.doneUnsafe(p.done, Exit.void)
          if (size > compactBytes && size >= 2 * lastCheckpoint) yield* compact
          return
        }
      }
      const error = failure!
      for (const p of batch) Deferred.doneUnsafe(p.done, Exit.fail(error))
    })

  // Finalizers run in reverse: the writer is interrupted (between batches) first, then
  // whatever is still queued fails, then the file handle closes (registered above).
  yield* Effect.addFinalizer(() =>
    Effect.gen(function* () {
      failure ??= new Storage.StorageError({ reason: `the log ${file} is closed` })
      const error = failure
      for (const p of yield* Queue.clear(queue)) Deferred.doneUnsafe(p.done, Exit.fail(error))
      yield* Queue.shutdown(queue)
    })
  )
  yield* Queue.takeBetween(queue, 1, maxBatch).pipe(
    Effect.flatMap((batch) => Effect.uninterruptible(commit(batch))),
    Effect.forever,
    Effect.forkIn(scope)
  )

  const wal: Wal = {
    file,
    recovery,
    load: Effect.sync(() => ({
      promised: state.promised,
      watermark: state.watermark,
      accepted: new Map(state.accepted)
    })),
    append: (record) =>
      Effect.suspend(() => {
        if (failure !== undefined) return Effect.fail(failure)
        const frame = encodeFrame(record)
        if (Result.isFailure(frame)) return Effect.fail(frame.failure)
        const done = Deferred.makeUnsafe<void, Storage.StorageError>()
        if (!Queue.offerUnsafe(queue, { record, frame: frame.success, done })) {
          return Effect.fail(failure ?? new Storage.StorageError({ reason: `the log ${file} is closed` }))
        }
        return Deferred.await(done)
      }),
    stats: Effect.sync(() => ({ appends, syncs, compactions, bytes: size })),
    failure: Effect.sync(() => failure)
  }
  return wal
})

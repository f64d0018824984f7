/**
 * The acceptor's write-ahead log: durable `AcceptorRecord`s, group commit, recovery after a
 * crash, and compaction into a checkpoint.
 *
 * Format: frames (see `Frame`), each payload the JSON of one `AcceptorRecord` encoded with
 * `Schema.toCodecJson`, except that a pvalue another process's P2a brought may stand as
 * `{"raw":k}` for the payload it came in, kept in the record's `received` (`recordUtf8`).
 * The acceptor's state is the fold of the records in order
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
 * Appends are written at a cursor into space the log zeroed beforehand (`zeroBytes` at a
 * time, synced with the batch that passes the last zeroed space), not appended to the file:
 * an fsync that changes no size commits no journal (see `zeroBytes`). The file is
 * therefore longer than the log, by zeros.
 *
 * Recovery (`open`): the file is scanned with `Frame.scan`. Zeros after the last valid
 * frame are that space, kept for the appends. Any other torn tail is cut off and the
 * cut is fsynced before the log is used; damage followed by a valid frame fails with
 * `CorruptLog`, as does a checksum-valid frame that does not decode (that is a bug or a
 * foreign file, not a torn write). The log never starts empty because of damage it could
 * not explain.
 *
 * Compaction: after a batch, when the log is larger than `compactBytes` and at least twice
 * what a checkpoint of the state would take now (`checkpointBytes`), a fiber of its own writes the state as it is then as one record to
 * `<wal>.tmp`, a slice at a time, and fsyncs it, while the writer goes on appending to the
 * old log and keeps a copy of each batch it commits meanwhile. Then, with the writer held
 * off, those batches are appended to the temp file, which is fsynced, renamed over the log,
 * and the directory fsynced; the writer goes on with the new file. A crash before the
 * rename leaves the old log (the stray temp file is deleted on open); after it, the new
 * one; both hold every acknowledged record. Appends that arrive during the swap wait in
 * the queue, and none is written to the new file before the directory fsync: else a power
 * cut could bring back the old log without them. (The checkpoint was written in the
 * writer's turn before: tens of megabytes held every append, and the event loop, for
 * hundreds of milliseconds, and all acceptors compact at about the same time.)
 *
 * A failed write or fsync poisons the log: every later append fails. After a failed fsync
 * the kernel may already have dropped the dirty pages, so retrying could "succeed" without
 * the data ever reaching the disk; only reopening (which re-reads the disk) is trustworthy.
 *
 * @since 0.1.0
 */
import { Ballot, Codec, JsonText, Limits, Storage } from "@synod/core"
import { Deferred, Effect, Exit, FileSystem, Metric, Path, Queue, Result, Schema, Scope, Semaphore } from "effect"
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
  /** About what a checkpoint of the state would take now (`checkpointBytes`, kept as records come). */
  readonly checkpointBytes: number
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

/** About the bytes a pvalue takes in a checkpoint (`Limits.jsonLength`), counted once per pvalue. */
const pvalueBytes = new WeakMap<object, number>()
const bytesOf = (pv: Storage.AcceptorRecord["accepted"][number]): number => {
  let n = pvalueBytes.get(pv)
  if (n === undefined) {
    n = Limits.jsonLength(pv) + 1
    pvalueBytes.set(pv, n)
  }
  return n
}

/** About the bytes `checkpoint(state)` takes: its pvalues, and a little for the rest. */
export const checkpointBytes = (state: Storage.AcceptorState): number => {
  let n = 128
  for (const pv of state.accepted.values()) n += bytesOf(pv)
  return n
}

/**
 * `Storage.applyRecord`, answering how much `checkpointBytes(state)` changed, or
 * `undefined` when the watermark moved (slots were forgotten: count again).
 */
const applyCounting = (state: Storage.MutableAcceptorState, record: Storage.AcceptorRecord): number | undefined => {
  const watermark = state.watermark
  const before = record.accepted.map((pv) => state.accepted.get(pv.slot))
  Storage.applyRecord(state, record)
  if (state.watermark !== watermark) return undefined
  let delta = 0
  record.accepted.forEach((pv, i) => {
    // not taken (a lower ballot), or the same pvalue again
    const old = before[i]
    if (state.accepted.get(pv.slot) !== pv || old === pv) return
    delta += bytesOf(pv) - (old === undefined ? 0 : bytesOf(old))
  })
  return delta
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
const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder("utf-8", { fatal: true })

/** Encodes through the schema: the reference `encodeFrame`'s JSON must agree with (a property test holds them equal). */
export const encodeWithSchema = (record: Storage.AcceptorRecord) => encodeJson(record)

/**
 * `record` as one frame, ready to be appended. Every field of a record is JSON-native, so
 * its schema encoding is exactly its JSON, and `JSON.stringify` writes it without walking
 * each command of each pvalue through the schemas (the records were validated when built).
 */
export const encodeFrame = (
  record: Storage.AcceptorRecord,
  received = true
): Result.Result<Uint8Array, Storage.StorageError> => {
  const payload = recordUtf8(record, received)
  let length = 0
  for (const part of payload) length += part.length
  if (length > Frame.MaxPayloadBytes) {
    // whole received payloads may hold more than their P2as' values (other envelopes, spaces)
    if (received) return encodeFrame(record, false)
    return Result.fail(
      new Storage.StorageError({
        reason: `acceptor record of ${length} bytes exceeds ${Frame.MaxPayloadBytes}`
      })
    )
  }
  return Result.succeed(Frame.encodeParts(payload))
}

/** A value text at least this long is not encoded again: its bytes are `Codec.valueBytes`'. */
const sharedValueChars = 1024

/**
 * The UTF-8 of `JSON.stringify(record)` in the schema's field order, in parts: each
 * pvalue's value text is shared with the P2a and Decision that carry it (`Codec.valueJson`),
 * and a large value's bytes are the ones its commander encoded for them (`Codec.valueBytes`),
 * not encoded a third time: the leader's own acceptor logs the very batch its commander
 * just sent.
 *
 * A pvalue another process's leader sent (`Codec.receivedP2a`) is logged as the payload
 * it came in instead, `{"raw":k}` (`{"raw":k,"at":i}` in an array of envelopes) with the
 * payloads in `received`: a follower's acceptor stringified every batch it accepted again
 * for its log (with 4 KB values, a tenth of its work). `decodePayload` decodes the P2a in
 * the payload again, as it was decoded when it came.
 */
const recordUtf8 = (record: Storage.AcceptorRecord, useReceived: boolean): Array<Uint8Array> => {
  const parts: Array<Uint8Array> = []
  let text = `{"promised":${JSON.stringify(record.promised)},"accepted":[`
  let received: Map<Uint8Array | string, number> | undefined
  for (const [i, pv] of record.accepted.entries()) {
    const comma = i > 0 ? "," : ""
    const raw = useReceived ? Codec.receivedP2a(pv) : undefined
    if (raw !== undefined) {
      received ??= new Map()
      let k = received.get(raw.payload)
      if (k === undefined) received.set(raw.payload, (k = received.size))
      text += `${comma}{"raw":${k}${raw.index === undefined ? "" : `,"at":${raw.index}`}}`
      continue
    }
    const head = `${comma}{"ballot":${JSON.stringify(pv.ballot)},"slot":${pv.slot},"value":`
    const value = Codec.valueJson(pv.value)
    if (value.length < sharedValueChars) {
      text += `${head}${value}}`
      continue
    }
    parts.push(utf8Encoder.encode(text + head), Codec.valueBytes(pv.value))
    text = "}"
  }
  text += `]${record.watermark === undefined ? "" : `,"watermark":${record.watermark}`}`
  if (received !== undefined) {
    let before = `${text},"received":[`
    for (const payload of received.keys()) {
      parts.push(utf8Encoder.encode(before), typeof payload === "string" ? utf8Encoder.encode(payload) : payload)
      before = ","
    }
    text = "]"
  }
  parts.push(utf8Encoder.encode(`${text}}`))
  return parts
}

const decodeRecord = Schema.decodeUnknownResult(Schema.toCodecJson(Storage.AcceptorRecord))

/**
 * A record's JSON with each pvalue logged as its received payload (`{"raw":k}`, see
 * `recordUtf8`) replaced by the pvalue that payload's P2a carries, or why that fails.
 */
const withReceived = (json: unknown): unknown | string => {
  if (typeof json !== "object" || json === null || !("received" in json)) return json
  const { received, ...record } = json as { readonly received: unknown; readonly accepted?: unknown }
  if (!Array.isArray(received)) return "received is not an array"
  if (!Array.isArray(record.accepted)) return json
  const accepted: Array<unknown> = []
  for (const entry of record.accepted as ReadonlyArray<unknown>) {
    if (typeof entry !== "object" || entry === null || !("raw" in entry)) {
      accepted.push(entry)
      continue
    }
    const { raw, at } = entry as { readonly raw: unknown; readonly at?: unknown }
    if (typeof raw !== "number" || !Number.isSafeInteger(raw) || raw < 0 || raw >= received.length) {
      return `no received payload ${JSON.stringify(raw)}`
    }
    if (at !== undefined && typeof at !== "number") return `received index ${JSON.stringify(at)} is not a number`
    const pvalue = Codec.receivedP2aJson(received[raw], at)
    if (pvalue instanceof Codec.DecodeError) return `received payload ${raw}: ${pvalue.reason}`
    accepted.push(pvalue)
  }
  return { ...record, accepted }
}

const decodePayload = (payload: Uint8Array): Result.Result<Storage.AcceptorRecord, string> => {
  let text: string
  try {
    text = utf8Decoder.decode(payload)
  } catch {
    return Result.fail("record is not valid UTF-8")
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return Result.fail(`record is not JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
  const resolved = withReceived(json)
  if (typeof resolved === "string") return Result.fail(`record does not decode: ${resolved}`)
  return Result.mapError(decodeRecord(resolved), (e) => `record does not decode: ${e.message}`)
}

// -----------------------------------------------------------------------------------------
// The log

interface Pending {
  readonly record: Storage.AcceptorRecord
  readonly frame: Uint8Array
  readonly done: Deferred.Deferred<void, Storage.StorageError>
}

const concat = Codec.concatBytes

/**
 * The space the log zeroes ahead of its appends, at a time. An append that stays inside
 * space already written changes no size and no block map, so its `fdatasync` writes the
 * data and nothing else; one that grows the file also commits the file system's journal
 * for the new size (measured on this project's VM, ext4, three processes each appending
 * 200 bytes and syncing: p50 304-392 µs and p99 0.56-0.82 ms into zeroed space, against
 * 451-474 µs and 0.96-3.4 ms growing the file). PostgreSQL zero-fills its log segments for
 * the same reason. The zeros are fsynced with the batch that passes the zeroed space.
 */
export const zeroBytes = 1024 * 1024

/**
 * `bytes` followed by `zeroBytes` of zeros. A new array's zeros are pages the process has
 * not touched (written out, they are read from the kernel's zero page), so the padding
 * costs no resident memory: copying a shared array of zeros in cost a megabyte of it.
 */
const zeroPadded = (bytes: Uint8Array): Uint8Array => {
  const padded = new Uint8Array(bytes.length + zeroBytes)
  padded.set(bytes)
  return padded
}

/**
 * Opens (creating it if needed) the log at `file`, recovers it and starts its writer. The
 * log is closed with the scope: the writer finishes its current batch, queued appends fail.
 */
export const open = Effect.fn("Wal.open")(function* (file: string, options: Options = {}) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const scope = yield* Effect.scope
  // what a commit needs (a compaction it starts opens files): for one run in a caller's fiber
  const services = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
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
  // written at a cursor, not appended: appends go into space zeroed beforehand (`commit`)
  let handle = yield* fs
    .open(file, { flag: existed ? "r+" : "wx+" })
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
  // zeros after the frames (no damage, `Frame.scan`) are the space the log zeroed for its
  // appends: kept for the appends to come
  const torn = scan.damage !== undefined
  if (torn) {
    // Cut only once the whole valid prefix decoded, and make the cut durable before any
    // append lands after it: else a crash could resurrect the torn bytes in the middle.
    yield* Effect.andThen(handle.truncate(scan.end), handle.sync).pipe(Effect.mapError(ioError("cannot truncate")))
    // a torn write is expected after a crash, but an operator must be able to see it
    yield* Effect.logWarning("cut a torn tail off the log", {
      file,
      offset: scan.end,
      bytes: bytes.length - scan.end,
      reason: scan.damage.reason
    })
  }
  yield* handle.seek(BigInt(scan.end), "start").pipe(Effect.mapError(ioError("cannot seek")))
  const recovery: Recovery = {
    records: scan.frames.length,
    validBytes: scan.end,
    truncatedBytes: torn ? bytes.length - scan.end : 0,
    tornReason: scan.damage?.reason
  }

  let size = scan.end
  /** Where the zeroed space after the frames ends: the file's length. */
  let zeroedTo = torn ? scan.end : bytes.length
  /**
   * About the bytes a checkpoint would take now (`checkpointBytes`): the log compacts once
   * it is twice that. Acceptors forget a snapshot's worth of slots at once, so right after
   * they do a checkpoint is small and cheap; the size of the last checkpoint, the rule
   * before, made the next one wait until the log had doubled a checkpoint taken just
   * before such a forgetting, and then wrote out tens of megabytes again.
   */
  let live = checkpointBytes(state)
  /** After a failed compaction: the size the log must reach before the next attempt. */
  let retryAt = 0
  let appends = 0
  let syncs = 0
  let compactions = 0
  let failure: Storage.StorageError | undefined
  const queue = yield* Queue.unbounded<Pending>()

  const poison = (reason: string, cause: unknown): Storage.StorageError =>
    (failure ??= new Storage.StorageError({ reason: `${reason} ${file}; the log must be reopened`, cause }))

  // the writer's batches and a compaction's swap exclude each other
  const writing = Semaphore.makeUnsafe(1)
  /**
   * A compaction under way: its checkpoint is written by a fiber of its own while the
   * writer goes on appending to the old log; the batches committed meanwhile wait here
   * to follow the checkpoint into the new file.
   */
  let compacting: { readonly tail: Array<Uint8Array> } | undefined

  /**
   * Writes `record` (the state when the compaction began) to `<wal>.tmp` a slice at a
   * time and fsyncs it, then, with the writer held off, appends what was committed
   * meanwhile, fsyncs, renames it over the log and fsyncs the directory. A checkpoint of
   * tens of megabytes took the event loop and every append for hundreds of milliseconds
   * when it was written in the writer's turn, and all acceptors compact at about the same
   * time, so no majority answered.
   */
  const compact = (record: Storage.AcceptorRecord, tempScope: Scope.Closeable) => {
    let swapped = false
    const run = Effect.gen(function* () {
      const temp = AtomicFile.tempOf(file)
      const written = yield* Effect.result(
        Effect.gen(function* () {
          const text = yield* JsonText.runGradually(() => JsonText.stringifyChunks(record as unknown as Schema.Json))
          const parts = yield* JsonText.runGradually(() => Frame.encodeTextGradually(text))
          let length = 0
          for (const part of parts) length += part.length
          if (length - Frame.HeaderBytes > Frame.MaxPayloadBytes) {
            return yield* new Storage.StorageError({
              reason: `a checkpoint of ${length} bytes exceeds ${Frame.MaxPayloadBytes}`
            })
          }
          // opened to write at a cursor, as the log is (after removing a failed attempt's
          // file): small writes are what the durable file system writes and syncs in place
          // (`DurableFileSystem`)
          yield* fs.remove(temp, { force: true })
          const next = yield* fs.open(temp, { flag: "wx+" }).pipe(Scope.provide(tempScope))
          for (const part of parts) yield* next.writeAll(part)
          yield* next.sync
          return { next, length }
        })
      )
      yield* writing.withPermits(1)(
        Effect.gen(function* () {
          const tail = compacting?.tail ?? []
          compacting = undefined
          // closed or poisoned meanwhile: nothing more may be written
          if (failure !== undefined) return
          let staged = written
          if (Result.isSuccess(staged) && tail.length > 0) {
            const next = staged.success.next
            const more = concat(tail)
            const appended = yield* Effect.result(Effect.andThen(next.writeAll(more), next.sync))
            staged = Result.isSuccess(appended)
              ? Result.succeed({ next, length: staged.success.length + more.length })
              : Result.fail(appended.failure)
          }
          if (Result.isFailure(staged)) {
            // Nothing has changed yet: keep the old log, and wait for it to double before retrying.
            yield* fs.remove(temp, { force: true }).pipe(Effect.ignore)
            retryAt = 2 * size
            return yield* Effect.logWarning(`compaction of ${file} failed; continuing on the old log`, staged.failure)
          }
          const renamed = yield* Effect.result(Effect.andThen(fs.rename(temp, file), AtomicFile.syncDirectory(dir)))
          if (Result.isFailure(renamed)) {
            // Unknown whether the rename reached the disk: neither file may be appended to.
            poison("compaction failed to swap", renamed.failure)
            return
          }
          yield* Scope.close(handleScope, Exit.void)
          handle = staged.success.next
          handleScope = tempScope
          swapped = true
          size = staged.success.length
          zeroedTo = size
          retryAt = 0
          compactions++
        }).pipe(Effect.uninterruptible)
      )
    })
    // the new file's handle is the log's from the swap on; else it closes here, also when
    // the log closes mid-compaction (a stray temp file is removed on the next open)
    return run.pipe(
      Effect.ensuring(
        Effect.suspend(() => {
          if (swapped) return Effect.void
          compacting = undefined
          return Scope.close(tempScope, Exit.void)
        })
      )
    )
  }

  const commit = (batch: ReadonlyArray<Pending>) =>
    Effect.gen(function* () {
      if (failure === undefined) {
        const bytes = concat(batch.map((p) => p.frame))
        const end = size + bytes.length
        // past the zeroed space: the next `zeroBytes` zeroed in the same write, synced with
        // the batch, and the cursor back at the batch's end
        const zeroing = end > zeroedTo
        const started = performance.now()
        const written = yield* Effect.result(
          zeroing
            ? Effect.andThen(
                Effect.andThen(handle.writeAll(zeroPadded(bytes)), handle.seek(BigInt(end), "start")),
                handle.sync
              )
            : Effect.andThen(handle.writeAll(bytes), handle.sync)
        )
        yield* Metric.update(fsyncMs, performance.now() - started)
        if (Result.isFailure(written)) {
          poison("write or fsync failed on", written.failure)
        } else {
          size = end
          if (zeroing) zeroedTo = end + zeroBytes
          syncs++
          appends += batch.length
          let recount = false
          for (const p of batch) {
            const delta = applyCounting(state, p.record)
            if (delta === undefined) recount = true
            else live += delta
          }
          if (recount) live = checkpointBytes(state)
          for (const p of batch) Deferred.doneUnsafe(p.done, Exit.void)
          if (compacting !== undefined) compacting.tail.push(bytes)
          else if (size > compactBytes && size >= retryAt && size >= 2 * live) {
            compacting = { tail: [] }
            yield* Effect.forkIn(compact(checkpoint(state), yield* Scope.make()), scope)
          }
          return
        }
      }
      const error = failure!
      for (const p of batch) Deferred.doneUnsafe(p.done, Exit.fail(error))
    })

  /** The failure of an append after the log closed. */
  const closed = () => new Storage.StorageError({ reason: `the log ${file} is closed` })

  // Finalizers run in reverse: the writer is interrupted (between batches) first, then
  // whatever is still queued fails, a commit running in its caller's turn finishes, then
  // the file handle closes (registered above).
  yield* Effect.addFinalizer(() =>
    Effect.gen(function* () {
      failure ??= closed()
      const error = failure
      for (const p of yield* Queue.clear(queue)) Deferred.doneUnsafe(p.done, Exit.fail(error))
      yield* Queue.shutdown(queue)
      // an append that finds `failure` set commits nothing: the permit is the last commit's
      yield* writing.withPermits(1)(Effect.void)
    })
  )
  /** Whether the writer has taken a batch it has not committed yet. */
  let committing = false
  yield* Queue.takeBetween(queue, 1, maxBatch).pipe(
    Effect.flatMap((batch) => {
      committing = true
      return writing
        .withPermits(1)(Effect.uninterruptible(commit(batch)))
        .pipe(
          // closed while waiting for an append committed in its caller's turn: what it took
          // fails, as what is still queued does (a committed batch's callers already know)
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              const error = failure ?? closed()
              for (const p of batch) Deferred.doneUnsafe(p.done, Exit.fail(error))
            })
          )
        )
    }),
    Effect.ensuring(
      Effect.sync(() => {
        committing = false
      })
    ),
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
        const pending = { record, frame: frame.success, done }
        const queued = Effect.suspend(() => {
          if (!Queue.offerUnsafe(queue, pending)) {
            return Effect.fail(failure ?? closed())
          }
          return Deferred.await(done)
        })
        if (committing || compacting !== undefined || Queue.sizeUnsafe(queue) > 0) return queued
        // Nothing queued, the writer idle and no compaction waiting to swap files: commit
        // here, in the caller's turn. Handed to the writer, the write would wait for the
        // scheduler's next batch, behind every fiber woken with the caller (with one client,
        // the replica beside the acceptor performing the slot before, 0.1-0.2 ms ahead of the
        // fsync a write waits for). Appends queued meanwhile wait for this one's permit, so
        // they are committed after it, in order. (During a compaction appends go through the
        // writer, whose turn waits for the swap's permit: taken here whenever free, a loop of
        // appends would starve the swap.)
        return Effect.flatMap(
          writing.withPermitsIfAvailable(1)(Effect.uninterruptible(Effect.provideContext(commit([pending]), services))),
          (committed) => (committed._tag === "Some" ? Deferred.await(done) : queued)
        )
      }),
    stats: Effect.sync(() => ({ appends, syncs, compactions, bytes: size, checkpointBytes: live })),
    failure: Effect.sync(() => failure)
  }
  return wal
})

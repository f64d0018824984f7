import { NodePath } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Address, Ballot, Codec, Command, type Message, type Storage, Trusted } from "@synod/core"
import * as DurableFileSystem from "@synod/node/DurableFileSystem"
import * as Frame from "@synod/node/Frame"
import * as Wal from "@synod/node/Wal"
import { ballotArb, pvalueArb } from "@synod/testing/Arbitraries"
import * as fc from "fast-check"
import { Deferred, Effect, Exit, Fiber, FileSystem, Layer, Logger, Path, Result, Scope } from "effect"
import * as InstrumentedFs from "./fixtures/InstrumentedFs.ts"
import { promise, record } from "./fixtures/records.ts"

// the file system `synod serve` gives the log: appends written and synced in place
const NodeLayer = Layer.mergeAll(DurableFileSystem.layer, NodePath.layer)
const instrumented = (instrument: InstrumentedFs.Instrument) =>
  Layer.mergeAll(InstrumentedFs.layer(instrument), NodePath.layer)

/** A fresh log path in a temp directory removed with the test's scope. */
const tempLog = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "synod-wal-" })
  return path.join(dir, "acceptor-a1", "wal")
})

/** Opens the log at `file`, runs `f` on it, and closes it. */
/**
 * Record `seq` accepting in one of four slots, each time a higher ballot: the log grows
 * while a checkpoint stays four pvalues, so it compacts once past `compactBytes`.
 */
const reaccept = (seq: number) => record(seq, 1 + (seq % 4))

const withWal = <A, E, R>(file: string, f: (wal: Wal.Wal) => Effect.Effect<A, E, R>, options: Wal.Options = {}) =>
  Effect.scoped(Effect.flatMap(Wal.open(file, options), f))

const stateOf = (file: string) => withWal(file, (wal) => Effect.map(wal.load, (state) => ({ state, wal })))

const assertState = (actual: Storage.AcceptorState, expected: Storage.AcceptorState, message?: string) => {
  assert.deepStrictEqual(actual.promised, expected.promised, message)
  assert.strictEqual(actual.watermark, expected.watermark, message)
  assert.deepStrictEqual(
    [...actual.accepted.entries()].sort((a, b) => a[0] - b[0]),
    [...expected.accepted.entries()].sort((a, b) => a[0] - b[0]),
    message
  )
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** A log of `records`, appended one by one, and the offsets where its frames start and end. */
const writeLog = Effect.fnUntraced(function* (file: string, records: ReadonlyArray<Storage.AcceptorRecord>) {
  yield* withWal(file, (wal) => Effect.forEach(records, (r) => wal.append(r), { discard: true }))
  const file_ = yield* (yield* FileSystem.FileSystem).readFile(file)
  // the frames, without the zeroed space after them
  const scan = Frame.scan(file_)
  const bytes = file_.subarray(0, scan.end)
  const boundaries = [...scan.frames.map((f) => f.offset), scan.end]
  assert.strictEqual(boundaries.length, records.length + 1)
  return { bytes, boundaries }
})

/**
 * The length of the log at `file`: its frames, without the zeroed space after them, which
 * is never more than `Wal.zeroBytes`.
 */
const logLength = Effect.fnUntraced(function* (file: string) {
  const bytes = yield* (yield* FileSystem.FileSystem).readFile(file)
  const end = Frame.scan(bytes).end
  assert.isAtMost(bytes.length - end, Wal.zeroBytes, "the zeroed space after the log")
  return end
})

/** Writes `frame` after the last frame of the log at `file`, as if the log had appended it. */
const appendRaw = Effect.fnUntraced(function* (file: string, frame: Uint8Array) {
  const fs = yield* FileSystem.FileSystem
  const bytes = yield* fs.readFile(file)
  const end = Frame.scan(bytes).end
  const next = new Uint8Array(end + frame.length)
  next.set(bytes.subarray(0, end))
  next.set(frame, end)
  yield* fs.writeFile(file, next)
})

describe("Wal", () => {
  it.effect(
    "appends go into zeroed space: the file's size holds while they fit, and a reopen keeps the space and every record",
    () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const file = yield* tempLog
        const sizeOf = Effect.map(fs.stat(file), (s) => Number(s.size))
        const first = yield* withWal(file, (wal) =>
          Effect.gen(function* () {
            yield* wal.append(record(1))
            const zeroed = yield* sizeOf
            // the rest fit: no append changes the file's size (so its fsync commits no journal)
            for (let seq = 2; seq <= 50; seq++) {
              yield* wal.append(record(seq))
              assert.strictEqual(yield* sizeOf, zeroed, `append ${seq}`)
            }
            return { zeroed, bytes: (yield* wal.stats).bytes }
          })
        )
        assert.strictEqual(first.zeroed, Result.getOrThrow(Wal.encodeFrame(record(1))).length + Wal.zeroBytes)
        assert.strictEqual(yield* logLength(file), first.bytes)
        const { state, wal } = yield* stateOf(file)
        assertState(state, Wal.fold(range(1, 50).map((seq) => record(seq))))
        assert.strictEqual(wal.recovery.truncatedBytes, 0)
        assert.strictEqual(wal.recovery.validBytes, first.bytes)
        assert.strictEqual(yield* sizeOf, first.zeroed, "the zeroed space is kept")
        // a log longer than the space: zeroed again as it goes, every record kept
        const big = range(51, 51 + Math.ceil((2.5 * Wal.zeroBytes) / 2000)).map(
          (seq): Storage.AcceptorRecord => ({
            promised: Ballot.make(seq, "s1"),
            accepted: [
              new Command.PValue({
                ballot: Ballot.make(seq, "s1"),
                slot: seq,
                value: new Command.Batch({
                  commands: [
                    new Command.Command({
                      client: "c1",
                      seq,
                      acked: 0,
                      op: { put: `k${seq}`, value: "x".repeat(2000) }
                    })
                  ]
                })
              })
            ]
          })
        )
        yield* withWal(file, (w) => Effect.forEach(big, (r) => w.append(r), { discard: true }))
        const after = yield* stateOf(file)
        assertState(after.state, Wal.fold([...range(1, 50).map((seq) => record(seq)), ...big]))
        assert.strictEqual(after.wal.recovery.truncatedBytes, 0)
        assert.isAbove(yield* logLength(file), 2 * Wal.zeroBytes)
        // a torn write into the zeroed space is cut with the space after it, and the log goes on
        const bytes = yield* fs.readFile(file)
        const end = Frame.scan(bytes).end
        const torn = new Uint8Array(bytes)
        torn.set(Result.getOrThrow(Wal.encodeFrame(record(9_000))).subarray(0, 20), end)
        yield* fs.writeFile(file, torn)
        const cut = yield* stateOf(file)
        assert.strictEqual(cut.wal.recovery.validBytes, end)
        assert.strictEqual(cut.wal.recovery.truncatedBytes, bytes.length - end)
        assert.strictEqual(yield* sizeOf, end, "the cut is persisted")
        yield* withWal(file, (w) => w.append(record(9_001)))
        assert.isTrue((yield* stateOf(file)).state.accepted.has(9_001))
      }).pipe(Effect.provide(NodeLayer)),
    30_000
  )

  it.effect("appends survive a reopen, folded like the in-memory store", () =>
    Effect.gen(function* () {
      const file = yield* tempLog
      const records = [record(3), record(1, 1), promise(2), record(4, 2), record(2, 2), promise(9)]
      yield* withWal(file, (wal) => Effect.forEach(records, (r) => wal.append(r), { discard: true }))
      const { state, wal } = yield* stateOf(file)
      assertState(state, Wal.fold(records))
      assert.deepStrictEqual(state.promised, Ballot.make(9, "s2"))
      assert.deepStrictEqual(state.accepted.get(2), record(4, 2).accepted[0], "a lower ballot never replaces a higher")
      assert.deepStrictEqual(state.accepted.get(1), record(1, 1).accepted[0])
      assert.strictEqual(state.accepted.get(3)?.value._tag, "Batch", "pvalues come back as schema classes")
      assert.deepStrictEqual(wal.recovery, {
        records: records.length,
        validBytes: wal.recovery.validBytes,
        truncatedBytes: 0,
        tornReason: undefined
      })
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("an empty or missing log opens empty", () =>
    Effect.gen(function* () {
      const file = yield* tempLog
      const first = yield* stateOf(file)
      assert.strictEqual(first.state.accepted.size, 0)
      assert.isTrue(Ballot.isBottom(first.state.promised))
      assert.isTrue(yield* (yield* FileSystem.FileSystem).exists(file), "open creates the log")
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("an append completes only after the fsync that covers it", () =>
    Effect.gen(function* () {
      const instrument = new InstrumentedFs.Instrument()
      yield* Effect.gen(function* () {
        const file = yield* tempLog
        const syncing = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const wal = yield* Wal.open(file)
        instrument.hook = (call) =>
          call.op === "sync" && call.path === file
            ? Effect.andThen(Deferred.succeed(syncing, undefined), Deferred.await(release))
            : Effect.void
        const fiber = yield* Effect.forkChild(wal.append(record(1)), { startImmediately: true })
        yield* Deferred.await(syncing)
        // The bytes are written, the fsync is under way: the caller must still be waiting,
        // and `load` must not show the record yet.
        assert.isUndefined(fiber.pollUnsafe())
        assert.strictEqual((yield* wal.load).accepted.size, 0)
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(fiber)
        assert.strictEqual((yield* wal.load).accepted.size, 1)
      }).pipe(Effect.provide(instrumented(instrument)))
    })
  )

  it.effect(
    "an append that finds the writer idle is written in its caller's turn; appends meanwhile follow it in order",
    () =>
      Effect.gen(function* () {
        const instrument = new InstrumentedFs.Instrument()
        yield* Effect.gen(function* () {
          const file = yield* tempLog
          const writing = yield* Deferred.make<void>()
          const release = yield* Deferred.make<void>()
          const wal = yield* Wal.open(file)
          let writes = 0
          instrument.hook = (call) => {
            if (call.op !== "writeAll" || call.path !== file) return Effect.void
            // the first write waits to be released; later ones do not
            return writes++ === 0
              ? Effect.andThen(Deferred.succeed(writing, undefined), Deferred.await(release))
              : Effect.void
          }
          // the same slot each time: the log keeps the last, so the order of the writes shows
          const first = yield* Effect.forkChild(wal.append(record(1, 1)), { startImmediately: true })
          // the writer being idle, its caller writes it, before yielding: handed to the writer
          // fiber, nothing would be written yet
          assert.isTrue(yield* Deferred.isDone(writing), "the first append reached its write in the caller's turn")
          // the next ones must wait for its permit or the writer, and land after it
          const rest = yield* Effect.forkChild(
            Effect.forEach(range(2, 5), (seq) => wal.append(record(seq, 1)), {
              concurrency: "unbounded",
              discard: true
            }),
            { startImmediately: true }
          )
          yield* Deferred.succeed(release, undefined)
          yield* Fiber.join(first)
          yield* Fiber.join(rest)
          const stats = yield* wal.stats
          assert.strictEqual(stats.appends, 5)
          assert.strictEqual(stats.syncs, 2, "the first alone, then the four that waited for it together")
          instrument.hook = () => Effect.void
          const { state } = yield* stateOf(file)
          assertState(state, Wal.fold(range(1, 5).map((seq) => record(seq, 1))))
          assert.deepStrictEqual(state.accepted.get(1), record(5, 1).accepted[0])
        }).pipe(Effect.provide(instrumented(instrument)))
      })
  )

  it.effect("group commit: 200 concurrent appends share a few fsyncs and all survive a reopen", () =>
    Effect.gen(function* () {
      const instrument = new InstrumentedFs.Instrument()
      const file = yield* tempLog.pipe(Effect.provide(NodeLayer))
      const stats = yield* withWal(file, (wal) =>
        Effect.gen(function* () {
          yield* Effect.forEach(range(1, 200), (seq) => wal.append(record(seq)), {
            concurrency: "unbounded",
            discard: true
          })
          return yield* wal.stats
        })
      ).pipe(Effect.provide(instrumented(instrument)))
      const fsyncs = instrument.count("sync", file)
      assert.strictEqual(stats.appends, 200)
      assert.strictEqual(stats.syncs, fsyncs, "the writer's own count matches the fsyncs the file system saw")
      assert.isAtMost(fsyncs, 10, `200 appends took ${fsyncs} fsyncs`)
      assert.isAtMost(instrument.count("writeAll", file), fsyncs, "one write per fsync")
      const { state } = yield* stateOf(file).pipe(Effect.provide(NodeLayer))
      assert.strictEqual(state.accepted.size, 200)
      assertState(state, Wal.fold(range(1, 200).map((seq) => record(seq))))
    })
  )

  it.effect(
    "crash at every byte of an append: recovery keeps exactly the complete frames and persists the cut",
    () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        const source = yield* tempLog
        const records = range(1, 6).map((seq) => record(seq))
        const { bytes, boundaries } = yield* writeLog(source, records)
        const lastFrame = boundaries[records.length - 1]!
        // Every offset inside the last frame (header and payload), plus every frame boundary.
        const cuts = [...new Set([...boundaries, ...range(lastFrame, bytes.length)])].sort((a, b) => a - b)
        const dir = path.dirname(source)
        for (const cut of cuts) {
          const file = path.join(dir, `cut-${cut}`)
          yield* fs.writeFile(file, bytes.subarray(0, cut))
          const complete = boundaries.filter((b) => b <= cut).length - 1
          const boundary = boundaries[complete]!
          const { state, wal } = yield* stateOf(file)
          assertState(state, Wal.fold(records.slice(0, complete)), `cut at ${cut}`)
          assert.strictEqual(wal.recovery.records, complete, `cut at ${cut}`)
          assert.strictEqual(wal.recovery.truncatedBytes, cut - boundary, `cut at ${cut}`)
          assert.strictEqual((yield* fs.stat(file)).size, BigInt(boundary), `cut at ${cut}: truncation persisted`)
          // Recovery is idempotent, and appends after it land on a clean boundary.
          const again = yield* withWal(file, (w) => Effect.as(w.append(record(7)), w.recovery))
          assert.strictEqual(again.truncatedBytes, 0)
          const after = yield* stateOf(file)
          assertState(after.state, Wal.fold([...records.slice(0, complete), record(7)]), `cut at ${cut}, then append`)
          yield* fs.remove(file)
        }
      }).pipe(Effect.provide(NodeLayer)),
    30_000
  )

  it.effect("a damaged middle frame (payload, checksum or length) stops recovery with CorruptLog", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const source = yield* tempLog
      const records = range(1, 5).map((seq) => record(seq))
      const { bytes, boundaries } = yield* writeLog(source, records)
      const second = boundaries[1]!
      const damages = {
        payload: second + Frame.HeaderBytes + 10,
        checksum: second + 5,
        length: second + 1
      }
      for (const [what, at] of Object.entries(damages)) {
        const damaged = new Uint8Array(bytes)
        damaged[at] = damaged[at]! ^ 0x40
        yield* fs.writeFile(source, damaged)
        const result = yield* Effect.result(stateOf(source))
        assert.isTrue(Result.isFailure(result), what)
        if (Result.isFailure(result)) {
          const error = result.failure
          assert.strictEqual(error._tag, "CorruptLog", what)
          if (error._tag === "CorruptLog") {
            assert.strictEqual(error.file, source, what)
            assert.strictEqual(error.offset, second, what)
            assert.include(error.message, source)
          }
        }
        assert.deepStrictEqual(yield* fs.readFile(source), damaged, `${what}: a corrupt log is left untouched`)
      }
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("a damaged last frame is a torn tail: cut, and the earlier records kept", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const source = yield* tempLog
      const records = range(1, 5).map((seq) => record(seq))
      const { bytes, boundaries } = yield* writeLog(source, records)
      const last = boundaries[4]!
      for (const at of [last + 1, last + 5, last + Frame.HeaderBytes + 3, bytes.length - 1]) {
        const damaged = new Uint8Array(bytes)
        damaged[at] = damaged[at]! ^ 0x40
        yield* fs.writeFile(source, damaged)
        const warnings: Array<unknown> = []
        const { state, wal } = yield* stateOf(source).pipe(
          Effect.provide(
            Logger.layer([
              Logger.make(({ message, logLevel }) => {
                if (logLevel === "Warn") warnings.push(message)
              })
            ])
          )
        )
        assertState(state, Wal.fold(records.slice(0, 4)), `byte ${at}`)
        assert.strictEqual(wal.recovery.truncatedBytes, bytes.length - last)
        assert.strictEqual((yield* fs.stat(source)).size, BigInt(last))
        // the cut is logged, with where and how much
        assert.deepInclude(JSON.stringify(warnings), `"offset":${last},"bytes":${bytes.length - last}`)
      }
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("a frame with a valid checksum that does not decode is corruption, even at the end", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const source = yield* tempLog
      const { bytes } = yield* writeLog(source, [record(1)])
      const foreign = Frame.encode(new TextEncoder().encode('{"promised":"nope"}'))
      const damaged = new Uint8Array(bytes.length + foreign.length)
      damaged.set(bytes)
      damaged.set(foreign, bytes.length)
      yield* fs.writeFile(source, damaged)
      const error = yield* Effect.flip(stateOf(source))
      assert.strictEqual(error._tag, "CorruptLog")
      if (error._tag === "CorruptLog") {
        assert.strictEqual(error.offset, bytes.length)
        assert.include(error.reason, "does not decode")
      }
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("compaction keeps the state, shrinks the file and keeps working", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const file = yield* tempLog
      // 300 records over 10 slots: the state stays small while the log grows.
      const records = range(1, 300).map((seq) => record(seq, 1 + (seq % 10)))
      const stats = yield* withWal(
        file,
        (wal) =>
          Effect.gen(function* () {
            for (const r of records) yield* wal.append(r)
            return yield* wal.stats
          }),
        { compactBytes: 16 * 1024 }
      )
      const written = records.reduce((n, r) => n + Result.getOrThrow(Wal.encodeFrame(r)).length, 0)
      assert.isAtLeast(stats.compactions, 2)
      const size = yield* logLength(file)
      assert.strictEqual(size, stats.bytes)
      assert.isBelow(size, written / 4, `log of ${size} bytes for ${written} bytes appended`)
      assert.isAtMost(size, 16 * 1024 + 2 * 1024)
      const { state, wal } = yield* stateOf(file)
      assertState(state, Wal.fold(records))
      assert.isBelow(wal.recovery.records, records.length, "the log starts with a checkpoint")
      assert.isFalse(yield* fs.exists(`${file}.tmp`))
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect(
    "a GC watermark drops the slots below it, survives a reopen, and compaction keeps the log small",
    () =>
      Effect.gen(function* () {
        const file = yield* tempLog
        // a long run whose acceptor forgets everything 20 slots behind: the log must level off
        const records = range(1, 800).map((seq) =>
          seq % 20 === 0 ? { ...record(seq), watermark: Math.max(seq - 20, 1) } : record(seq)
        )
        const stats = yield* withWal(
          file,
          (wal) =>
            Effect.gen(function* () {
              for (const r of records) yield* wal.append(r)
              return yield* wal.stats
            }),
          { compactBytes: 8 * 1024 }
        )
        assert.isAtLeast(stats.compactions, 10)
        const { state } = yield* stateOf(file)
        assert.strictEqual(state.watermark, 780)
        assert.deepStrictEqual(
          [...state.accepted.keys()].sort((a, b) => a - b),
          range(780, 800)
        )
        assertState(state, Wal.fold(records))
        assert.isAtMost(yield* logLength(file), 8 * 1024 + 4 * 1024)
        // a late pvalue below the watermark (a stale P2a's record) is not brought back
        yield* withWal(file, (wal) => wal.append(record(801, 5)))
        assert.isFalse((yield* stateOf(file)).state.accepted.has(5))
      }).pipe(Effect.provide(NodeLayer)),
    30_000
  )

  it.effect("the checkpoint's size is kept as records come, as counting the folded state gives", () =>
    Effect.gen(function* () {
      const records = fc.sample(
        fc.array(
          fc.tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 12 })),
          { minLength: 1, maxLength: 60 }
        ),
        8
      )
      for (const run of records) {
        const file = yield* tempLog
        const appended = run.map(([seq, slot, forget]) =>
          forget === 0 ? { ...record(seq, slot), watermark: slot } : record(seq, slot)
        )
        const stats = yield* withWal(
          file,
          (wal) =>
            Effect.gen(function* () {
              for (const r of appended) yield* wal.append(r)
              return yield* wal.stats
            }),
          { compactBytes: 1 << 30 }
        )
        assert.strictEqual(stats.checkpointBytes, Wal.checkpointBytes(Wal.fold(appended)))
        // and after a reopen, counted from what was recovered
        const reopened = yield* withWal(file, (wal) => wal.stats)
        assert.strictEqual(reopened.checkpointBytes, stats.checkpointBytes)
      }
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect(
    "right after the acceptor forgets most of its slots the log compacts, however large the last checkpoint",
    () =>
      Effect.gen(function* () {
        const file = yield* tempLog
        const stats = yield* withWal(
          file,
          (wal) =>
            Effect.gen(function* () {
              // 300 slots kept: every compaction would write them all out
              for (const seq of range(1, 300)) yield* wal.append(record(seq))
              const before = yield* wal.stats
              // forgetting all but the last 10 slots makes the next checkpoint small: it comes at once
              yield* wal.append({ ...record(301), watermark: 292 })
              for (let i = 0; i < 100 && (yield* wal.stats).compactions === before.compactions; i++) {
                yield* wal.append(record(302 + i))
              }
              return { before, after: yield* wal.stats }
            }),
          { compactBytes: 8 * 1024 }
        )
        assert.strictEqual(stats.after.compactions, stats.before.compactions + 1)
        assert.isBelow(yield* logLength(file), 8 * 1024)
        assert.isAbove(stats.before.bytes, 4 * stats.after.checkpointBytes)
      }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("appends that arrive during a compaction wait for it and are not lost", () =>
    Effect.gen(function* () {
      const instrument = new InstrumentedFs.Instrument()
      const file = yield* tempLog.pipe(Effect.provide(NodeLayer))
      const renaming = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      yield* withWal(
        file,
        (wal) =>
          Effect.gen(function* () {
            instrument.hook = (call) =>
              call.op === "rename" && call.path === `${file}.tmp`
                ? Effect.andThen(Deferred.succeed(renaming, undefined), Deferred.await(release))
                : Effect.void
            // Big enough to cross the threshold in one batch.
            yield* Effect.forEach(range(1, 40), (seq) => wal.append(reaccept(seq)), {
              concurrency: "unbounded",
              discard: true
            })
            yield* Deferred.await(renaming)
            const during = yield* Effect.forkChild(
              Effect.forEach(range(41, 90), (seq) => wal.append(reaccept(seq)), {
                concurrency: "unbounded",
                discard: true
              }),
              { startImmediately: true }
            )
            assert.isUndefined(during.pollUnsafe(), "appends wait while the checkpoint is being swapped in")
            yield* Deferred.succeed(release, undefined)
            yield* Fiber.join(during)
            const stats = yield* wal.stats
            assert.strictEqual(stats.compactions, 1)
            assert.strictEqual(stats.appends, 90)
          }),
        { compactBytes: 4 * 1024 }
      ).pipe(Effect.provide(instrumented(instrument)))
      const { state } = yield* stateOf(file).pipe(Effect.provide(NodeLayer))
      assertState(state, Wal.fold(range(1, 90).map((seq) => reaccept(seq))))
    })
  )

  it.live("appends go on while a checkpoint is written, and follow it into the new file", () =>
    Effect.gen(function* () {
      const instrument = new InstrumentedFs.Instrument()
      const file = yield* tempLog.pipe(Effect.provide(NodeLayer))
      const syncing = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      yield* withWal(
        file,
        (wal) =>
          Effect.gen(function* () {
            // the checkpoint's fsync waits; the log's own fsyncs do not
            instrument.hook = (call) =>
              call.op === "sync" && call.path === `${file}.tmp`
                ? Effect.andThen(Deferred.succeed(syncing, undefined), Deferred.await(release))
                : Effect.void
            yield* Effect.forEach(range(1, 40), (seq) => wal.append(reaccept(seq)), {
              concurrency: "unbounded",
              discard: true
            })
            yield* Deferred.await(syncing)
            // acknowledged while the checkpoint waits for its fsync
            for (const seq of range(41, 60)) yield* wal.append(reaccept(seq))
            assert.strictEqual((yield* wal.stats).compactions, 0)
            instrument.hook = () => Effect.void
            yield* Deferred.succeed(release, undefined)
            for (let i = 0; i < 200 && (yield* wal.stats).compactions === 0; i++) yield* Effect.sleep(5)
            assert.strictEqual((yield* wal.stats).compactions, 1)
            yield* wal.append(reaccept(61))
          }),
        { compactBytes: 4 * 1024 }
      ).pipe(Effect.provide(instrumented(instrument)))
      const { state } = yield* stateOf(file).pipe(Effect.provide(NodeLayer))
      assertState(state, Wal.fold(range(1, 61).map((seq) => reaccept(seq))))
    })
  )

  it.effect("crash states of a checkpoint: old log or new log, never a mix, never lost", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const file = yield* tempLog
      const records = range(1, 20).map((seq) => record(seq, 1 + (seq % 4)))
      const old = (yield* writeLog(file, records)).bytes
      const expected = Wal.fold(records)
      const checkpoint = Result.getOrThrow(Wal.encodeFrame(Wal.checkpoint(expected)))
      // A temp file that is *not* the old state, so using it would show.
      const impostor = Result.getOrThrow(Wal.encodeFrame(Wal.checkpoint(Wal.fold([...records, promise(99)]))))
      const states: Record<string, { wal: Uint8Array; temp?: Uint8Array }> = {
        "temp written, not renamed": { wal: old, temp: impostor },
        "temp partially written": { wal: old, temp: impostor.subarray(0, impostor.length >> 1) },
        "temp created, nothing written": { wal: old, temp: new Uint8Array(0) },
        "renamed, directory not synced (rename lost)": { wal: old, temp: checkpoint },
        "renamed, directory not synced (rename kept)": { wal: checkpoint }
      }
      for (const [name, files] of Object.entries(states)) {
        yield* fs.writeFile(file, files.wal)
        if (files.temp !== undefined) yield* fs.writeFile(`${file}.tmp`, files.temp)
        const { state } = yield* stateOf(file)
        assertState(state, expected, name)
        assert.isFalse(yield* fs.exists(`${file}.tmp`), `${name}: stray temp removed`)
      }
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("a compaction failing at any step loses no acknowledged record", () =>
    Effect.gen(function* () {
      const steps: ReadonlyArray<{ readonly name: string; readonly op: InstrumentedFs.Op; readonly temp: boolean }> = [
        { name: "open temp", op: "open", temp: true },
        { name: "write temp", op: "writeAll", temp: true },
        { name: "fsync temp", op: "sync", temp: true },
        { name: "rename", op: "rename", temp: true },
        { name: "fsync directory", op: "sync", temp: false }
      ]
      for (const step of steps) {
        const instrument = new InstrumentedFs.Instrument()
        const file = yield* tempLog.pipe(Effect.provide(NodeLayer))
        const dir = file.slice(0, file.lastIndexOf("/"))
        const acknowledged: Array<Storage.AcceptorRecord> = []
        const after = yield* withWal(
          file,
          (wal) =>
            Effect.gen(function* () {
              instrument.hook = (call) =>
                call.op === step.op && call.path === (step.temp ? `${file}.tmp` : dir)
                  ? Effect.fail(InstrumentedFs.injected(call))
                  : Effect.void
              for (const seq of range(1, 60)) {
                const r = record(seq, 1 + (seq % 5))
                if (Result.isSuccess(yield* Effect.result(wal.append(r)))) acknowledged.push(r)
              }
              return { stats: yield* wal.stats, failure: yield* wal.failure }
            }),
          { compactBytes: 4 * 1024 }
        ).pipe(Effect.provide(instrumented(instrument)))
        assert.strictEqual(after.stats.compactions, 0, step.name)
        if (step.op === "rename" || !step.temp) {
          // Past the point of no return: the log refuses further appends until reopened.
          assert.isDefined(after.failure, step.name)
          assert.isBelow(acknowledged.length, 60, step.name)
        } else {
          // Before the rename nothing changed: appending goes on in the old log.
          assert.isUndefined(after.failure, step.name)
          assert.strictEqual(acknowledged.length, 60, step.name)
        }
        const { state } = yield* stateOf(file).pipe(Effect.provide(NodeLayer))
        assertState(state, Wal.fold(acknowledged), step.name)
      }
    })
  )

  it.effect("a failed fsync poisons the log; reopening recovers what reached the disk", () =>
    Effect.gen(function* () {
      const instrument = new InstrumentedFs.Instrument()
      const file = yield* tempLog.pipe(Effect.provide(NodeLayer))
      yield* withWal(file, (wal) =>
        Effect.gen(function* () {
          yield* wal.append(record(1))
          instrument.hook = (call) =>
            call.op === "sync" && call.path === file ? Effect.fail(InstrumentedFs.injected(call)) : Effect.void
          const failed = yield* Effect.flip(wal.append(record(2)))
          assert.strictEqual(failed._tag, "StorageError")
          assert.include(failed.reason, "must be reopened")
          instrument.hook = () => Effect.void
          const after = yield* Effect.flip(wal.append(record(3)))
          assert.strictEqual(after, failed, "later appends fail without touching the file")
          assert.deepStrictEqual([...(yield* wal.load).accepted.keys()], [1])
        })
      ).pipe(Effect.provide(instrumented(instrument)))
      // Record 2 was written but its fsync "failed": it may or may not be there, record 3 never.
      const { state } = yield* stateOf(file).pipe(Effect.provide(NodeLayer))
      assert.isTrue(state.accepted.has(1))
      assert.isFalse(state.accepted.has(3))
    })
  )

  it.effect("closing the log finishes the batch in flight and fails the queued appends", () =>
    Effect.gen(function* () {
      const instrument = new InstrumentedFs.Instrument()
      yield* Effect.gen(function* () {
        const file = yield* tempLog
        const syncing = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const scope = yield* Scope.make()
        const wal = yield* Wal.open(file).pipe(Scope.provide(scope))
        instrument.hook = (call) =>
          call.op === "sync" && call.path === file
            ? Effect.andThen(Deferred.succeed(syncing, undefined), Deferred.await(release))
            : Effect.void
        const inFlight = yield* Effect.forkChild(wal.append(record(1)), { startImmediately: true })
        yield* Deferred.await(syncing)
        const queued = yield* Effect.forkChild(Effect.flip(wal.append(record(2))), { startImmediately: true })
        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void), { startImmediately: true })
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(closing)
        yield* Fiber.join(inFlight)
        assert.include((yield* Fiber.join(queued)).reason, "closed")
        assert.include((yield* Effect.flip(wal.append(record(3)))).reason, "closed")
        instrument.hook = () => Effect.void
        const { state } = yield* stateOf(file)
        assert.deepStrictEqual([...state.accepted.keys()], [1])
      }).pipe(Effect.provide(instrumented(instrument)))
    })
  )
})

describe("Wal.encodeFrame", () => {
  it("writes exactly the schema's encoding of any record", () => {
    const recordArb = fc.record(
      {
        promised: ballotArb,
        accepted: fc.array(pvalueArb, { maxLength: 5 }),
        watermark: fc.integer({ min: 1, max: 1_000_000 })
      },
      { requiredKeys: ["promised", "accepted"] }
    )
    fc.assert(
      fc.property(recordArb, (rec) => {
        const framed = Result.getOrThrow(Wal.encodeFrame(rec))
        const json = new TextDecoder().decode(framed.subarray(Frame.HeaderBytes))
        assert.strictEqual(json, Result.getOrThrow(Wal.encodeWithSchema(rec)))
      }),
      { numRuns: 300 }
    )
  })

  it("writes the same with large values, whose bytes it shares with the messages that carry them", () => {
    const bigCommand = fc
      .record({
        client: fc.constantFrom("c1", "c2"),
        seq: fc.integer({ min: 1, max: 1000 }),
        acked: fc.constant(0),
        op: fc.string({ unit: "binary", minLength: 200, maxLength: 1500 })
      })
      .map((c) => new Command.Command(c))
    const bigPvalue = fc
      .record({
        ballot: ballotArb,
        slot: fc.integer({ min: 1, max: 1000 }),
        value: fc.array(bigCommand, { minLength: 1, maxLength: 3 }).map((commands) => new Command.Batch({ commands }))
      })
      .map((pv) => new Command.PValue(pv))
    fc.assert(
      fc.property(fc.array(fc.oneof(bigPvalue, pvalueArb), { maxLength: 4 }), ballotArb, (accepted, promised) => {
        const rec = { promised, accepted }
        // a P2a carrying the first value encoded its bytes first: the log reuses them
        if (accepted[0] !== undefined) Codec.valueBytes(accepted[0].value)
        const framed = Result.getOrThrow(Wal.encodeFrame(rec))
        const json = new TextDecoder().decode(framed.subarray(Frame.HeaderBytes))
        assert.strictEqual(json, Result.getOrThrow(Wal.encodeWithSchema(rec)))
        const scanned = Frame.scan(framed)
        assert.strictEqual(scanned.damage, undefined, "the checksum covers the payload's parts")
      }),
      { numRuns: 200 }
    )
  })
})

describe("Wal: P2as logged as they were received", () => {
  const utf8 = new TextEncoder()
  const bigBatch = (seq: number, text: string) =>
    Trusted.batch([
      Trusted.command("c1", seq, 0, { put: `k${seq}`, value: text.repeat(Math.ceil(2000 / text.length)) })
    ])
  /** The P2a's envelope as a leader of another process sends it: JSON text. */
  const sent = (ballot: Ballot.Ballot, slot: number, value: Command.SlotValue) =>
    Codec.encode(Trusted.envelope(Address.leader("s1"), Address.acceptor("s2"), Trusted.p2a(ballot, slot, value)))
  /** What an acceptor logs of the P2as a payload carried: a promise of the last ballot and each pvalue. */
  const accepting = (payload: Uint8Array | string): Storage.AcceptorRecord => {
    const items = Result.getOrThrow(Codec.decodeMany(payload)).map(Result.getOrThrow)
    const p2as = items.map((e) => e.message).filter((m): m is Message.P2a => m._tag === "P2a")
    return {
      promised: p2as[p2as.length - 1]!.ballot,
      accepted: p2as.map((m) => Trusted.pvalue(m.ballot, m.slot, m.value))
    }
  }
  const frameText = (rec: Storage.AcceptorRecord) =>
    new TextDecoder().decode(Result.getOrThrow(Wal.encodeFrame(rec)).subarray(Frame.HeaderBytes))

  it.effect("a received P2a is logged as its payload and recovered as the pvalue accepted", () =>
    Effect.gen(function* () {
      const file = yield* tempLog
      const b = Ballot.make(3, "s1")
      const payload = utf8.encode(sent(b, 7, bigBatch(1, "héllo ")))
      const rec = accepting(payload)
      const text = frameText(rec)
      assert.include(text, `"accepted":[{"raw":0}]`)
      assert.include(text, new TextDecoder().decode(payload), "the payload's bytes, as they came")
      yield* withWal(file, (wal) => wal.append(rec))
      const { state } = yield* stateOf(file)
      assertState(state, Wal.fold([rec]))
      assert.strictEqual(state.accepted.get(7)?.value._tag, "Batch", "pvalues come back as schema classes")
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("a forged P2a with its value twice is recovered with the value it was accepted with", () =>
    Effect.gen(function* () {
      const file = yield* tempLog
      const b = Ballot.make(4, "s1")
      const honest = sent(b, 2, bigBatch(1, "first "))
      const second = JSON.stringify(bigBatch(2, "second "))
      // JSON.parse keeps the last of two equal keys: a text cut around the first value would log another
      const forged = `${honest.slice(0, -2)},"value":${second}}}`
      const rec = accepting(utf8.encode(forged))
      assert.deepStrictEqual(rec.accepted[0]!.value, bigBatch(2, "second "))
      assert.include(frameText(rec), `{"raw":0}`)
      yield* withWal(file, (wal) => wal.append(rec))
      const { state } = yield* stateOf(file)
      assert.deepStrictEqual(state.accepted.get(2), rec.accepted[0])
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("P2as coalesced into one payload: each by its index, the payload logged once", () =>
    Effect.gen(function* () {
      const file = yield* tempLog
      const b = Ballot.make(5, "s3")
      const payload = `[${sent(b, 1, bigBatch(1, "a"))}, ${sent(b, 2, Trusted.batch([Trusted.command("c2", 1, 0, 1)]))},${sent(b, 3, bigBatch(3, "c"))}]`
      const rec = accepting(payload)
      const text = frameText(rec)
      assert.include(text, `"accepted":[{"raw":0,"at":0},{"raw":0,"at":1},{"raw":0,"at":2}]`)
      assert.strictEqual(text.split(`"_tag":"P2a"`).length - 1, 3, "the payload once")
      yield* withWal(file, (wal) => wal.append(rec))
      yield* withWal(file, (wal) => wal.append(record(9, 4)))
      const { state } = yield* stateOf(file)
      assertState(state, Wal.fold([rec, record(9, 4)]))
    }).pipe(Effect.provide(NodeLayer))
  )

  it("a pvalue at another ballot or slot than its P2a's, a small payload or one with a byte-order mark is stringified", () => {
    const b = Ballot.make(6, "s1")
    const value = bigBatch(1, "x")
    const payload = utf8.encode(sent(b, 1, value))
    const rec = accepting(payload)
    const decoded = rec.accepted[0]!.value
    // the same value object re-proposed by this process's own leader at its own ballot
    const reproposed = { promised: Ballot.make(7, "s2"), accepted: [Trusted.pvalue(Ballot.make(7, "s2"), 1, decoded)] }
    const moved = { promised: b, accepted: [Trusted.pvalue(b, 2, decoded)] }
    for (const r of [reproposed, moved]) {
      assert.notInclude(frameText(r), `"raw"`)
      assert.strictEqual(frameText(r), Result.getOrThrow(Wal.encodeWithSchema(r)))
    }
    const small = accepting(utf8.encode(sent(b, 1, Trusted.batch([Trusted.command("c1", 1, 0, "tiny")]))))
    assert.notInclude(frameText(small), `"raw"`)
    const marked = accepting(new Uint8Array([0xef, 0xbb, 0xbf, ...payload]))
    assert.notInclude(frameText(marked), `"raw"`)
  })

  it.effect("a log whose received payload holds no such P2a is corrupt, not a shorter state", () =>
    Effect.gen(function* () {
      const file = yield* tempLog
      const b = Ballot.make(3, "s1")
      const bad = `{"promised":${JSON.stringify(b)},"accepted":[{"raw":0,"at":5}],"received":[[${sent(b, 1, bigBatch(1, "z"))}]]}`
      yield* withWal(file, (wal) => wal.append(record(1)))
      yield* appendRaw(file, Frame.encodeParts([utf8.encode(bad)]))
      const error = yield* Effect.flip(stateOf(file))
      assert.strictEqual(error._tag, "CorruptLog")
      assert.include((error as Wal.CorruptLog).reason, "no envelope at index 5")
    }).pipe(Effect.provide(NodeLayer))
  )
})

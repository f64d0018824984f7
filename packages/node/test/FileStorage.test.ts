import { NodeFileSystem, NodePath } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Ballot, Storage } from "@synod/core"
import * as FileStorage from "@synod/node/FileStorage"
import * as Frame from "@synod/node/Frame"
import * as Wal from "@synod/node/Wal"
import { Effect, FileSystem, Layer, Option, Path } from "effect"
import * as InstrumentedFs from "./fixtures/InstrumentedFs.ts"
import { promise, record } from "./fixtures/records.ts"

const NodeLayer = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer)

const tempDir = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  return yield* fs.makeTempDirectoryScoped({ prefix: "synod-storage-" })
})

/** Builds the storage on `dataDir`, runs `f`, then closes every store (a process exit). */
const withStorage = <A, E, R>(
  options: FileStorage.Options,
  f: (storage: Storage.Storage["Service"]) => Effect.Effect<A, E, R>
) => Effect.scoped(Effect.flatMap(FileStorage.make(options), f))

const snapshot: Storage.ReplicaSnapshot = {
  slotOut: 42,
  state: { counters: { a: 1, b: [1, 2, 3] }, note: "ü" },
  clients: [
    { client: "c1", acked: 3, results: [{ seq: 4, slot: 40, result: { ok: true } }] },
    { client: "c2", acked: 0, results: [{ seq: 1, slot: 41, result: null, error: "boom" }] }
  ]
}

/** Asserts `effect` fails with a StorageError whose reason names `file`; returns the error. */
const failsNaming = <A, R>(effect: Effect.Effect<A, Storage.StorageError, R>, file: string) =>
  Effect.gen(function* () {
    const error = yield* Effect.flip(effect)
    assert.strictEqual(error._tag, "StorageError")
    assert.include(error.reason, file)
    return error
  })

describe("FileStorage", () => {
  it.effect("every store survives a restart, in the documented layout", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const dataDir = path.join(yield* tempDir, "data")
      yield* withStorage({ dataDir }, (storage) =>
        Effect.gen(function* () {
          const acceptor = yield* storage.acceptor("a1")
          yield* acceptor.append(record(3))
          yield* acceptor.append(promise(5))
          const leader = yield* storage.leader("s1")
          assert.strictEqual(yield* leader.loadRound, 0)
          yield* leader.saveRound(7)
          yield* leader.saveRound(5)
          assert.strictEqual(yield* leader.loadRound, 7, "rounds never go down")
          const replica = yield* storage.replica("s1")
          assert.isTrue(Option.isNone(yield* replica.load))
          yield* replica.save({ ...snapshot, slotOut: 1 })
          yield* replica.save(snapshot)
        })
      )
      for (const file of ["acceptor-a1/wal", "leader-s1/round", "replica-s1/snapshot"]) {
        assert.isTrue(yield* fs.exists(path.join(dataDir, file)), file)
      }
      yield* Effect.gen(function* () {
        const storage = yield* Storage.Storage
        const state = yield* (yield* storage.acceptor("a1")).load
        assert.deepStrictEqual(state.promised, Ballot.make(5, "s2"))
        assert.deepStrictEqual(state.accepted.get(3), record(3).accepted[0])
        assert.strictEqual(yield* (yield* storage.leader("s1")).loadRound, 7)
        assert.deepStrictEqual(yield* (yield* storage.replica("s1")).load, Option.some(snapshot))
        assert.isTrue(Option.isNone(yield* (yield* storage.replica("s2")).load))
        assert.strictEqual((yield* (yield* storage.acceptor("a2")).load).accepted.size, 0)
      }).pipe(Effect.provide(FileStorage.layer({ dataDir })))
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("stores are opened once per id, even by concurrent callers", () =>
    Effect.gen(function* () {
      const dataDir = yield* tempDir
      yield* withStorage({ dataDir }, (storage) =>
        Effect.gen(function* () {
          const [a, b] = yield* Effect.all([storage.acceptor("a1"), storage.acceptor("a1")], { concurrency: 2 })
          assert.strictEqual(a, b)
          assert.strictEqual(yield* storage.leader("s1"), yield* storage.leader("s1"))
          assert.strictEqual(yield* storage.replica("s1"), yield* storage.replica("s1"))
        })
      )
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("ids that are not safe file names are refused", () =>
    Effect.gen(function* () {
      const dataDir = yield* tempDir
      yield* withStorage({ dataDir }, (storage) =>
        Effect.gen(function* () {
          for (const id of ["../x", "a/b", "", ".."]) {
            const error = yield* Effect.flip(storage.acceptor(id))
            assert.include(error.reason, "invalid acceptor id")
          }
        })
      )
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("a damaged round or snapshot file fails naming the file, never starts empty", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const dataDir = yield* tempDir
      yield* withStorage({ dataDir }, (storage) =>
        Effect.gen(function* () {
          yield* (yield* storage.leader("s1")).saveRound(12)
          yield* (yield* storage.replica("s1")).save(snapshot)
        })
      )
      const round = path.join(dataDir, "leader-s1", "round")
      const snap = path.join(dataDir, "replica-s1", "snapshot")
      const goodRound = yield* fs.readFile(round)
      const goodSnap = yield* fs.readFile(snap)
      const flipped = (bytes: Uint8Array, at: number) => {
        const copy = new Uint8Array(bytes)
        copy[at] = copy[at]! ^ 0x01
        return copy
      }
      const damages: ReadonlyArray<readonly [string, string, Uint8Array]> = [
        ["round: payload flipped", round, flipped(goodRound, goodRound.length - 3)],
        ["round: empty", round, new Uint8Array(0)],
        ["round: truncated", round, goodRound.subarray(0, goodRound.length - 1)],
        ["snapshot: checksum flipped", snap, flipped(goodSnap, 5)],
        ["snapshot: truncated", snap, goodSnap.subarray(0, 20)],
        // A checksummed frame whose contents do not fit the schema is just as corrupt.
        ["round: negative", round, Frame.encode(new TextEncoder().encode('{"round":-1}'))]
      ]
      for (const [name, file, bytes] of damages) {
        yield* fs.writeFile(file, bytes)
        const error = yield* withStorage({ dataDir }, (storage) =>
          failsNaming<unknown, never>(file === round ? storage.leader("s1") : storage.replica("s1"), file)
        )
        assert.include(error.reason, "corrupt file", name)
        yield* fs.writeFile(round, goodRound)
        yield* fs.writeFile(snap, goodSnap)
      }
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("a corrupt acceptor log fails with a StorageError carrying the CorruptLog", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const dataDir = yield* tempDir
      yield* withStorage({ dataDir }, (storage) =>
        Effect.flatMap(storage.acceptor("a1"), (a) =>
          Effect.forEach([1, 2, 3], (seq) => a.append(record(seq)), { discard: true })
        )
      )
      const wal = path.join(dataDir, "acceptor-a1", "wal")
      const bytes = new Uint8Array(yield* fs.readFile(wal))
      bytes[20] = bytes[20]! ^ 0x01 // inside the first of three frames
      yield* fs.writeFile(wal, bytes)
      const error = yield* withStorage({ dataDir }, (storage) => failsNaming(storage.acceptor("a1"), wal))
      assert.instanceOf(error.cause, Wal.CorruptLog)
      assert.include(error.reason, "at offset 0")
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("stray temp files of interrupted writes are ignored and removed", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const dataDir = yield* tempDir
      yield* withStorage({ dataDir }, (storage) => Effect.flatMap(storage.leader("s1"), (l) => l.saveRound(3)))
      const round = path.join(dataDir, "leader-s1", "round")
      yield* withStorage({ dataDir }, (storage) => Effect.flatMap(storage.leader("s1"), (l) => l.saveRound(9)))
      yield* withStorage({ dataDir }, (storage) => Effect.flatMap(storage.leader("s2"), (l) => l.saveRound(3)))
      // s1's round is 9; put a complete but unrenamed "3" next to it, and a torn one.
      yield* fs.writeFile(`${round}.tmp`, yield* fs.readFile(path.join(dataDir, "leader-s2", "round")))
      yield* withStorage({ dataDir }, (storage) =>
        Effect.gen(function* () {
          assert.strictEqual(yield* (yield* storage.leader("s1")).loadRound, 9)
          assert.isFalse(yield* fs.exists(`${round}.tmp`))
        })
      )
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("compactBytes reaches the acceptor's log", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const dataDir = yield* tempDir
      yield* withStorage({ dataDir, compactBytes: 8 * 1024 }, (storage) =>
        Effect.flatMap(storage.acceptor("a1"), (a) =>
          Effect.forEach(
            Array.from({ length: 200 }, (_, i) => i + 1),
            (seq) => a.append(record(seq, 1 + (seq % 3))),
            { discard: true }
          )
        )
      )
      // the log's frames, without the space it zeroed after them
      const size = Frame.scan(yield* fs.readFile(path.join(dataDir, "acceptor-a1", "wal"))).end
      assert.isTrue(size < 10 * 1024, `log is ${size} bytes`)
    }).pipe(Effect.provide(NodeLayer))
  )

  it.effect("an acceptor whose log was poisoned is reopened from disk on the next acceptor(id)", () =>
    Effect.gen(function* () {
      const instrument = new InstrumentedFs.Instrument()
      const dataDir = yield* tempDir.pipe(Effect.provide(NodeLayer))
      yield* withStorage({ dataDir }, (storage) =>
        Effect.gen(function* () {
          const first = yield* storage.acceptor("a1")
          yield* first.append(record(1))
          instrument.hook = (call) =>
            call.op === "sync" && call.path.endsWith("wal") ? Effect.fail(InstrumentedFs.injected(call)) : Effect.void
          yield* Effect.flip(first.append(record(2)))
          instrument.hook = () => Effect.void
          const second = yield* storage.acceptor("a1")
          assert.notStrictEqual(second, first)
          assert.isTrue((yield* second.load).accepted.has(1))
          yield* second.append(record(3))
          assert.isTrue((yield* second.load).accepted.has(3))
        })
      ).pipe(Effect.provide(Layer.mergeAll(InstrumentedFs.layer(instrument), NodePath.layer)))
    })
  )
})

/**
 * Real crashes: a child Node process appends acknowledged records in a loop and is killed
 * with SIGKILL at a random moment (possibly mid-write, mid-fsync or mid-compaction); the
 * log must then hold every acknowledged record and nothing that was never written.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import * as Frame from "@synod/node/Frame"
import * as Wal from "@synod/node/Wal"
import { Deferred, Effect, Fiber, FileSystem, Path, Random, Stream } from "effect"
import { ChildProcess } from "effect/process"
import { record } from "./fixtures/records.ts"

interface Run {
  readonly acked: ReadonlyArray<number>
  readonly recovered: number
}

/** Runs the append loop on `file` until the first ack, lets it go on for `ms`, then SIGKILLs it. */
const runAndKill = Effect.fnUntraced(function* (file: string, ms: number) {
  const path = yield* Path.Path
  const fixture = yield* path.fromFileUrl(new URL("./fixtures/append-loop.ts", import.meta.url))
  // The test runner is Node 24, which runs the .ts fixture directly.
  const child = yield* ChildProcess.make(process.execPath, [fixture, file, "8", "32768"])
  const acked: Array<number> = []
  let recovered = -1
  const started = yield* Deferred.make<void>()
  const reader = yield* child.stdout.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.runForEach((line) =>
      Effect.sync(() => {
        const [word, n] = line.split(" ")
        if (word === "ready") recovered = Number(n)
        if (word === "ack") {
          acked.push(Number(n))
          Deferred.doneUnsafe(started, Effect.void)
        }
      })
    ),
    Effect.forkChild
  )
  yield* Deferred.await(started).pipe(Effect.timeout("30 seconds"))
  yield* Effect.sleep(ms)
  yield* child.kill({ killSignal: "SIGKILL" })
  // Everything the child printed before it died has been read once stdout ends.
  yield* Fiber.join(reader)
  const run: Run = { acked, recovered }
  return run
})

describe("Wal under SIGKILL", () => {
  it.live(
    "every acknowledged record survives a killed writer, across repeated kills",
    () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        const file = path.join(yield* fs.makeTempDirectoryScoped({ prefix: "synod-kill-" }), "wal")
        const allAcked = new Set<number>()
        for (let round = 0; round < 5; round++) {
          const ms = yield* Random.nextIntBetween(20, 400)
          const run = yield* runAndKill(file, ms)
          assert.isAbove(run.acked.length, 0, `round ${round}`)
          for (const seq of run.acked) allAcked.add(seq)
          // Recovery after the kill, as the next process would do it.
          const { state, recovery } = yield* Effect.scoped(
            Effect.flatMap(Wal.open(file), (wal) =>
              Effect.map(wal.load, (state) => ({ state, recovery: wal.recovery }))
            )
          )
          const missing = [...allAcked].filter((seq) => !state.accepted.has(seq))
          assert.deepStrictEqual(missing, [], `round ${round} (killed after ${ms} ms): acknowledged records lost`)
          // Nothing invented: every recovered pvalue is exactly what the child appended for it.
          for (const [slot, pv] of state.accepted) {
            assert.deepStrictEqual(pv, record(slot).accepted[0], `round ${round}: slot ${slot}`)
          }
          const highest = Math.max(...state.accepted.keys())
          assert.strictEqual(state.promised.round, highest, `round ${round}: promise is the last record's`)
          // The file now opens cleanly: no damage left, the torn tail (if any) is gone.
          const scan = Frame.scan(yield* fs.readFile(file))
          assert.isUndefined(scan.damage, `round ${round}: ${recovery.tornReason}`)
          assert.strictEqual(scan.frames.length, recovery.records)
          if (round > 0) assert.isAtLeast(run.recovered, 1)
        }
      }).pipe(Effect.provide(NodeServices.layer)),
    60_000
  )
})

import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option } from "effect"
import { TestClock } from "effect/testing"
import { Ballot, Command, Storage } from "@synod/core"

const pv = (round: number, slot: number, client: string) =>
  new Command.PValue({
    ballot: Ballot.make(round, "s1"),
    slot,
    value: new Command.Batch({ commands: [new Command.Command({ client, seq: 1, acked: 0, op: null })] })
  })

describe("in-memory storage", () => {
  it.effect("the disk outlives the stores built on it", () =>
    Effect.gen(function* () {
      const disk = new Storage.MemoryDisk()
      const first = Storage.makeMemory(disk)
      const acc = yield* first.acceptor("a1")
      yield* acc.append({ promised: Ballot.make(3, "s1"), accepted: [pv(3, 1, "x"), pv(3, 2, "y")] })
      yield* acc.append({ promised: Ballot.make(2, "s2"), accepted: [pv(1, 1, "old"), pv(4, 2, "z")] })
      const leader = yield* first.leader("l1")
      yield* leader.saveRound(7)
      yield* leader.saveRound(5)
      const replica = yield* first.replica("r1")
      yield* replica.save({ slotOut: 4, state: { k: "v" }, clients: [] })

      // a "restart": new stores over the same disk
      const second = Storage.makeMemory(disk)
      const state = yield* (yield* second.acceptor("a1")).load
      assert.deepStrictEqual(state.promised, Ballot.make(3, "s1"))
      assert.strictEqual(state.accepted.get(1)?.value._tag, "Batch")
      assert.deepStrictEqual(state.accepted.get(1), pv(3, 1, "x"), "a lower ballot never replaces a higher one")
      assert.deepStrictEqual(state.accepted.get(2), pv(4, 2, "z"))
      assert.strictEqual(yield* (yield* second.leader("l1")).loadRound, 7)
      const snap = yield* (yield* second.replica("r1")).load
      assert.deepStrictEqual(Option.getOrUndefined(snap)?.slotOut, 4)
      assert.isTrue(Option.isNone(yield* (yield* second.replica("other")).load))
      disk.wipe("a1")
      assert.strictEqual((yield* (yield* second.acceptor("a1")).load).accepted.size, 0)
    })
  )

  it.effect("an acceptor's GC watermark drops the slots below it and is kept; a replica's disk can be lost alone", () =>
    Effect.gen(function* () {
      const disk = new Storage.MemoryDisk()
      const storage = Storage.makeMemory(disk)
      const acc = yield* storage.acceptor("s1")
      yield* acc.append({ promised: Ballot.make(1, "s1"), accepted: [pv(1, 1, "a"), pv(1, 2, "b"), pv(1, 3, "c")] })
      yield* acc.append({ promised: Ballot.make(1, "s1"), accepted: [pv(1, 4, "d")], watermark: 3 })
      yield* acc.append({ promised: Ballot.make(1, "s1"), accepted: [pv(2, 2, "late")], watermark: 2 })
      const state = yield* (yield* Storage.makeMemory(disk).acceptor("s1")).load
      assert.strictEqual(state.watermark, 3, "the watermark only grows")
      assert.deepStrictEqual([...state.accepted.keys()].sort(), [3, 4], "nothing below it, not even a late accept")
      yield* (yield* storage.replica("s1")).save({ slotOut: 9, state: {}, clients: [] })
      disk.wipeReplica("s1")
      assert.isTrue(Option.isNone(yield* (yield* storage.replica("s1")).load))
      assert.strictEqual((yield* acc.load).watermark, 3, "the acceptor on the same node keeps its disk")
    })
  )

  it.effect("a write interrupted before its sync delay is lost, one that completed is kept", () =>
    Effect.gen(function* () {
      const disk = new Storage.MemoryDisk()
      const storage = Storage.makeMemory(disk, { syncDelay: 5 })
      const leader = yield* storage.leader("l1")
      const done = yield* Effect.forkChild(leader.saveRound(1))
      yield* TestClock.adjust(5)
      yield* Fiber.join(done)
      const torn = yield* Effect.forkChild(leader.saveRound(2))
      yield* TestClock.adjust(2)
      yield* Fiber.interrupt(torn)
      yield* TestClock.adjust(10)
      assert.strictEqual(yield* leader.loadRound, 1)
    })
  )
})

/**
 * Scripted scenarios with exact interleavings, outside the random simulator.
 */
import { assert, describe, it } from "@effect/vitest"
import { Address, Ballot, ClusterConfig, Command, InMemoryBus, Message, Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { Effect, Exit, Fiber, Layer, Queue, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Client, Commander, Scout, Server } from "@synod/actors"
import { recording } from "./Recording.ts"

const b1 = Ballot.make(1, "l1")
const b2 = Ballot.make(2, "l1")
const p2b = (from: string, ballot: Ballot.Ballot, request: Ballot.Ballot, slot: number) =>
  new Message.Envelope({
    from: Address.acceptor(from),
    to: Address.leader("l1"),
    message: new Message.P2b({ ballot, request, slot })
  })

/** A commander of l1 at ballot b2 for `slot`, with acceptors a1..a3, resending every 100 ms. */
const commanderOptions = (
  inbox: Queue.Dequeue<Message.Envelope>,
  slot: number,
  value: Command.SlotValue,
  replicas: ReadonlyArray<string>
): Commander.Options => ({
  leader: Address.leader("l1"),
  ballot: b2,
  slot,
  value,
  acceptors: ["a1", "a2", "a3"],
  replicas,
  inbox,
  retransmitMs: 100,
  probe: undefined
})

describe("a commander", () => {
  it.effect("does not count a rejection of an old ballot's P2a as a vote for its own (B3)", () =>
    Effect.gen(function* () {
      const { sent, layer } = recording()
      const inbox = yield* Queue.unbounded<Message.Envelope>()
      const value = new Command.Batch({ commands: [new Command.Command({ client: "c", seq: 1, acked: 0, op: null })] })
      const fiber = yield* Commander.run(commanderOptions(inbox, 7, value, ["r1"])).pipe(
        Effect.provide(layer),
        Effect.forkChild
      )
      // a1 and a2 promised b2, and reply to an old commander's P2a(b1, 7): not acceptances of b2
      yield* Queue.offerAll(inbox, [p2b("a1", b2, b1, 7), p2b("a2", b2, b1, 7), p2b("a2", b2, b2, 8)])
      yield* TestClock.adjust(1)
      assert.isUndefined(fiber.pollUnsafe(), "no decision from replies to another ballot or slot")
      // a real acceptance from a1, duplicated, then a lower ballot: still no majority, no preemption
      yield* Queue.offerAll(inbox, [p2b("a1", b2, b2, 7), p2b("a1", b2, b2, 7), p2b("a3", b1, b1, 7)])
      yield* TestClock.adjust(1)
      assert.isUndefined(fiber.pollUnsafe())
      yield* Queue.offer(inbox, p2b("a3", b2, b2, 7))
      const outcome = yield* Fiber.join(fiber)
      assert.strictEqual(outcome._tag, "Decided")
      const decisions = sent.filter((e) => e.message._tag === "Decision")
      assert.deepStrictEqual(
        decisions.map((e) => e.to),
        ["replica/r1"]
      )
    })
  )

  it.effect("sends a Chosen to the replicas whose acceptor voted, the Decision to the others and the learners", () =>
    Effect.gen(function* () {
      const { sent, layer } = recording()
      const inbox = yield* Queue.unbounded<Message.Envelope>()
      const value = new Command.Batch({ commands: [new Command.Command({ client: "c", seq: 1, acked: 0, op: null })] })
      const fiber = yield* Commander.run({
        ...commanderOptions(inbox, 4, value, ["a1", "a2", "a3", "r4"]),
        learners: ["a1"]
      }).pipe(Effect.provide(layer), Effect.forkChild)
      yield* Queue.offerAll(inbox, [p2b("a3", b2, b2, 4), p2b("a1", b2, b2, 4)])
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "Decided")
      const told = sent
        .filter((e) => e.message._tag === "Decision" || e.message._tag === "Chosen")
        .map((e) => `${e.to} ${e.message._tag}`)
      assert.deepStrictEqual(told, [
        "replica/a1 Chosen",
        "replica/a2 Decision",
        "replica/a3 Chosen",
        "replica/r4 Decision",
        "learner/a1 Decision"
      ])
      const chosen = sent.find((e) => e.message._tag === "Chosen")!.message as Message.Chosen
      assert.deepStrictEqual([chosen.slot, chosen.ballot], [4, b2])
    })
  )

  it.effect("deferring: owes its leader the other voters' Chosen, and sends what it was handed after its P2a", () =>
    Effect.gen(function* () {
      const { sent, layer } = recording()
      const inbox = yield* Queue.unbounded<Message.Envelope>()
      const fiber = yield* Commander.run({
        ...commanderOptions(inbox, 4, Command.noop, ["l1", "a2", "a3", "r4"]),
        acceptors: ["l1", "a2", "a3"],
        deferChosen: true,
        piggyback: [{ replica: "a3", chosen: new Message.Chosen({ slot: 3, ballot: b2 }) }]
      }).pipe(Effect.provide(layer), Effect.forkChild)
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(
        sent.map((e) => `${e.to} ${e.message._tag}`),
        ["acceptor/l1 P2a", "acceptor/a2 P2a", "acceptor/a3 P2a", "replica/a3 Chosen"]
      )
      yield* Queue.offerAll(inbox, [
        new Message.Envelope({
          from: Address.acceptor("l1"),
          to: Address.leader("l1"),
          message: new Message.P2b({ ballot: b2, request: b2, slot: 4 })
        }),
        p2b("a2", b2, b2, 4)
      ])
      const outcome = yield* Fiber.join(fiber)
      assert.strictEqual(outcome._tag, "Decided")
      assert.deepStrictEqual(outcome._tag === "Decided" ? outcome.owed : undefined, ["a2"])
      // a3's acceptor has not voted yet: its leader waits for the vote; r4 has no acceptor
      assert.deepStrictEqual(outcome._tag === "Decided" ? outcome.awaiting : undefined, ["a3"])
      assert.deepStrictEqual(
        sent.slice(4).map((e) => `${e.to} ${e.message._tag}`),
        ["replica/l1 Chosen", "replica/r4 Decision"]
      )
    })
  )

  it.effect("resends P2a to the acceptors that have not answered, on a schedule", () =>
    Effect.gen(function* () {
      const { sent, layer } = recording()
      const inbox = yield* Queue.unbounded<Message.Envelope>()
      yield* Commander.run(commanderOptions(inbox, 1, Command.noop, [])).pipe(Effect.provide(layer), Effect.forkChild)
      yield* TestClock.adjust(1)
      assert.strictEqual(sent.length, 3)
      yield* Queue.offer(inbox, p2b("a1", b2, b2, 1))
      yield* TestClock.adjust(100)
      assert.deepStrictEqual(
        sent
          .slice(3)
          .map((e) => e.to)
          .sort(),
        ["acceptor/a2", "acceptor/a3"]
      )
    })
  )

  it.effect("backs off: resends after 100 ms, then twice as long each time, up to 8 × retransmitMs", () =>
    Effect.gen(function* () {
      const { sent, layer } = recording()
      const inbox = yield* Queue.unbounded<Message.Envelope>()
      yield* Commander.run(commanderOptions(inbox, 1, Command.noop, [])).pipe(Effect.provide(layer), Effect.forkChild)
      yield* TestClock.adjust(1)
      yield* Queue.offer(inbox, p2b("a1", b2, b2, 1))
      // a2 and a3 never answer: resends at 100, 300, 700, 1500, then every 800 ms
      const at: Array<number> = []
      for (let t = 1; t < 3100; t++) {
        const before = sent.length
        yield* TestClock.adjust(1)
        if (sent.length > before) {
          at.push(t + 1) // ms since the first send
          assert.deepStrictEqual(
            sent
              .slice(before)
              .map((e) => e.to)
              .sort(),
            ["acceptor/a2", "acceptor/a3"]
          )
        }
      }
      assert.deepStrictEqual(at, [100, 300, 700, 1500, 2300, 3100])
    })
  )

  it.effect(
    "a scout does not back off: it resends P1a every retransmitMs, so a new leader hears acceptors soon after their lease ends",
    () =>
      Effect.gen(function* () {
        const { sent, layer } = recording()
        const inbox = yield* Queue.unbounded<Message.Envelope>()
        yield* Scout.run({
          leader: Address.leader("l1"),
          ballot: b2,
          acceptors: ["a1", "a2", "a3"],
          inbox,
          retransmitMs: 100
        }).pipe(Effect.provide(layer), Effect.forkChild)
        yield* TestClock.adjust(1)
        assert.strictEqual(sent.length, 3)
        const at: Array<number> = []
        for (let t = 1; t < 500; t++) {
          const before = sent.length
          yield* TestClock.adjust(1)
          if (sent.length > before) at.push(t + 1) // ms since the first send
        }
        assert.deepStrictEqual(at, [100, 200, 300, 400, 500])
      })
  )

  it.effect("ends preempted on a higher ballot and ignores lower ones (B5)", () =>
    Effect.gen(function* () {
      const { layer } = recording()
      const inbox = yield* Queue.unbounded<Message.Envelope>()
      const fiber = yield* Commander.run(commanderOptions(inbox, 1, Command.noop, [])).pipe(
        Effect.provide(layer),
        Effect.forkChild
      )
      yield* Queue.offer(inbox, p2b("a1", b1, b1, 1))
      yield* TestClock.adjust(1)
      assert.isUndefined(fiber.pollUnsafe())
      const b3 = Ballot.make(3, "l2")
      yield* Queue.offer(inbox, p2b("a2", b3, b2, 1))
      const outcome = yield* Fiber.join(fiber)
      assert.deepStrictEqual(outcome, { _tag: "Preempted", ballot: b2, by: b3 })
    })
  )
})

// ---- whole clusters on the bus, in real time with short timeouts

const fast = (ids: { acceptors: Array<string>; leaders: Array<string>; replicas: Array<string> }) =>
  ClusterConfig.make({
    ...ids,
    timeouts: { retransmitMs: 10, heartbeatMs: 10, leaderTimeoutMs: 40, maxLeaderTimeoutMs: 400, clientTimeoutMs: 5000 }
  })

const clusterOf = (config: ClusterConfig.ClusterConfig) => {
  return Server.layerCluster(config, Kv.machine).pipe(
    Layer.provideMerge(Storage.layerMemory()),
    Layer.provideMerge(InMemoryBus.layer())
  )
}

describe("clusters in scripted situations", () => {
  const split = fast({ acceptors: ["a1", "a2", "a3"], leaders: ["l1", "l2"], replicas: ["r1", "r2"] })

  it.live(
    "an acceptor that missed phase 1 still votes in phase 2 (B5)",
    () =>
      Effect.gen(function* () {
        const bus = yield* InMemoryBus.InMemoryBus
        // a3 never hears l1's P1a; l1 is adopted by a1 and a2
        yield* bus.cut("leader/l1", "acceptor/a3")
        const client = yield* Client.make(Kv.machine, split)
        yield* client.submit({ _tag: "Put", key: "k", value: "1" })
        // now a1 is gone: every decision needs a3, which never promised l1's ballot
        yield* bus.heal
        yield* bus.isolate("a1")
        for (let i = 0; i < 5; i++) yield* client.submit({ _tag: "Put", key: "k", value: `v${i}` })
        assert.deepStrictEqual(yield* client.submit({ _tag: "Get", key: "k" }), {
          _tag: "Value",
          value: "v4",
          version: 6
        })
      }).pipe(Effect.provide(clusterOf(split))),
    20_000
  )

  it.live(
    "two leaders that both compete converge on one, and commands commit (dueling leaders)",
    () =>
      Effect.gen(function* () {
        const bus = yield* InMemoryBus.InMemoryBus
        // l2 cannot hear l1's heartbeats, so it keeps competing with l1
        yield* bus.cut("leader/l1", "leader/l2")
        const client = yield* Client.make(Kv.machine, split)
        for (let i = 0; i < 20; i++) yield* client.submit({ _tag: "Put", key: "k", value: `v${i}` })
        assert.deepStrictEqual(yield* client.submit({ _tag: "Get", key: "k" }), {
          _tag: "Value",
          value: "v19",
          version: 20
        })
        const stats = yield* bus.stats
        assert.isAbove(stats.delivered, 0)
      }).pipe(Effect.provide(clusterOf(split))),
    30_000
  )

  it.live(
    "the cluster keeps working when the active leader is cut off, and when it returns",
    () =>
      Effect.gen(function* () {
        const bus = yield* InMemoryBus.InMemoryBus
        const client = yield* Client.make(Kv.machine, split)
        yield* client.submit({ _tag: "Put", key: "k", value: "before" })
        yield* bus.isolate("l1")
        yield* client.submit({ _tag: "Put", key: "k", value: "during" })
        yield* bus.reconnect("l1")
        yield* client.submit({ _tag: "Put", key: "k", value: "after" })
        assert.deepStrictEqual(yield* client.submit({ _tag: "Get", key: "k" }), {
          _tag: "Value",
          value: "after",
          version: 3
        })
      }).pipe(Effect.provide(clusterOf(split))),
    30_000
  )

  it.live(
    "a leader isolated for a long time does not depose the working leader when it returns (B15)",
    () =>
      Effect.gen(function* () {
        const bus = yield* InMemoryBus.InMemoryBus
        // a lease long enough for real time on a busy machine; l2 is cut off far longer
        const config = ClusterConfig.make({
          ...split,
          timeouts: { retransmitMs: 10, heartbeatMs: 10, leaderTimeoutMs: 200, maxLeaderTimeoutMs: 400 }
        })
        const servers = yield* Effect.forEach(["a1", "a2", "a3", "l1", "l2", "r1", "r2"], (id) =>
          Server.run({ id, config, machine: Kv.machine })
        )
        const leader = (id: string) =>
          Effect.map(
            Effect.forEach(servers, (s) => s.status),
            (all) => all.find((s) => s.id === id)!.leader!
          )
        const client = yield* Client.make(Kv.machine, config)
        yield* client.submit({ _tag: "Put", key: "k", value: "0" })
        assert.isTrue((yield* leader("l1")).active)
        const stable = (yield* leader("l1")).ballot
        // l2 hears nothing for a long while: it suspects l1 and keeps trying higher ballots
        yield* bus.isolate("l2")
        for (let i = 1; i <= 30; i++) {
          yield* client.submit({ _tag: "Put", key: "k", value: `${i}` })
          yield* Effect.sleep("50 millis")
        }
        assert.isTrue(Ballot.greaterThan((yield* leader("l2")).ballot, stable), "l2 did compete while cut off")
        yield* bus.reconnect("l2")
        // l1 keeps working: l2's higher ballot meets acceptors that l1 keeps busy
        for (let i = 31; i <= 60; i++) {
          yield* client.submit({ _tag: "Put", key: "k", value: `${i}` })
          yield* Effect.sleep("10 millis")
        }
        const after = yield* leader("l1")
        assert.isTrue(after.active, "l1 still leads")
        assert.deepStrictEqual(after.ballot, stable, "and was never preempted")
      }).pipe(Effect.provide(Storage.layerMemory()), Effect.provide(InMemoryBus.layer())),
    30_000
  )

  it.live(
    "acceptors forget what f + 1 replicas hold; stranded and wiped replicas catch up by state transfer; a new leader skips the forgotten slots",
    () => {
      const disk = new Storage.MemoryDisk()
      return Effect.gen(function* () {
        const bus = yield* InMemoryBus.InMemoryBus
        const config = ClusterConfig.make({ ...split, replicas: ["r1", "r2", "r3"], snapshotEvery: 10 })
        const servers = yield* Effect.forEach(["a1", "a2", "a3", "l1", "l2", "r1", "r2"], (id) =>
          Server.run({ id, config, machine: Kv.machine })
        )
        const startR3 = Effect.gen(function* () {
          const scope = yield* Scope.make()
          const handle = yield* Server.run({ id: "r3", config, machine: Kv.machine }).pipe(Scope.provide(scope))
          return { scope, handle }
        })
        let r3 = yield* startR3
        const status = (id: string) =>
          id === "r3"
            ? r3.handle.status
            : Effect.map(
                Effect.forEach(servers, (s) => s.status),
                (all) => all.find((s) => s.id === id)!
              )
        const caughtUp = Effect.gen(function* () {
          for (let i = 0; i < 200; i++) {
            const [a, b] = [(yield* status("r1")).replica!, (yield* status("r3")).replica!]
            if (a.slotOut === b.slotOut) return JSON.stringify(b.state) === JSON.stringify(a.state)
            yield* Effect.sleep("25 millis")
          }
          return false
        })
        const client = yield* Client.make(Kv.machine, config)
        const put = (i: number) => client.submit({ _tag: "Put", key: `k${i % 7}`, value: `${i}` })
        for (let i = 1; i <= 30; i++) yield* put(i)

        // r3 misses several garbage collections
        yield* bus.isolate("r3")
        for (let i = 31; i <= 180; i++) yield* put(i)
        // progress reports reach the acceptors on a timer; the leader hears of it in P2bs
        let extra = 181
        for (let i = 0; i < 60; i++) {
          const [a, l] = [(yield* status("a1")).acceptor!, (yield* status("l1")).leader!]
          if (a.watermark > 100 && a.accepted < 40 && l.watermark > 100 && l.retained < 60) break
          yield* put(extra++)
          yield* Effect.sleep("50 millis")
        }
        const a1 = (yield* status("a1")).acceptor!
        assert.isAbove(a1.watermark, 100, "r1 and r2 (f + 1 = 2) hold the slots durably: acceptors forgot them")
        assert.isBelow(a1.accepted, 40)
        const l1 = (yield* status("l1")).leader!
        assert.isAbove(l1.watermark, 100, "the leader learned the watermark from the acceptors")
        assert.isBelow(l1.retained, 60, "and forgot the slots below it")
        yield* bus.reconnect("r3")
        assert.isTrue(yield* caughtUp, "the stranded replica copied a peer's state")

        // r3 loses its disk
        yield* Scope.close(r3.scope, Exit.void)
        disk.wipeReplica("r3")
        r3 = yield* startR3
        assert.isTrue(yield* caughtUp, "the wiped replica copied a peer's state")
        let durable = 0
        for (let i = 0; i < 100 && durable <= 100; i++) {
          durable = (yield* status("r3")).replica!.durable
          if (durable <= 100) yield* Effect.sleep("20 millis")
        }
        assert.isAbove(durable, 100, "and saved it")

        // fail over: l2 adopts above the watermark, with little state
        yield* bus.isolate("l1")
        for (let i = 0; i < 10; i++) yield* put(extra++)
        const l2 = (yield* status("l2")).leader!
        assert.isTrue(l2.active)
        assert.isAbove(l2.watermark, 100)
        assert.isBelow(l2.retained, 60)
        const last = extra - 1
        const read = yield* client.submit({ _tag: "Get", key: `k${last % 7}` })
        assert.strictEqual(read._tag === "Value" ? read.value : undefined, `${last}`)
      }).pipe(Effect.provide(Storage.layerMemory(disk)), Effect.provide(InMemoryBus.layer()))
    },
    30_000
  )
})

/**
 * The learner (docs/adding-a-role.md's worked example): its core alone, then in a cluster
 * on the bus, where its log must be the replicas' log, also after it was cut off.
 */
import { assert, describe, it } from "@effect/vitest"
import { Ballot, ClusterConfig, Command, InMemoryBus, Message, Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { Effect, Layer, Queue } from "effect"
import { Client, Learner, Server } from "@synod/actors"

const config = ClusterConfig.make({
  acceptors: ["s1", "s2", "s3"],
  leaders: ["s1", "s2", "s3"],
  replicas: ["s1", "s2", "s3"],
  learners: ["w1"],
  snapshotEvery: 4,
  timeouts: { retransmitMs: 10, heartbeatMs: 10, leaderTimeoutMs: 40, maxLeaderTimeoutMs: 400, clientTimeoutMs: 5000 }
})

const put = (seq: number) =>
  new Command.Batch({ commands: [new Command.Command({ client: "c", seq, acked: 0, op: { _tag: "Put", key: "k" } })] })
const decision = (slot: number): Learner.Input => ({
  _tag: "Message",
  from: "leader/s1",
  message: new Message.Decision({ slot, value: put(slot), ballot: Ballot.make(1, "s1") })
})
const heartbeat = (slot: number, watermark = 1): Learner.Input => ({
  _tag: "Message",
  from: "leader/s1",
  message: new Message.Heartbeat({ ballot: Ballot.make(1, "s1"), active: true, decided: slot, slot, watermark })
})

describe("the learner's core", () => {
  it("reports each decision once, in slot order, whatever order and how often they arrive", () => {
    const core = new Learner.LearnerCore(config)
    for (const slot of [2, 1, 2, 4, 3, 1]) core.step(decision(slot))
    const learned = core.out.drain().events.map((e) => (e._tag === "Learned" ? e.slot : -1))
    assert.deepStrictEqual(learned, [1, 2, 3, 4])
    assert.strictEqual(core.slotOut, 5)
  })

  it("asks the active leader for the slots it misses, up to what is known decided", () => {
    const core = new Learner.LearnerCore(config)
    core.step(decision(2))
    core.step(heartbeat(3))
    core.out.drain()
    core.step({ _tag: "Tick" })
    const asked = core.out.drain().send.map((o) => `${o.to} ${(o.message as Message.Propose).slot}`)
    assert.deepStrictEqual(asked, ["leader/s1 1", "leader/s1 3"])
  })

  it("skips to the GC watermark when the decisions below are gone, and says so", () => {
    const core = new Learner.LearnerCore(config)
    core.step(decision(1))
    core.step(decision(7))
    core.step(heartbeat(9, 7))
    const events = core.out.drain().events
    assert.deepStrictEqual(
      events.map((e) => (e._tag === "Learned" ? `learned ${e.slot}` : `skipped ${e.from}-${e.to}`)),
      ["learned 1", "skipped 2-7", "learned 7"]
    )
  })
})

describe("a learner in a cluster", () => {
  // garbage collection does not wait for learners: keep it out of the way here
  const cluster = ClusterConfig.make({ ...config, snapshotEvery: 1000 })

  it.live(
    "learns exactly the replicas' log, also the part it missed while cut off",
    () =>
      Effect.gen(function* () {
        const bus = yield* InMemoryBus.InMemoryBus
        const log = yield* Queue.unbounded<readonly [number, Command.SlotValue]>()
        yield* Learner.run("w1", cluster, (slot, value) => Queue.offerUnsafe(log, [slot, value] as const))
        const client = yield* Client.make(Kv.machine, cluster)
        for (let i = 0; i < 5; i++) yield* client.submit({ _tag: "Put", key: "k", value: `a${i}` })
        // cut off for a while: decisions are lost on the way; it asks for them afterwards
        yield* bus.isolate("w1")
        for (let i = 0; i < 3; i++) yield* client.submit({ _tag: "Put", key: "k", value: `b${i}` })
        yield* bus.reconnect("w1")
        for (let i = 0; i < 3; i++) yield* client.submit({ _tag: "Put", key: "k", value: `c${i}` })
        // every value written appears in the learned log, in the order written
        const written = [0, 1, 2, 3, 4].map((i) => `a${i}`).concat(["b0", "b1", "b2", "c0", "c1", "c2"])
        const values: Array<string> = []
        let last = 0
        while (values.length < written.length) {
          const [slot, value] = yield* Queue.take(log)
          assert.strictEqual(slot, last + 1, "slots in order, none twice, none skipped")
          last = slot
          if (value._tag === "Batch") for (const c of value.commands) values.push((c.op as { value: string }).value)
        }
        assert.deepStrictEqual(values, written)
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Server.layerCluster(cluster, Kv.machine).pipe(
            Layer.provideMerge(Storage.layerMemory()),
            Layer.provideMerge(InMemoryBus.layer())
          )
        )
      ),
    20_000
  )
})

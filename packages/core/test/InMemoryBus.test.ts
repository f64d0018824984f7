import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Layer, Queue, Random } from "effect"
import { TestClock } from "effect/testing"
import { Address, Command, InMemoryBus, Message, Transport } from "@synod/core"
import { transportContract } from "@synod/testing/TransportContract"

transportContract("in-memory bus", InMemoryBus.layer())
transportContract("in-memory bus without the codec", InMemoryBus.layer({ encode: false }), "tcn")
transportContract("in-memory bus with delays", InMemoryBus.layer({ faults: { minDelay: 1, maxDelay: 3 } }), "tcd")

const env = (from: string, to: string, seq: number) =>
  new Message.Envelope({
    from: from as Address.Address,
    to: to as Address.Address,
    message: new Message.Request({ command: new Command.Command({ client: "t", seq, acked: 0, op: null }) })
  })

const seqs = (q: Queue.Dequeue<Message.Envelope>) =>
  Effect.map(Queue.clear(q), (es) => es.map((e) => (e.message._tag === "Request" ? e.message.command.seq : -1)))

/** Sends `n` messages a → b and returns the seqs b received, in order. */
const blast = (n: number, from = "replica/a", to = "replica/b") =>
  Effect.gen(function* () {
    const t = yield* Transport.Transport
    const q = yield* t.listen(to as Address.Address)
    for (let i = 1; i <= n; i++) yield* t.send(to as Address.Address, env(from, to, i))
    yield* TestClock.adjust("1 second")
    return yield* seqs(q)
  })

const withBus =
  (options: InMemoryBus.Options, seed = "bus") =>
  <A, E, R>(eff: Effect.Effect<A, E, R>) =>
    eff.pipe(Effect.provide(Layer.fresh(InMemoryBus.layer(options))), Random.withSeed(seed))

describe("InMemoryBus faults", () => {
  it.effect("loss rate drops about that share of messages", () =>
    Effect.gen(function* () {
      const got = yield* blast(2000).pipe(withBus({ faults: { lossRate: 0.3 } }))
      assert.isAbove(got.length, 1250)
      assert.isBelow(got.length, 1550)
      const none = yield* blast(100).pipe(withBus({ faults: { lossRate: 1 } }))
      assert.strictEqual(none.length, 0)
    })
  )

  it.effect("duplication delivers copies", () =>
    Effect.gen(function* () {
      const all = yield* blast(200).pipe(withBus({ faults: { duplicateRate: 1 } }))
      assert.strictEqual(all.length, 400)
      const some = yield* blast(2000).pipe(withBus({ faults: { duplicateRate: 0.5 } }))
      assert.isAbove(some.length, 2850)
      assert.isBelow(some.length, 3150)
    })
  )

  it.effect("a replayed duplicate can arrive long after the original", () =>
    Effect.gen(function* () {
      const bus = yield* InMemoryBus.InMemoryBus
      const t = yield* Transport.Transport
      const q = yield* t.listen("replica/b")
      yield* bus.setFaults({ duplicateRate: 1, minDelay: 1, maxDelay: 1, maxReplayDelay: 500 })
      for (let i = 1; i <= 50; i++) yield* t.send("replica/b", env("replica/a", "replica/b", i))
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(
        yield* seqs(q),
        Array.from({ length: 50 }, (_, i) => i + 1)
      )
      yield* TestClock.adjust(100)
      const early = (yield* seqs(q)).length
      yield* TestClock.adjust(500)
      const late = (yield* seqs(q)).length
      assert.isBelow(early, 20)
      assert.strictEqual(early + late, 50)
    }).pipe(withBus({}))
  )

  it.effect("replay sends recent messages again", () =>
    Effect.gen(function* () {
      const bus = yield* InMemoryBus.InMemoryBus
      const t = yield* Transport.Transport
      const q = yield* t.listen("replica/b")
      for (let i = 1; i <= 20; i++) yield* t.send("replica/b", env("replica/a", "replica/b", i))
      assert.strictEqual((yield* seqs(q)).length, 20)
      assert.strictEqual(yield* bus.replay(5), 5)
      const again = yield* seqs(q)
      assert.strictEqual(again.length, 5)
      for (const s of again) assert.isAbove(s, 10, "only the last 10 are remembered")
      // replaying one node's messages: what that node sent, however much others sent since
      yield* t.send("replica/b", env("replica/c", "replica/b", 99))
      for (let i = 21; i <= 40; i++) yield* t.send("replica/b", env("replica/a", "replica/b", i))
      yield* seqs(q)
      assert.strictEqual(yield* bus.replay(3, "c"), 1)
      assert.deepStrictEqual(yield* seqs(q), [99])
    }).pipe(withBus({ replayBuffer: 10 }))
  )

  it.effect("delays reorder messages but deliver them all", () =>
    Effect.gen(function* () {
      const got = yield* blast(200).pipe(withBus({ faults: { minDelay: 0, maxDelay: 20 } }))
      assert.strictEqual(got.length, 200)
      assert.notDeepEqual(
        got,
        [...got].sort((a, b) => a - b)
      )
      assert.deepStrictEqual(
        [...got].sort((a, b) => a - b),
        Array.from({ length: 200 }, (_, i) => i + 1)
      )
    })
  )

  it.effect("a partition drops messages between groups until it heals", () =>
    Effect.gen(function* () {
      const bus = yield* InMemoryBus.InMemoryBus
      const t = yield* Transport.Transport
      const b = yield* t.listen("replica/b")
      const c = yield* t.listen("replica/c")
      yield* bus.partition([["a", "c"], ["b"]])
      yield* t.send("replica/b", env("replica/a", "replica/b", 1))
      yield* t.send("replica/c", env("replica/a", "replica/c", 2))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* seqs(b), [])
      assert.deepStrictEqual(yield* seqs(c), [2])
      yield* bus.heal
      yield* t.send("replica/b", env("replica/a", "replica/b", 3))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* seqs(b), [3])
    }).pipe(withBus({ faults: { minDelay: 1, maxDelay: 5 } }))
  )

  it.effect("a partition made while messages are in flight drops them", () =>
    Effect.gen(function* () {
      const bus = yield* InMemoryBus.InMemoryBus
      const t = yield* Transport.Transport
      const b = yield* t.listen("replica/b")
      yield* t.send("replica/b", env("replica/a", "replica/b", 1))
      yield* bus.isolate("b")
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* seqs(b), [])
    }).pipe(withBus({ faults: { minDelay: 5, maxDelay: 5 } }))
  )

  it.effect("a cut is one-way; isolating a node cuts all its roles", () =>
    Effect.gen(function* () {
      const bus = yield* InMemoryBus.InMemoryBus
      const t = yield* Transport.Transport
      const a = yield* t.listen("replica/a")
      const b = yield* t.listen("replica/b")
      const la = yield* t.listen("leader/a")
      yield* bus.cut("replica/a", "b")
      yield* t.send("replica/b", env("replica/a", "replica/b", 1))
      yield* t.send("replica/a", env("replica/b", "replica/a", 2))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* seqs(b), [])
      assert.deepStrictEqual(yield* seqs(a), [2])
      yield* bus.heal
      yield* bus.isolate("a")
      yield* t.send("leader/a", env("replica/b", "leader/a", 3))
      yield* t.send("replica/b", env("leader/a", "replica/b", 4))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* seqs(la), [])
      assert.deepStrictEqual(yield* seqs(b), [])
      yield* bus.reconnect("a")
      yield* t.send("leader/a", env("replica/b", "leader/a", 5))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* seqs(la), [5])
      const stats = yield* bus.stats
      assert.strictEqual(stats.dropped, 3)
    }).pipe(withBus({}))
  )

  it.effect("garbage injected on the wire is counted and dropped", () =>
    Effect.gen(function* () {
      const bus = yield* InMemoryBus.InMemoryBus
      const t = yield* Transport.Transport
      const b = yield* t.listen("replica/b")
      yield* bus.injectRaw("x", "replica/b", "{not json")
      yield* bus.injectRaw("x", "replica/b", new Uint8Array([0xff, 0xfe, 0x00]))
      yield* bus.injectRaw(
        "x",
        "replica/b",
        JSON.stringify({ from: "replica/x", to: "replica/b", message: { _tag: "P1a" } })
      )
      yield* t.send("replica/b", env("replica/a", "replica/b", 1))
      assert.deepStrictEqual(yield* seqs(b), [1])
      assert.strictEqual((yield* bus.stats).decodeErrors, 3)
    }).pipe(withBus({}))
  )

  const traced = (seed: string) =>
    Effect.gen(function* () {
      const bus = yield* InMemoryBus.InMemoryBus
      const t = yield* Transport.Transport
      const t0 = yield* Clock.currentTimeMillis
      yield* t.listen("replica/b")
      yield* t.listen("replica/c")
      for (let i = 1; i <= 300; i++) {
        yield* t.send(i % 2 ? "replica/b" : "replica/c", env("replica/a", i % 2 ? "replica/b" : "replica/c", i))
      }
      yield* TestClock.adjust("1 second")
      return (yield* bus.trace).map((e) => `${e.time - t0} ${e.event} ${e.to}`)
    }).pipe(withBus({ trace: true, faults: { lossRate: 0.1, duplicateRate: 0.1, minDelay: 0, maxDelay: 30 } }, seed))

  it.effect("the same seed gives the same delivery trace; another seed another", () =>
    Effect.gen(function* () {
      const one = yield* traced("seed-1")
      const two = yield* traced("seed-1")
      const three = yield* traced("seed-2")
      assert.isAbove(one.length, 250)
      assert.deepStrictEqual(one, two)
      assert.notDeepEqual(one, three)
    })
  )
})

describe("InMemoryBus with encode: false", () => {
  it.effect("hands the envelope itself to every listener, and keeps its faults", () =>
    Effect.gen(function* () {
      const t = yield* Transport.Transport
      const bus = yield* InMemoryBus.InMemoryBus
      const inbox = yield* t.listen(Address.replica("r1"))
      const sent = new Message.Envelope({
        from: Address.client("c1"),
        to: Address.replica("r1"),
        message: new Message.Request({
          command: new Command.Command({ client: "c1", seq: 1, acked: 0, op: { k: "v" } })
        })
      })
      yield* t.send(Address.replica("r1"), sent)
      assert.strictEqual(yield* Queue.take(inbox), sent)
      yield* bus.isolate("r1")
      yield* t.send(Address.replica("r1"), sent)
      assert.strictEqual((yield* bus.stats).dropped, 1)
      assert.strictEqual(yield* Queue.size(inbox), 0)
    }).pipe(Effect.scoped, Effect.provide(InMemoryBus.layer({ encode: false })))
  )
})

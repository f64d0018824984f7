import { assert, describe, it } from "@effect/vitest"
import { ClusterConfig, InMemoryBus, Monotonic, type StateMachine, Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { Clock, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Client, Server } from "@synod/actors"

const config = ClusterConfig.servers(3)

const cluster = (disk = new Storage.MemoryDisk()) =>
  Server.layerCluster(config, Kv.machine).pipe(
    Layer.provideMerge(Storage.layerMemory(disk)),
    Layer.provideMerge(InMemoryBus.layer())
  )

describe("a 3-server cluster on the in-memory bus", () => {
  it.live(
    "commits commands from concurrent clients in one order",
    () =>
      Effect.gen(function* () {
        const client = yield* Client.make(Kv.machine, config)
        const r1 = yield* client.submit({ _tag: "Put", key: "a", value: "1" })
        assert.deepStrictEqual(r1, { _tag: "Written", version: 1 })
        const r2 = yield* client.submit({ _tag: "Get", key: "a" })
        assert.deepStrictEqual(r2, { _tag: "Value", value: "1", version: 1 })
        const results = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => client.submit({ _tag: "Cas", key: "counter", version: 0, value: `v${i}` }),
          { concurrency: 50 }
        )
        const swapped = results.filter((r) => r._tag === "Swapped" && r.ok).length
        assert.strictEqual(swapped, 1, "exactly one CAS from absent wins")
      }).pipe(Effect.provide(cluster())),
    20_000
  )

  it.live(
    "reads by read index see every write before them, refuse commands that are not queries and ops too large",
    () =>
      Effect.gen(function* () {
        const writer = yield* Client.make(Kv.machine, config)
        const reader = yield* Client.make(Kv.machine, config)
        for (let i = 1; i <= 20; i++) {
          yield* writer.submit({ _tag: "Put", key: "a", value: `${i}` })
          // from another client, through whichever replica answers: never behind the write
          const r = yield* reader.read({ _tag: "Get", key: "a" })
          assert.deepStrictEqual(r, { _tag: "Value", value: `${i}`, version: i })
        }
        const many = yield* Effect.forEach(
          Array.from({ length: 50 }, () => 0),
          () => reader.read({ _tag: "List", prefix: "", limit: 10 }),
          { concurrency: 50 }
        )
        assert.isTrue(many.every((r) => r._tag === "Listed" && r.revision === 20))
        const put = yield* Effect.flip(reader.read({ _tag: "Put", key: "a", value: "x" }))
        assert.strictEqual(put._tag, "CommandRejected")
        assert.include(put._tag === "CommandRejected" ? put.reason : "", "not a read-only query")
        assert.deepStrictEqual(yield* reader.read({ _tag: "Get", key: "a" }), {
          _tag: "Value",
          value: "20",
          version: 20
        })
        const huge = yield* Effect.flip(reader.read({ _tag: "List", prefix: "k".repeat(2 * 1024 * 1024), limit: 1 }))
        assert.strictEqual(huge._tag, "CommandTooLarge")
      }).pipe(Effect.provide(cluster())),
    20_000
  )

  it.live(
    "a client moves to the replica next to the leader its answers name, for commands and reads",
    () => {
      // one leader, on s2: the client starts at s1, the first configured replica (and no
      // resend on a busy machine, which would send to every replica)
      const oneLeader = ClusterConfig.make({
        acceptors: ["s1", "s2", "s3"],
        leaders: ["s2"],
        replicas: ["s1", "s2", "s3"],
        timeouts: { retransmitMs: 2000 }
      })
      return Effect.gen(function* () {
        const bus = yield* InMemoryBus.InMemoryBus
        const client = yield* Client.make(Kv.machine, oneLeader)
        for (let i = 0; i < 5; i++) yield* client.submit({ _tag: "Put", key: "a", value: `${i}` })
        for (let i = 0; i < 5; i++) yield* client.read({ _tag: "Get", key: "a" })
        const sent = (yield* bus.trace).filter(
          (e) => e.event === "deliver" && e.from === `client/${client.id}` && (e.tag === "Request" || e.tag === "Read")
        )
        assert.strictEqual(sent[0]?.to, "replica/s1", "the first request goes to the first configured replica")
        // every request after the first answer (a leader elected by then names itself)
        assert.deepStrictEqual(
          sent.slice(-8).map((e) => e.to),
          Array.from({ length: 8 }, () => "replica/s2")
        )
      }).pipe(
        Effect.provide(
          Server.layerCluster(oneLeader, Kv.machine).pipe(
            Layer.provideMerge(Storage.layerMemory(new Storage.MemoryDisk())),
            Layer.provideMerge(InMemoryBus.layer({ trace: true }))
          )
        )
      )
    },
    20_000
  )

  it.live(
    "a client waits as long as answers take before resending: a slow network is no reason to resend",
    () =>
      Effect.gen(function* () {
        const bus = yield* InMemoryBus.InMemoryBus
        const client = yield* Client.make(Kv.machine, config)
        // a command crosses the network four times: 4 × 40 ms, above `retransmitMs` (100)
        yield* bus.setFaults({ minDelay: 40, maxDelay: 40 })
        for (let i = 0; i < 12; i++) yield* client.submit({ _tag: "Put", key: "a", value: `${i}` })
        const requests = () =>
          bus.trace.pipe(
            Effect.map(
              (t) =>
                t.filter((e) => e.event === "deliver" && e.from === `client/${client.id}` && e.tag === "Request").length
            )
          )
        const before = yield* requests()
        for (let i = 0; i < 8; i++) yield* client.submit({ _tag: "Put", key: "a", value: `${i}` })
        // a fixed wait of `retransmitMs` sends each of them 4 times (32); on a busy machine
        // an answer may still come late once (a resend goes to all 3 replicas)
        assert.isAtMost((yield* requests()) - before, 11, "one request per command, at most one resent")
      }).pipe(
        Effect.provide(
          Server.layerCluster(config, Kv.machine).pipe(
            Layer.provideMerge(Storage.layerMemory(new Storage.MemoryDisk())),
            Layer.provideMerge(InMemoryBus.layer({ trace: true }))
          )
        )
      ),
    30_000
  )
})

describe("a state machine's drafts (`edit`)", () => {
  it.live(
    "replicas apply each slot's commands to a draft begun before and ended after them, and read and snapshot only ended states",
    () => {
      // the store, watched: what was applied to a draft, and anything done out of turn
      const drafts = new WeakSet<Kv.State>()
      const wrong: Array<string> = []
      let begun = 0
      let ended = 0
      let snapshots = 0
      const edit = Kv.machine.edit!
      const watched: StateMachine.StateMachine<Kv.State, Kv.Command, Kv.Result> = {
        ...Kv.machine,
        apply: (state, command) => {
          if (!drafts.has(state)) wrong.push(`${command._tag} applied outside a draft`)
          const [next, result] = Kv.machine.apply(state, command)
          drafts.add(next)
          return [next, result]
        },
        query: (state, command) => {
          if (drafts.has(state)) wrong.push(`${command._tag} read from a draft`)
          return Kv.machine.query!(state, command)
        },
        encodeSnapshotGradually: (state) => {
          if (drafts.has(state)) wrong.push("a draft snapshotted")
          snapshots++
          return Kv.machine.encodeSnapshotGradually!(state)
        },
        edit: {
          begin: (state) => {
            if (drafts.has(state)) wrong.push("a draft begun again")
            begun++
            const draft = edit.begin(state)
            drafts.add(draft)
            return draft
          },
          end: (state) => {
            if (!drafts.has(state)) wrong.push("an end without a draft")
            ended++
            return edit.end(state)
          }
        }
      }
      // snapshots every 8 slots, so some are taken between batches
      const small = ClusterConfig.servers(3, { snapshotEvery: 8 })
      return Effect.gen(function* () {
        const writers = yield* Effect.forEach([1, 2, 3, 4], () => Client.make(watched, small))
        yield* Effect.forEach(
          writers,
          (client, w) =>
            Effect.gen(function* () {
              for (let i = 0; i < 15; i++)
                yield* client.submit({ _tag: "Put", key: `k${(w * 7 + i) % 5}`, value: `${i}` })
            }),
          { concurrency: "unbounded", discard: true }
        )
        const reader = yield* Client.make(watched, small)
        const read = yield* reader.read({ _tag: "List", prefix: "k", limit: 10 })
        assert.strictEqual(read._tag === "Listed" ? read.revision : 0, 60)
        assert.deepStrictEqual(wrong, [])
        assert.isAtLeast(begun, 3, "every replica began drafts")
        assert.strictEqual(ended, begun)
        assert.isAtLeast(snapshots, 1, "snapshots were taken")
      }).pipe(
        Effect.provide(
          Server.layerCluster(small, watched).pipe(
            Layer.provideMerge(Storage.layerMemory(new Storage.MemoryDisk())),
            Layer.provideMerge(InMemoryBus.layer())
          )
        )
      )
    },
    20_000
  )
})

describe("a clean stop of the leader's server", () => {
  it.live(
    "answers the commands its replica took before it stops: none is lost, none resent",
    () => {
      // resends only after 5 s: a lost command would show as one
      const slow = ClusterConfig.servers(3, { timeouts: { retransmitMs: 5_000, clientTimeoutMs: 30_000 } })
      return Effect.gen(function* () {
        const bus = yield* InMemoryBus.InMemoryBus
        const scopes = new Map<string, Scope.Closeable>()
        for (const id of slow.replicas) {
          const scope = yield* Scope.make()
          scopes.set(id, scope)
          yield* Server.run({ id, config: slow, machine: Kv.machine, resignOnClose: true }).pipe(Scope.provide(scope))
        }
        const client = yield* Client.make(Kv.machine, slow)
        yield* client.submit({ _tag: "Put", key: "warm", value: "up" })
        // a network that takes its time, as a real one: commands are still in flight when
        // the successor leads and the stopping server's resignation is over
        yield* bus.setFaults({ minDelay: 5, maxDelay: 5 })
        let done = 0
        let stopping = false
        const loops: Array<Fiber.Fiber<void, unknown>> = []
        for (let i = 0; i < 16; i++) {
          const loop = Effect.gen(function* () {
            for (let n = 0; !stopping; n++) {
              yield* client.submit({ _tag: "Put", key: `k${i}`, value: `${n}` })
              done++
            }
          })
          loops.push(yield* Effect.forkChild(loop))
        }
        yield* Effect.sleep(300)
        // the leader's server: where the client sends (the answers name it)
        const requests = (yield* bus.trace).filter((e) => e.event === "deliver" && e.tag === "Request")
        const leaderServer = requests[requests.length - 1]!.to.replace("replica/", "")
        yield* Scope.close(scopes.get(leaderServer)!, Exit.void)
        yield* Effect.sleep(300)
        stopping = true
        yield* Fiber.joinAll(loops)
        const sent = (yield* bus.trace).filter(
          (e) => e.event === "deliver" && e.from === `client/${client.id}` && e.tag === "Request"
        ).length
        assert.isAbove(done, 16)
        // every command sent once (its first send to one replica), the warm-up included
        assert.strictEqual(sent, done + 1, "no command resent: none was lost at the stop")
        for (const [id, scope] of scopes) if (id !== leaderServer) yield* Scope.close(scope, Exit.void)
      }).pipe(
        Effect.provide(Layer.merge(Storage.layerMemory(new Storage.MemoryDisk()), InMemoryBus.layer({ trace: true })))
      )
    },
    30_000
  )
})

describe("the role host's timer", () => {
  it.effect("wakes a role when its core asks, between its ticks, and keeps ticking while messages come", () =>
    Effect.gen(function* () {
      // a lone command lingers 30 ms for more (batches of 3); the replicas tick every 100 ms
      const lingering = ClusterConfig.servers(3, {
        batch: { maxSize: 3, lingerMs: 30 },
        timeouts: { retransmitMs: 100, clientTimeoutMs: 60_000 }
      })
      const clock = yield* Clock.Clock
      const layer = Server.layerCluster(lingering, Kv.machine).pipe(
        Layer.provideMerge(Storage.layerMemory()),
        Layer.provideMerge(InMemoryBus.layer())
      )
      yield* Effect.gen(function* () {
        const client = yield* Client.make(Kv.machine, lingering)
        // a leader, and a first command to find it
        const first = yield* client.submit({ _tag: "Put", key: "a", value: "0" }).pipe(Effect.forkChild)
        for (let t = 0; t < 3_000 && first.pollUnsafe() === undefined; t++) yield* TestClock.adjust(1)
        assert.isDefined(first.pollUnsafe(), "a leader was elected and the first command performed")
        // start just after a tick of every role, so the next ones are about 100 ms away
        for (let i = 1; i <= 5; i++) {
          yield* TestClock.adjust(1)
          const started = yield* Clock.currentTimeMillis
          const put = yield* client.submit({ _tag: "Put", key: "a", value: `${i}` }).pipe(Effect.forkChild)
          let waited = 0
          while (put.pollUnsafe() === undefined && waited < 200) {
            yield* TestClock.adjust(1)
            waited++
          }
          assert.deepStrictEqual(yield* Fiber.join(put), { _tag: "Written", version: i + 1 })
          const took = (yield* Clock.currentTimeMillis) - started
          // proposed at its linger's end (30 ms), not at the replica's next tick
          assert.isAtLeast(took, 30, `command ${i} lingered`)
          assert.isAtMost(took, 31, `command ${i} was proposed when its linger ended`)
        }
      }).pipe(
        Effect.provide(layer),
        // the leaders' failure detection on the test's clock too, not on the process's:
        // stepped 1 ms at a time, 3 s of this clock passed in a third of a second on a fast
        // machine, and no leader had been silent long enough by the real one to be replaced
        Effect.provideService(Monotonic.Monotonic, () => clock.currentTimeMillisUnsafe())
      )
    })
  )
})

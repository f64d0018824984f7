/**
 * Configuration changes on the in-memory bus (docs/reconfiguration.md), with servers in
 * this process: a dead replica pins garbage collection until it is removed, and a server
 * replaced by a new one that joins empty ends with the same state while writes go on.
 */
import { assert, describe, it } from "@effect/vitest"
import { ClusterConfig, Configuration, InMemoryBus, Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { Effect, Exit, Layer, Scope } from "effect"
import { Client, Server } from "@synod/actors"

/** Waits (polling) until `check` holds, or fails with `what` after `ms`. */
const eventually = <A, E>(what: string, ms: number, get: Effect.Effect<A, E>, check: (a: A) => boolean) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    for (;;) {
      const a = yield* get
      if (check(a)) return a
      if (Date.now() > deadline) return assert.fail(`${what}: still ${JSON.stringify(a)} after ${ms} ms`)
      yield* Effect.sleep(20)
    }
  })

const env = Layer.mergeAll(Storage.layerMemory(), InMemoryBus.layer())

/** Starts server `id` (the roles given) in a scope of its own; answers its handle and the scope. */
const start = (id: string, config: ClusterConfig.ClusterConfig, roles: ReadonlyArray<Server.Role>) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const handle = yield* Server.run({ id, config, machine: Kv.machine, roles }).pipe(Scope.provide(scope))
    return { handle, scope }
  })

describe("reconfiguration", () => {
  it.live(
    "with f + 1 replicas a dead one pins garbage collection until it is removed; then the watermark moves past the change",
    () =>
      Effect.gen(function* () {
        // three acceptors, two replicas (f + 1): every replica must hold a slot before it is forgotten
        const config = ClusterConfig.make({
          acceptors: ["s1", "s2", "s3"],
          leaders: ["s1", "s2", "s3"],
          replicas: ["s1", "s2"],
          window: 4,
          snapshotEvery: 4,
          timeouts: { retransmitMs: 20, heartbeatMs: 20, leaderTimeoutMs: 200 }
        })
        const s1 = yield* start("s1", config, ["acceptor", "leader", "replica"])
        const s2 = yield* start("s2", config, ["acceptor", "leader", "replica"])
        yield* start("s3", config, ["acceptor", "leader"])
        const client = yield* Client.make(Kv.machine, config)
        const watermark = Effect.map(s1.handle.status, (s) => s.acceptor!.watermark)
        for (let i = 0; i < 10; i++) yield* client.submit({ _tag: "Put", key: "k", value: `${i}` })
        yield* eventually("GC while both replicas live", 5_000, watermark, (w) => w > 1)
        // s2 dies for good (its whole server): the watermark stays where s2 left it
        yield* Scope.close(s2.scope, Exit.void)
        yield* Effect.sleep(200)
        const pinned = yield* watermark
        for (let i = 0; i < 20; i++) yield* client.submit({ _tag: "Put", key: "k", value: `a${i}` })
        yield* Effect.sleep(300)
        assert.strictEqual(yield* watermark, pinned, "a dead replica pins the watermark")
        // remove s2 (acceptors keep a majority of the three: s1 and s3)
        const members: Configuration.Members = {
          acceptors: ["s1", "s2", "s3"],
          leaders: ["s1", "s3"],
          replicas: ["s1"]
        }
        const changed = yield* s1.handle.reconfigure!(members)
        assert.isUndefined(changed.error)
        assert.strictEqual(changed.effective, changed.slot + config.window)
        const history = yield* s1.handle.history!
        assert.deepStrictEqual(history.at(-1), { from: changed.effective, decidedAt: changed.slot, members })
        for (let i = 0; i < 20; i++) yield* client.submit({ _tag: "Put", key: "k", value: `b${i}` })
        // GC resumes: counted over the new configuration's replicas (s1 alone) past the change
        const after = yield* eventually("GC after the removal", 5_000, watermark, (w) => w > changed.effective)
        assert.isAbove(after, pinned)
        assert.deepStrictEqual(yield* client.submit({ _tag: "Get", key: "k" }), {
          _tag: "Value",
          value: "b19",
          version: 50
        })
      }).pipe(Effect.scoped, Effect.provide(env)),
    30_000
  )

  it.live(
    "a server replaced by a new one that starts empty: the new replica copies the state, follows the log, and writes go on",
    () =>
      Effect.gen(function* () {
        const config = ClusterConfig.servers(3, {
          window: 4,
          snapshotEvery: 4,
          timeouts: { retransmitMs: 20, heartbeatMs: 20, leaderTimeoutMs: 200 }
        })
        const all = ["acceptor", "leader", "replica"] as const
        const s1 = yield* start("s1", config, all)
        yield* start("s2", config, all)
        const s3 = yield* start("s3", config, all)
        const client = yield* Client.make(Kv.machine, config)
        for (let i = 0; i < 12; i++) yield* client.submit({ _tag: "Put", key: "k", value: `${i}` })
        // s4 starts with the cluster config (which does not name it) and an empty disk
        const s4 = yield* start("s4", config, all)
        const members: Configuration.Members = {
          acceptors: ["s1", "s2", "s4"],
          leaders: ["s1", "s2", "s4"],
          replicas: ["s1", "s2", "s4"]
        }
        const changed = yield* s1.handle.reconfigure!(members)
        assert.isUndefined(changed.error)
        for (let i = 0; i < 12; i++) yield* client.submit({ _tag: "Put", key: "k", value: `x${i}` })
        // s3 goes away once the change governs
        yield* Scope.close(s3.scope, Exit.void)
        for (let i = 0; i < 12; i++) yield* client.submit({ _tag: "Put", key: "k", value: `y${i}` })
        const replica = (h: Server.Handle) => Effect.map(h.status, (s) => s.replica!)
        const top = (yield* replica(s1.handle)).slotOut
        const caught = yield* eventually("s4 caught up", 10_000, replica(s4.handle), (r) => r.slotOut >= top)
        const reference = yield* replica(s1.handle)
        assert.strictEqual(caught.slotOut, reference.slotOut)
        assert.deepStrictEqual(caught.state, reference.state, "the same store on the new replica")
        const got = yield* client.submit({ _tag: "Get", key: "k" })
        assert.deepStrictEqual(got, { _tag: "Value", value: "y11", version: 36 })
        assert.deepStrictEqual((yield* s4.handle.history!).at(-1)?.members, members)
      }).pipe(Effect.scoped, Effect.provide(env)),
    30_000
  )

  it.live(
    "two servers replaced: removed, not retired right after the change, retired once GC passed it; stopped then, and a restarted cluster still elects",
    () =>
      Effect.gen(function* () {
        const config = ClusterConfig.servers(3, {
          window: 4,
          snapshotEvery: 4,
          timeouts: { retransmitMs: 20, heartbeatMs: 20, leaderTimeoutMs: 200 }
        })
        // each server's leader runs apart from its acceptor and replica, to restart it alone
        const servers = new Map<string, { handle: Server.Handle; scope: Scope.Closeable }>()
        const leaders = new Map<string, Scope.Closeable>()
        const startServer = (id: string) =>
          Effect.gen(function* () {
            servers.set(id, yield* start(id, config, ["acceptor", "replica"]))
            leaders.set(id, (yield* start(id, config, ["leader"])).scope)
          })
        for (const id of ["s1", "s2", "s3"]) yield* startServer(id)
        const client = yield* Client.make(Kv.machine, config)
        for (let i = 0; i < 8; i++) yield* client.submit({ _tag: "Put", key: "k", value: `${i}` })
        for (const id of ["s4", "s5"]) yield* startServer(id)
        const s1 = servers.get("s1")!.handle
        // what GET /members answers: the removed servers and whether the watermark passed them
        const removed = Effect.gen(function* () {
          const st = yield* s1.status
          const watermark = Math.max(st.acceptor!.watermark, st.replica!.watermark)
          return Configuration.removed(yield* s1.history!, watermark)
        })
        const members: Configuration.Members = {
          acceptors: ["s1", "s4", "s5"],
          leaders: ["s1", "s4", "s5"],
          replicas: ["s1", "s4", "s5"]
        }
        const changed = yield* s1.reconfigure!(members)
        assert.isUndefined(changed.error)
        // right after: the slots below the effective slot still count on s2 and s3
        assert.deepStrictEqual(yield* removed, [
          { id: "s2", leftAt: changed.effective, retired: false },
          { id: "s3", leftAt: changed.effective, retired: false }
        ])
        // writes move the watermark past the effective slot: then nothing needs them
        const writes = Effect.gen(function* () {
          for (let i = 0; i < 4; i++) yield* client.submit({ _tag: "Put", key: "k", value: `x${i}` })
          return yield* removed
        })
        yield* eventually("s2 and s3 retired", 10_000, writes, (r) => r.length === 2 && r.every((x) => x.retired))
        // stop them: the old configuration has no majority left
        for (const id of ["s2", "s3"]) {
          yield* Scope.close(leaders.get(id)!, Exit.void)
          yield* Scope.close(servers.get(id)!.scope, Exit.void)
        }
        for (let i = 0; i < 4; i++) yield* client.submit({ _tag: "Put", key: "k", value: `y${i}` })
        // every leader left restarts: it starts with watermark 1 and learns the whole history
        // from the replicas, so its scout asks the old configuration too, and must be adopted
        // without it (all its slots are below the watermark the acceptors report)
        for (const id of ["s1", "s4", "s5"]) yield* Scope.close(leaders.get(id)!, Exit.void)
        for (const id of ["s1", "s4", "s5"]) leaders.set(id, (yield* start(id, config, ["leader"])).scope)
        const after = yield* Client.make(Kv.machine, { ...config, replicas: ["s1", "s4", "s5"] })
        yield* after.submit({ _tag: "Put", key: "k", value: "z" })
        const got = yield* after.submit({ _tag: "Get", key: "k" })
        assert.strictEqual(got._tag === "Value" ? got.value : got._tag, "z")
      }).pipe(Effect.scoped, Effect.provide(env)),
    30_000
  )
})

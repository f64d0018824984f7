/**
 * The HTTP API in this process, on a real Node HTTP server over an embedded cluster on
 * the in-memory bus (so the test can cut servers off): bad requests get a 400 naming the
 * field, a command that times out gets a 504 saying its outcome is unknown, and the
 * OpenAPI document describes every endpoint.
 */
import { assert, describe, it } from "@effect/vitest"
import { ClusterConfig, InMemoryBus, Storage } from "@synod/core"
import { Effect, Layer } from "effect"
import * as ApiServer from "@synod/cluster/ApiServer"
import * as Embedded from "@synod/cluster/Embedded"
import { http, run } from "./Process.ts"

const start = (clientTimeoutMs: number) =>
  Effect.gen(function* () {
    const config = ClusterConfig.servers(3, {
      timeouts: { retransmitMs: 50, heartbeatMs: 50, leaderTimeoutMs: 300, clientTimeoutMs }
    })
    const context = yield* Layer.build(
      ApiServer.layer({ port: 0 }).pipe(
        Layer.provide(Embedded.layerNoDeps(config, { cluster: "test", transport: "memory" })),
        Layer.provideMerge(Storage.layerMemory()),
        Layer.provideMerge(InMemoryBus.layer())
      )
    )
    const url = yield* ApiServer.url.pipe(Effect.provideContext(context))
    return { url, bus: yield* InMemoryBus.InMemoryBus.pipe(Effect.provideContext(context)) }
  })

describe("the HTTP API", () => {
  it.live(
    "answers a malformed request with a 400 that names the field, and changes nothing",
    () =>
      Effect.gen(function* () {
        const { url } = yield* start(10_000)
        assert.strictEqual((yield* http("PUT", `${url}/kv/k`, { value: "good" })).status, 200)
        const cases: ReadonlyArray<readonly [string, string, unknown, string]> = [
          ["PUT", "/kv/k", { value: 42 }, "value"],
          ["PUT", "/kv/k", { valeu: "x" }, "value"],
          ["POST", "/kv/k/cas", { version: "1", value: "x" }, "version"],
          ["POST", "/kv/k/cas", { version: -3, value: "x" }, "version"],
          ["POST", "/kv/k/cas", { version: 1 }, "value"],
          ["GET", "/kv?limit=zero", undefined, "limit"],
          ["GET", "/kv?limit=5000", undefined, "limit"]
        ]
        for (const [method, path, body, field] of cases) {
          const r = yield* http(method, `${url}${path}`, body)
          assert.strictEqual(r.status, 400, `${method} ${path} ${JSON.stringify(body)}`)
          assert.strictEqual(r.body._tag, "BadRequest")
          assert.deepStrictEqual(
            r.body.issues.map((i: { path: Array<string> }) => i.path.join(".")),
            [field],
            JSON.stringify(r.body)
          )
          assert.include(r.body.message, field)
        }
        const notJson = yield* http("PUT", `${url}/kv/k`, "{not json")
        assert.strictEqual(notJson.status, 400)
        assert.include(notJson.body.message, "JSON")
        const longKey = yield* http("GET", `${url}/kv/${"k".repeat(2000)}`)
        assert.strictEqual(longKey.status, 400)
        assert.deepStrictEqual(longKey.body.issues[0].path, ["key"])
        assert.deepStrictEqual((yield* http("GET", `${url}/kv/k`)).body, { key: "k", value: "good", version: 1 })
      }),
    30_000
  )

  it.live(
    "answers a command no majority can decide with a 504 whose outcome is unknown, not failed",
    () =>
      Effect.gen(function* () {
        const { url, bus } = yield* start(1_500)
        assert.strictEqual((yield* http("PUT", `${url}/kv/k`, { value: "1" })).status, 200)
        yield* bus.isolate("s2")
        yield* bus.isolate("s3")
        const r = yield* http("PUT", `${url}/kv/k`, { value: "2" })
        assert.strictEqual(r.status, 504, JSON.stringify(r.body))
        assert.strictEqual(r.body.outcome, "unknown")
        assert.notInclude(JSON.stringify(r.body).toLowerCase(), "failed")
        // once a majority is back the cluster goes on; the timed-out write may have applied
        yield* bus.heal
        const after = yield* http("GET", `${url}/kv/k`)
        assert.strictEqual(after.status, 200)
        assert.include(["1", "2"], after.body.value)
      }),
    30_000
  )

  it.live(
    "serves an OpenAPI document generated from the same definitions",
    () =>
      Effect.gen(function* () {
        const { url } = yield* start(10_000)
        const r = yield* http("GET", `${url}/openapi.json`)
        assert.strictEqual(r.status, 200)
        assert.strictEqual(r.body.openapi, "3.1.0")
        assert.deepStrictEqual(Object.keys(r.body.paths).sort(), [
          "/healthz",
          "/kv",
          "/kv/{key}",
          "/kv/{key}/cas",
          "/leader/transfer",
          "/lease",
          "/lease/{id}",
          "/lease/{id}/keepalive",
          "/members",
          "/readyz",
          "/snapshot",
          "/snapshot/restore",
          "/status",
          "/txn",
          "/watch"
        ])
        assert.deepStrictEqual(Object.keys(r.body.paths["/kv/{key}"]).sort(), ["delete", "get", "put"])
        const cas = r.body.paths["/kv/{key}/cas"].post
        assert.includeMembers(Object.keys(cas.responses), ["200", "400", "409", "504"])
        const status = yield* http("GET", `${url}/status`)
        assert.deepStrictEqual(
          status.body.servers.map((s: { id: string }) => s.id),
          ["s1", "s2", "s3"]
        )
      }),
    30_000
  )
})

describe("membership changes", () => {
  it.live(
    "a change that adds a node no server runs as is refused before anything is proposed; writes go on",
    () =>
      Effect.gen(function* () {
        const { url } = yield* start(10_000)
        assert.strictEqual((yield* http("PUT", `${url}/kv/a`, { value: "1" })).status, 200)
        for (const members of [
          { acceptors: ["s9"], leaders: ["s1"], replicas: ["s1"] },
          { acceptors: ["s1", "s2", "s3"], leaders: ["s1", "s7"], replicas: ["s1", "s2", "s3"] },
          { acceptors: ["s1", "s2", "s3", "s4", "s5"], leaders: ["s1"], replicas: ["s1", "s8"] }
        ]) {
          const r = yield* http("POST", `${url}/members`, members)
          assert.strictEqual(r.status, 409, JSON.stringify(r.body))
          assert.strictEqual(r.body._tag, "ChangeRefused")
          assert.strictEqual(r.body.slot, 0)
          assert.match(r.body.message, /no server is running as s[4-9]/)
        }
        const history = (yield* http("GET", `${url}/members`)).body.history
        assert.strictEqual(history.length, 1)
        for (let n = 0; n < 20; n++)
          assert.strictEqual((yield* http("PUT", `${url}/kv/a`, { value: `${n}` })).status, 200)
        // removing a running node is no addition: taken
        const removed = yield* http("POST", `${url}/members`, {
          acceptors: ["s1", "s2"],
          leaders: ["s1", "s2"],
          replicas: ["s1", "s2"]
        })
        assert.strictEqual(removed.status, 200, JSON.stringify(removed.body))
      }),
    60_000
  )
})

describe("serializable reads", () => {
  it.live(
    "read this server's replica without the log: labelled, possibly stale, and caught up once it hears the decisions",
    () =>
      Effect.gen(function* () {
        const { url, bus } = yield* start(10_000)
        assert.strictEqual((yield* http("PUT", `${url}/kv/k`, { value: "v1" })).status, 200)
        const serializable = () => http("GET", `${url}/kv/k?consistency=serializable`)
        // the local replica (s1's) applies what the log decided a moment later at most
        let read = yield* serializable()
        for (let i = 0; i < 100 && read.body.value !== "v1"; i++) {
          yield* Effect.sleep(20)
          read = yield* serializable()
        }
        assert.strictEqual(read.status, 200)
        assert.deepInclude(read.body, { key: "k", value: "v1", version: 1, consistency: "serializable" })
        assert.isAtLeast(read.body.revision, 1)
        // s1's replica hears nothing: the write commits through the others, a serializable
        // read on s1 still says v1, a linearizable one (through the log) says v2
        yield* bus.isolate("replica/s1")
        assert.strictEqual((yield* http("PUT", `${url}/kv/k`, { value: "v2" })).status, 200)
        assert.strictEqual((yield* serializable()).body.value, "v1")
        assert.strictEqual((yield* http("GET", `${url}/kv/k`)).body.value, "v2")
        yield* bus.reconnect("replica/s1")
        read = yield* serializable()
        for (let i = 0; i < 200 && read.body.value !== "v2"; i++) {
          yield* Effect.sleep(20)
          read = yield* serializable()
        }
        assert.strictEqual(read.body.value, "v2")
        // an unknown consistency is a 400 naming it; an absent key a 404
        const bad = yield* http("GET", `${url}/kv/k?consistency=eventual`)
        assert.strictEqual(bad.status, 400)
        assert.include(JSON.stringify(bad.body), "consistency")
        assert.deepStrictEqual(yield* http("GET", `${url}/kv/nobody?consistency=serializable`), {
          status: 404,
          body: { _tag: "KeyNotFound", key: "nobody", message: 'key not found: "nobody"' }
        })
        // every error body has a message, a compare-and-set's conflict too
        const conflict = yield* http("POST", `${url}/kv/k/cas`, { version: 99, value: "x" })
        assert.strictEqual(conflict.status, 409)
        assert.strictEqual(conflict.body._tag, "VersionConflict")
        assert.include(conflict.body.message, 'version conflict on "k": expected version 99')
      }).pipe(Effect.scoped),
    30_000
  )
})

describe("linearizable reads", () => {
  it.live(
    "a read index takes no slot and sees the latest write; consistency=log takes a slot; lists read the same three ways",
    () =>
      Effect.gen(function* () {
        const { url, bus } = yield* start(10_000)
        assert.strictEqual((yield* http("PUT", `${url}/kv/k`, { value: "v1" })).status, 200)
        const slots = () =>
          Effect.map(http("GET", `${url}/status`), (r) =>
            Math.max(
              ...(r.body.servers as ReadonlyArray<{ replica: { slotOut: number } }>).map((s) => s.replica.slotOut)
            )
          )
        const before = yield* slots()
        for (let i = 0; i < 5; i++) {
          const read = yield* http("GET", `${url}/kv/k`)
          assert.strictEqual(read.status, 200)
          assert.deepStrictEqual(read.body, { key: "k", value: "v1", version: 1 })
        }
        assert.strictEqual(yield* slots(), before, "read-index reads decide no slot")
        const logged = yield* http("GET", `${url}/kv/k?consistency=log`)
        assert.deepStrictEqual(logged.body, { key: "k", value: "v1", version: 1 })
        let after = yield* slots()
        for (let i = 0; i < 100 && after === before; i++) {
          yield* Effect.sleep(20)
          after = yield* slots()
        }
        assert.strictEqual(after, before + 1, "a log read is decided in a slot")
        // the local replica hears nothing: a write commits through the others, and a
        // linearizable read still sees it (another replica, caught up to the read index, answers)
        yield* bus.isolate("replica/s1")
        assert.strictEqual((yield* http("PUT", `${url}/kv/k`, { value: "v2" })).status, 200)
        assert.strictEqual((yield* http("GET", `${url}/kv/k`)).body.value, "v2")
        assert.strictEqual((yield* http("GET", `${url}/kv/k?consistency=log`)).body.value, "v2")
        const list = yield* http("GET", `${url}/kv?prefix=k`)
        assert.deepStrictEqual(list.body.entries, [{ key: "k", value: "v2", version: 2 }])
        const listLog = yield* http("GET", `${url}/kv?prefix=k&consistency=log`)
        assert.deepStrictEqual(listLog.body.entries, [{ key: "k", value: "v2", version: 2 }])
        const listLocal = yield* http("GET", `${url}/kv?prefix=k&consistency=serializable`)
        assert.deepStrictEqual(listLocal.body.entries, [{ key: "k", value: "v1", version: 1 }], "s1 is behind")
        yield* bus.reconnect("replica/s1")
        const bad = yield* http("GET", `${url}/kv?consistency=eventual`)
        assert.strictEqual(bad.status, 400)
        assert.include(JSON.stringify(bad.body), "consistency")
      }).pipe(Effect.scoped),
    30_000
  )
})

describe("leadership transfer", () => {
  it.live(
    "POST /leader/transfer and synod leader transfer hand the leadership to the next server or a named one; writes go on",
    () =>
      Effect.gen(function* () {
        const { url } = yield* start(10_000)
        assert.strictEqual((yield* http("PUT", `${url}/kv/k`, { value: "v1" })).status, 200)
        const leading = () =>
          Effect.map(http("GET", `${url}/status`), (r) =>
            (r.body.servers as ReadonlyArray<{ id: string; leader?: { active: boolean } }>)
              .filter((s) => s.leader?.active === true)
              .map((s) => s.id)
          )
        /** Who leads once one leader does (a busy machine may take a moment to settle). */
        const settled = Effect.gen(function* () {
          let ids = yield* leading()
          for (let i = 0; i < 100 && ids.length !== 1; i++) {
            yield* Effect.sleep(20)
            ids = yield* leading()
          }
          return ids
        })
        // usually s1; on a busy machine another leader may have won the first election
        const [first] = yield* settled
        assert.isDefined(first)
        const moved = yield* http("POST", `${url}/leader/transfer`)
        assert.strictEqual(moved.status, 200, JSON.stringify(moved.body))
        // another server leads now, at a higher ballot (the next in order competes at once;
        // the data-driven scripts and Handover.test.ts pin which one)
        assert.strictEqual(moved.body.from, first)
        assert.notStrictEqual(moved.body.leader, first)
        assert.isAbove(moved.body.ballot.round, 1)
        assert.deepStrictEqual(yield* settled, [moved.body.leader])
        assert.strictEqual((yield* http("PUT", `${url}/kv/k`, { value: "v2" })).status, 200)
        // the command line does the same, from the new leader on
        const out = yield* run(["leader", "transfer", "--url", url])
        assert.strictEqual(out.code, 0, out.stderr)
        const again = JSON.parse(out.stdout)
        assert.strictEqual(again.from, moved.body.leader)
        assert.notStrictEqual(again.leader, again.from)
        assert.deepStrictEqual(yield* settled, [again.leader])
        assert.strictEqual((yield* http("GET", `${url}/kv/k`)).body.value, "v2")
        // a named target: back to the first leader, not the next in order
        const named = yield* http("POST", `${url}/leader/transfer?to=${first}`)
        assert.strictEqual(named.status, 200, JSON.stringify(named.body))
        assert.deepStrictEqual([named.body.from, named.body.leader], [again.leader, first])
        assert.deepStrictEqual(yield* settled, [first])
        assert.strictEqual((yield* http("PUT", `${url}/kv/k`, { value: "v3" })).status, 200)
        // refused targets, named in the answer: no leader, the leader itself, not an id
        const notLeader = yield* http("POST", `${url}/leader/transfer?to=nobody`)
        assert.strictEqual(notLeader.status, 400)
        assert.match(notLeader.body.message, /nobody is not a configured leader \(leaders: s1, s2, s3\)/)
        const self = yield* http("POST", `${url}/leader/transfer?to=${first}`)
        assert.strictEqual(self.status, 400)
        assert.include(self.body.message, `${first} is the leader handing over`)
        assert.strictEqual((yield* http("POST", `${url}/leader/transfer?to=a.b`)).status, 400)
        const cli = yield* run(["leader", "transfer", "nobody", "--url", url])
        assert.strictEqual(cli.code, 2, cli.stderr)
        assert.include(cli.stderr, "nobody is not a configured leader")
        // nothing moved
        assert.deepStrictEqual(yield* settled, [first])
        assert.strictEqual((yield* http("GET", `${url}/kv/k`)).body.value, "v3")
      }).pipe(Effect.scoped),
    60_000
  )
})

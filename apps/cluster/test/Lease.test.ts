/**
 * Leases over the HTTP API in this process, over an embedded cluster whose leaders run
 * lease keepers: grant, keys attached by puts and transactions, keep-alive, revoke and
 * expiry (the keys' deletes seen by a watch), errors named; the scoped TypeScript lease
 * (revoked when its scope closes) and the lock and election recipes with their fencing
 * tokens.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Result, Scope, Stream } from "effect"
import * as LeaseClient from "@synod/cluster/LeaseClient"
import * as Lock from "@synod/cluster/Lock"
import * as WatchClient from "@synod/cluster/WatchClient"
import { startApi } from "./InProcess.ts"
import { eventually, http, run } from "./Process.ts"

const json = (url: string, method: string, path: string, body?: unknown) => http(method, `${url}${path}`, body)

describe("leases over HTTP", () => {
  it.live(
    "grant, attach keys, keep alive, revoke: the keys go with the lease, as deletes a watch sees",
    () =>
      Effect.gen(function* () {
        const url = yield* startApi
        const granted = yield* json(url, "POST", "/lease", { ttl: 30 })
        assert.strictEqual(granted.status, 200, JSON.stringify(granted.body))
        const id: number = granted.body.id
        assert.deepStrictEqual(granted.body, { id, ttl: 30 })
        const put = yield* json(url, "PUT", "/kv/svc%2Fa", { value: "10.0.0.1", lease: id })
        assert.deepStrictEqual(put.body, { key: "svc/a", version: 1 })
        const txn = yield* json(url, "POST", "/txn", {
          success: [{ op: "put", key: "svc/b", value: "10.0.0.2", lease: id }]
        })
        assert.strictEqual(txn.body.succeeded, true)
        yield* json(url, "PUT", "/kv/other", { value: "stays" })
        assert.deepStrictEqual((yield* json(url, "GET", "/lease")).body, {
          leases: [{ id, ttl: 30, keys: 2 }],
          more: false
        })
        assert.deepStrictEqual((yield* json(url, "POST", `/lease/${id}/keepalive`)).body, { id, ttl: 30 })
        const revoked = yield* json(url, "DELETE", `/lease/${id}`)
        assert.deepStrictEqual(revoked.body, { id, deleted: 2, revision: 5 })
        assert.strictEqual((yield* json(url, "GET", "/kv/svc%2Fa")).status, 404)
        assert.strictEqual((yield* json(url, "GET", "/kv/other")).status, 200)
        const events = yield* WatchClient.watch({ urls: [url], prefix: "svc/", fromRevision: 1 }).pipe(
          Stream.take(4),
          Stream.runCollect
        )
        assert.deepStrictEqual(
          events.map((e) => [e.revision, e.type, e.key]),
          [
            [1, "put", "svc/a"],
            [2, "put", "svc/b"],
            [4, "del", "svc/a"],
            [5, "del", "svc/b"]
          ]
        )
        // an ended lease: 404 naming it, for a keep-alive, a revoke and a put
        for (const [method, path, body] of [
          ["POST", `/lease/${id}/keepalive`, undefined],
          ["DELETE", `/lease/${id}`, undefined],
          ["PUT", "/kv/x", { value: "v", lease: id }]
        ] as const) {
          const r = yield* json(url, method, path, body)
          assert.strictEqual(r.status, 404, `${method} ${path}`)
          assert.strictEqual(r.body._tag, "LeaseNotFound")
          assert.include(r.body.message, `lease ${id} not found`)
        }
      }),
    60_000
  )

  it.live(
    "a lease not kept alive expires through the leader's keeper, deleting its keys",
    () =>
      Effect.gen(function* () {
        const url = yield* startApi
        const id: number = (yield* json(url, "POST", "/lease", { ttl: 0.5 })).body.id
        yield* json(url, "PUT", "/kv/ephemeral", { value: "x", lease: id })
        const deleted = Effect.runFork(
          WatchClient.watch({ urls: [url], key: "ephemeral", fromRevision: 1 }).pipe(
            Stream.filter((e) => e.type === "del"),
            Stream.runHead
          )
        )
        const event = yield* Fiber.join(deleted)
        assert.isTrue(Option.isSome(event))
        assert.strictEqual((yield* json(url, "GET", "/kv/ephemeral")).status, 404)
        assert.deepStrictEqual((yield* json(url, "GET", "/lease")).body, { leases: [], more: false })
      }),
    60_000
  )

  it.live(
    "GET /lease pages: a bounded limit, more, and after the last id; synod lease list the same",
    () =>
      Effect.gen(function* () {
        const url = yield* startApi
        const ids: Array<number> = []
        for (let i = 0; i < 3; i++) ids.push((yield* json(url, "POST", "/lease", { ttl: 60 })).body.id)
        const first = yield* json(url, "GET", "/lease?limit=2")
        assert.deepStrictEqual(first.body, {
          leases: ids.slice(0, 2).map((id) => ({ id, ttl: 60, keys: 0 })),
          more: true
        })
        const rest = yield* json(url, "GET", `/lease?limit=2&after=${ids[1]}`)
        assert.deepStrictEqual(rest.body, { leases: [{ id: ids[2], ttl: 60, keys: 0 }], more: false })
        for (const [query, message] of [
          ["limit=0", "a limit is between 1 and 100"],
          ["limit=101", "a limit is between 1 and 100"],
          ["after=-1", "after is a lease id, 0 or more"]
        ] as const) {
          const r = yield* json(url, "GET", `/lease?${query}`)
          assert.strictEqual(r.status, 400, `${query}: ${JSON.stringify(r.body)}`)
          assert.include(r.body.message, message)
        }
        const out = yield* run(["lease", "list", "--url", url, "--limit", "1", "--after", String(ids[0])])
        assert.strictEqual(out.code, 0, out.stderr)
        assert.deepStrictEqual(JSON.parse(out.stdout), { leases: [{ id: ids[1], ttl: 60, keys: 0 }], more: true })
        const bad = yield* run(["lease", "list", "--url", url, "--limit", "1000"])
        assert.strictEqual(bad.code, 2, bad.stderr)
      }),
    60_000
  )

  it.live(
    "bad lease requests get 400s naming the field; a put with a ttl is told to use a lease",
    () =>
      Effect.gen(function* () {
        const url = yield* startApi
        const cases: ReadonlyArray<readonly [string, string, unknown, string]> = [
          ["POST", "/lease", { ttl: 0.01 }, "ttl is in seconds, between 0.1 and 86400"],
          ["POST", "/lease", { ttl: 90_000 }, "ttl is in seconds, between 0.1 and 86400"],
          ["POST", "/lease", {}, "ttl"],
          ["POST", "/lease", { ttl: "10" }, "ttl: Expected number"],
          ["POST", "/lease/0/keepalive", undefined, "a lease id is 1 or more"],
          ["POST", "/lease/x/keepalive", undefined, "id"],
          ["POST", "/lease/0x10/keepalive", undefined, "a lease id is a whole number, in decimal digits"],
          ["POST", "/lease/1e3/keepalive", undefined, "a lease id is a whole number, in decimal digits"],
          ["PUT", "/kv/k", { value: "v", ttl: 5 }, "ttl: unknown field"],
          ["PUT", "/kv/k", { value: "v", lease: 0 }, "a lease id is 1 or more"]
        ]
        for (const [method, path, body, message] of cases) {
          const r = yield* json(url, method, path, body)
          assert.strictEqual(r.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`)
          assert.include(r.body.message, message)
        }
        const openapi = (yield* json(url, "GET", "/openapi.json")).body
        for (const path of ["/lease", "/lease/{id}/keepalive", "/lease/{id}"]) {
          assert.isDefined(openapi.paths[path], path)
        }
      }),
    60_000
  )
})

describe("leases, locks and elections from TypeScript", () => {
  it.live(
    "a scoped lease is kept alive while its scope is open and revoked when it closes",
    () =>
      Effect.gen(function* () {
        const url = yield* startApi
        const scope = yield* Scope.make()
        // a TTL long enough that a keep-alive delayed by a loaded machine (the whole suite
        // runs at once on two cores) does not lose it: it flaked at 3 s in a CI run
        const lease = yield* LeaseClient.grant({ urls: [url], ttlMs: 5000 }).pipe(Scope.provide(scope))
        yield* lease.put("me", "here")
        // kept alive over more than two TTLs
        yield* Effect.sleep(10_500)
        assert.isTrue(yield* lease.valid)
        assert.strictEqual((yield* json(url, "GET", "/kv/me")).status, 200)
        yield* Scope.close(scope, Exit.void)
        assert.strictEqual((yield* json(url, "GET", "/kv/me")).status, 404)
        assert.deepStrictEqual((yield* json(url, "GET", "/lease")).body, { leases: [], more: false })
      }),
    60_000
  )

  it.live(
    "lock: the second waiter gets it when the first releases, with a higher fencing token",
    () =>
      Effect.gen(function* () {
        const url = yield* startApi
        const connection = { urls: [url] }
        const first = yield* Scope.make()
        const a = yield* LeaseClient.grant({ ...connection, ttlMs: 5000 }).pipe(Scope.provide(first))
        const heldA = yield* Lock.acquire({ ...connection, lease: a, name: "job" }).pipe(Scope.provide(first))
        const b = yield* LeaseClient.grant({ ...connection, ttlMs: 5000 })
        const waiting = yield* Effect.forkChild(Lock.acquire({ ...connection, lease: b, name: "job" }))
        yield* eventually(
          "the second waiter queued",
          Effect.map(
            json(url, "GET", `/kv?prefix=${encodeURIComponent("lock/job/")}`),
            (r) => r.body.entries.length === 2
          )
        )
        assert.isUndefined(waiting.pollUnsafe())
        yield* Scope.close(first, Exit.void)
        const heldB = yield* Fiber.join(waiting)
        assert.isAbove(heldB.fence, heldA.fence)
        assert.isAtLeast(heldB.revision, heldB.fence)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "election: the first candidate leads, observers follow, the next one leads when it resigns",
    () =>
      Effect.gen(function* () {
        const url = yield* startApi
        const connection = { urls: [url] }
        assert.isTrue(Option.isNone(yield* Lock.leader(connection, "sched")))
        const first = yield* Scope.make()
        const a = yield* LeaseClient.grant({ ...connection, ttlMs: 5000 }).pipe(Scope.provide(first))
        yield* Lock.campaign({ ...connection, lease: a, name: "sched", value: "host-a" }).pipe(Scope.provide(first))
        const seen = yield* Effect.forkChild(
          Lock.observe(connection, "sched").pipe(
            Stream.filterMap((o) => (Option.isSome(o) ? Result.succeed(o.value.value) : Result.failVoid)),
            Stream.take(2),
            Stream.runCollect
          )
        )
        const b = yield* LeaseClient.grant({ ...connection, ttlMs: 5000 })
        const campaigning = yield* Effect.forkChild(
          Lock.campaign({ ...connection, lease: b, name: "sched", value: "host-b" })
        )
        assert.strictEqual(Option.getOrThrow(yield* Lock.leader(connection, "sched")).value, "host-a")
        yield* Scope.close(first, Exit.void)
        yield* Fiber.join(campaigning)
        assert.deepStrictEqual(yield* Fiber.join(seen), ["host-a", "host-b"])
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "the recipes fail with tagged errors naming what went wrong; synod lock prints them with exit codes",
    () =>
      Effect.gen(function* () {
        const url = yield* startApi
        const connection = { urls: [url] }
        const a = yield* LeaseClient.grant({ ...connection, ttlMs: 5000 })
        yield* Lock.acquire({ ...connection, lease: a, name: "busy" })
        // a waiter whose lease is revoked while it waits: LeaseLost, naming its lease
        const b = yield* LeaseClient.grant({ ...connection, ttlMs: 5000 })
        const waiting = yield* Effect.forkChild(Effect.scoped(Lock.acquire({ ...connection, lease: b, name: "busy" })))
        yield* eventually(
          "the waiter queued",
          Effect.map(
            json(url, "GET", `/kv?prefix=${encodeURIComponent("lock/busy/")}`),
            (r) => r.body.entries.length === 2
          )
        )
        yield* json(url, "DELETE", `/lease/${b.id}`)
        const lost = yield* Effect.flip(Fiber.join(waiting))
        assert.strictEqual(lost._tag, "LeaseLost")
        assert.strictEqual(lost._tag === "LeaseLost" ? lost.id : undefined, b.id)
        // no server: Unreachable, for a campaign as for an observer
        const nowhere = { urls: ["http://127.0.0.1:1"] }
        const unreachable = yield* Effect.flip(
          Effect.scoped(Lock.campaign({ ...nowhere, lease: a, name: "e", value: "v" }))
        )
        assert.strictEqual(unreachable._tag, "Unreachable")
        assert.strictEqual((yield* Effect.flip(Lock.leader(nowhere, "e")))._tag, "Unreachable")

        // the CLI: the same waiter's end, as a message naming the lock and exit code 1
        const cli = yield* Effect.forkChild(run(["lock", "--url", url, "--ttl", "30", "busy", "--", "true"]))
        const cliLease = yield* eventually(
          "synod lock queued",
          Effect.map(
            json(url, "GET", `/kv?prefix=${encodeURIComponent("lock/busy/")}`),
            (r) => r.body.entries.length === 2
          )
        ).pipe(
          Effect.andThen(json(url, "GET", `/kv?prefix=${encodeURIComponent("lock/busy/")}`)),
          Effect.map((r) => Number(r.body.entries.find((e: { value: string }) => e.value !== String(a.id)).value))
        )
        yield* json(url, "DELETE", `/lease/${cliLease}`)
        const out = yield* Fiber.join(cli)
        assert.strictEqual(out.code, 1, out.stderr)
        assert.include(out.stderr, `cannot get the lock busy: the lease ${cliLease} ended while waiting`)
        // no server: exit code 4
        const away = yield* run(["elect", "--url", "http://127.0.0.1:1", "e", "v"])
        assert.strictEqual(away.code, 4, away.stderr)
        assert.include(away.stderr, "cannot reach the cluster")
        // a name with '/': its queue would share keys with another name's (lock/x/ holds lock/x/y/…)
        for (const args of [
          ["lock", "--url", url, "x/y", "--", "true"],
          ["elect", "--url", url, "e/sub", "v"]
        ]) {
          const slash = yield* run(args)
          assert.strictEqual(slash.code, 2, slash.stderr)
          assert.include(slash.stderr, "may not contain '/'")
        }
      }).pipe(Effect.scoped),
    60_000
  )
})

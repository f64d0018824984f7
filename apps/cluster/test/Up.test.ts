/**
 * End to end: `synod up` in a child process (the real Node binary running the CLI's
 * TypeScript), used over HTTP and through the `synod` CLI as a user would, then stopped
 * with SIGTERM. And a concurrent HTTP client history against it, checked for
 * linearizability against the key-value model.
 */
import { assert, describe, it } from "@effect/vitest"
import { NatsServer } from "@synod/testing"
import { type Input, KvModel, type Output } from "@synod/testing/KvModel"
import { check, type Operation } from "@synod/testing/Linearizability"
import { Clock, Effect, Random } from "effect"
import { daemon, http, run, settledStatus } from "./Process.ts"

const up = Effect.gen(function* () {
  const proc = yield* daemon(["up", "--port", "0"])
  const url = yield* proc.waitFor(/HTTP API on (http:\/\/\S+)/)
  return { proc, url }
})

describe("synod up", () => {
  it.live(
    "serves the key-value store over HTTP: writes, reads, compare-and-set conflicts, lists, bad requests",
    () =>
      Effect.gen(function* () {
        const { proc, url } = yield* up
        // the banner tells a new user what to do (its lines may arrive after the first)
        yield* proc.waitFor(/synod kv get greeting/)
        assert.include(proc.stdout(), `curl -X PUT ${url}/kv/greeting`)
        assert.include(proc.stdout(), "synod kv get greeting")

        assert.deepStrictEqual(yield* http("PUT", `${url}/kv/config%2Fdb`, { value: "postgres://a" }), {
          status: 200,
          body: { key: "config/db", version: 1 }
        })
        assert.deepStrictEqual(yield* http("GET", `${url}/kv/config%2Fdb`), {
          status: 200,
          body: { key: "config/db", value: "postgres://a", version: 1 }
        })
        // compare-and-set: the right version wins once; the stale one gets a 409 with what is there
        assert.deepStrictEqual(
          yield* http("POST", `${url}/kv/config%2Fdb/cas`, { version: 1, value: "postgres://b" }),
          {
            status: 200,
            body: { key: "config/db", version: 2 }
          }
        )
        assert.deepStrictEqual(
          yield* http("POST", `${url}/kv/config%2Fdb/cas`, { version: 1, value: "postgres://c" }),
          {
            status: 409,
            body: {
              _tag: "VersionConflict",
              key: "config/db",
              expected: 1,
              version: 2,
              value: "postgres://b",
              message: 'version conflict on "config/db": expected version 1, it is 2'
            }
          }
        )
        // version 0: create only if absent (a lock)
        assert.strictEqual((yield* http("POST", `${url}/kv/lock/cas`, { version: 0, value: "alice" })).status, 200)
        const second = yield* http("POST", `${url}/kv/lock/cas`, { version: 0, value: "bob" })
        assert.strictEqual(second.status, 409)
        assert.strictEqual(second.body.value, "alice")
        assert.strictEqual((yield* http("PUT", `${url}/kv/config%2Fcache`, { value: "redis" })).status, 200)
        assert.deepStrictEqual((yield* http("GET", `${url}/kv?prefix=config/`)).body, {
          prefix: "config/",
          entries: [
            { key: "config/cache", value: "redis", version: 4 },
            { key: "config/db", value: "postgres://b", version: 2 }
          ],
          more: false,
          revision: 4
        })
        assert.deepStrictEqual(yield* http("DELETE", `${url}/kv/lock`), {
          status: 200,
          body: { key: "lock", existed: true }
        })
        assert.deepStrictEqual(yield* http("GET", `${url}/kv/lock`), {
          status: 404,
          body: { _tag: "KeyNotFound", key: "lock", message: 'key not found: "lock"' }
        })
        // a malformed request: 400 naming the field, nothing written
        const bad = yield* http("PUT", `${url}/kv/config%2Fdb`, { value: ["not", "a", "string"] })
        assert.strictEqual(bad.status, 400)
        assert.strictEqual(bad.body._tag, "BadRequest")
        assert.deepStrictEqual(bad.body.issues[0].path, ["value"])
        assert.include(bad.body.message, "value")
        assert.strictEqual((yield* http("GET", `${url}/kv/config%2Fdb`)).body.value, "postgres://b")

        assert.strictEqual(yield* proc.signal("SIGTERM"), 0, proc.stderr())
      }),
    60_000
  )

  it.live(
    "the CLI talks to it: kv put/get/cas/del/list, status; --help; wrong arguments exit non-zero",
    () =>
      Effect.gen(function* () {
        const { proc, url } = yield* up
        const put = yield* run(["kv", "put", "greeting", "hello", "--url", url])
        assert.deepStrictEqual([put.code, JSON.parse(put.stdout)], [0, { key: "greeting", version: 1 }], put.stderr)
        const [get, conflict, missing] = yield* Effect.all(
          [
            run(["kv", "get", "greeting", "--url", url]),
            run(["kv", "cas", "greeting", "7", "hi", "--url", url]),
            run(["kv", "get", "nobody", "--url", url])
          ],
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(JSON.parse(get.stdout), { key: "greeting", value: "hello", version: 1 })
        assert.strictEqual(conflict.code, 1)
        assert.include(conflict.stderr, "version conflict")
        assert.strictEqual(missing.code, 1)
        assert.include(missing.stderr, "key not found")
        const cas = yield* run(["kv", "cas", "greeting", "1", "hi", "--url", url])
        assert.deepStrictEqual([cas.code, JSON.parse(cas.stdout)], [0, { key: "greeting", version: 2 }], cas.stderr)
        const [list, del, status, help, badVersion, unknownCommand, missingArg, unreachable] = yield* Effect.all(
          [
            run(["kv", "list", "gr", "--url", url]),
            run(["kv", "del", "other", "--url", url]),
            run(["status", "--url", url]),
            run(["kv", "cas", "--help"]),
            run(["kv", "cas", "greeting", "two", "x", "--url", url]),
            run(["kv", "frobnicate", "--url", url]),
            run(["kv", "put", "only-a-key", "--url", url]),
            run(["kv", "get", "greeting", "--url", "http://127.0.0.1:1"])
          ],
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(JSON.parse(list.stdout).entries, [{ key: "greeting", value: "hi", version: 2 }])
        assert.deepStrictEqual(JSON.parse(del.stdout), { key: "other", existed: false })
        assert.strictEqual(status.code, 0, status.stderr)
        assert.match(status.stdout, /active leader: s\d at ballot \d+\.s\d/)
        for (const id of ["s1", "s2", "s3"]) assert.match(status.stdout, new RegExp(`^${id}\\s`, "m"))
        const rows = yield* settledStatus(url)
        assert.deepStrictEqual(
          rows.map((r) => r.id),
          ["s1", "s2", "s3"]
        )
        for (const r of rows) {
          assert.isAtLeast(r.replica.slotOut, 1)
          assert.isAtLeast(r.lag, 0)
        }
        assert.strictEqual(help.code, 0)
        assert.include(help.stdout, "synod kv cas [flags] <key> <version> <value>")
        assert.strictEqual(badVersion.code, 2)
        assert.include(badVersion.stderr, "<version>")
        assert.notStrictEqual(unknownCommand.code, 0)
        assert.include(unknownCommand.stderr.toLowerCase(), "frobnicate")
        assert.strictEqual(missingArg.code, 2)
        assert.include(missingArg.stderr, "value")
        assert.strictEqual(unreachable.code, 4)
        assert.include(unreachable.stderr, "cannot reach the cluster")
        // nothing the failures did changed the store
        assert.deepStrictEqual(JSON.parse((yield* run(["kv", "get", "greeting", "--url", url])).stdout).value, "hi")
        assert.strictEqual(yield* proc.signal("SIGTERM"), 0, proc.stderr())
      }),
    60_000
  )

  it.live(
    "--nats: the same three servers talk over a NATS server instead of the in-memory bus",
    () =>
      Effect.gen(function* () {
        const nats = yield* NatsServer.start()
        const proc = yield* daemon(["up", "--port", "0", "--nats", nats.url, "--name", "uptest"])
        const url = yield* proc.waitFor(/HTTP API on (http:\/\/\S+)/)
        assert.include(proc.stdout(), `over NATS (${nats.url}`)
        assert.strictEqual((yield* http("PUT", `${url}/kv/k`, { value: "v" })).status, 200)
        assert.deepStrictEqual((yield* http("GET", `${url}/kv/k`)).body, { key: "k", value: "v", version: 1 })
        const status = (yield* http("GET", `${url}/status`)).body
        assert.deepStrictEqual([status.cluster, status.transport, status.servers.length], ["uptest", "nats", 3])
        // a second one on the same cluster would put empty acceptors under the same ids:
        // it claims them first, as `synod serve` does, and is refused
        const second = yield* run(["up", "--port", "0", "--nats", nats.url, "--name", "uptest"])
        assert.strictEqual(second.code, 4, second.stderr)
        assert.match(second.stderr, /another process claims node id "s[123]"/)
        assert.strictEqual((yield* http("PUT", `${url}/kv/k`, { value: "w" })).status, 200)
        assert.strictEqual(yield* proc.signal("SIGTERM"), 0, proc.stderr())
      }),
    60_000
  )

  it.live(
    "a concurrent HTTP client history is linearizable",
    () =>
      Effect.gen(function* () {
        const { url } = yield* up
        const keys = ["x", "y", "z"]
        const clients = 6
        const opsPerClient = 40
        const history: Array<Operation<Input, Output>> = []
        const now = Effect.map(Clock.currentTimeNanos, (n) => Number(n / 1000n))
        let swapsOk = 0
        let swapsRefused = 0

        const record = (client: string, input: Input, call: number, ret: number | undefined, output?: Output) => {
          history.push({ client, input, call, ret, output })
        }

        const worker = (c: number) =>
          Effect.gen(function* () {
            const client = `c${c}`
            const seen = new Map<string, number>()
            for (let n = 0; n < opsPerClient; n++) {
              const key = keys[yield* Random.nextIntBetween(0, keys.length, { halfOpen: true })]!
              const dice = yield* Random.nextIntBetween(0, 100, { halfOpen: true })
              const path = `${url}/kv/${key}`
              const call = yield* now
              if (dice < 25) {
                const r = yield* http("GET", path)
                const ret = yield* now
                if (r.status === 200) {
                  seen.set(key, r.body.version)
                  record(client, { _tag: "Get", key }, call, ret, {
                    _tag: "Value",
                    value: r.body.value,
                    version: r.body.version
                  })
                } else if (r.status === 404) {
                  seen.set(key, 0)
                  record(client, { _tag: "Get", key }, call, ret, { _tag: "Value", value: null, version: 0 })
                } else assert.strictEqual(r.status, 504, JSON.stringify(r.body))
              } else if (dice < 50) {
                const value = `${client}-${n}`
                const r = yield* http("PUT", path, { value })
                const ret = yield* now
                const input: Input = { _tag: "Put", key, value }
                if (r.status === 200) record(client, input, call, ret, { _tag: "Written", version: r.body.version })
                else if (r.status === 504) record(client, input, call, undefined)
                else assert.fail(`PUT ${r.status} ${JSON.stringify(r.body)}`)
              } else if (dice < 80) {
                const value = `${client}-${n}`
                const version = seen.get(key) ?? 0
                const r = yield* http("POST", `${path}/cas`, { version, value })
                const ret = yield* now
                const input: Input = { _tag: "Cas", key, version, value }
                if (r.status === 200) {
                  swapsOk++
                  seen.set(key, r.body.version)
                  record(client, input, call, ret, { _tag: "Swapped", ok: true, version: r.body.version, value })
                } else if (r.status === 409) {
                  swapsRefused++
                  seen.set(key, r.body.version)
                  record(client, input, call, ret, {
                    _tag: "Swapped",
                    ok: false,
                    version: r.body.version,
                    value: r.body.value
                  })
                } else if (r.status === 504) record(client, input, call, undefined)
                else assert.fail(`CAS ${r.status} ${JSON.stringify(r.body)}`)
              } else if (dice < 90) {
                const r = yield* http("DELETE", path)
                const ret = yield* now
                const input: Input = { _tag: "Del", key }
                if (r.status === 200) record(client, input, call, ret, { _tag: "Deleted", existed: r.body.existed })
                else if (r.status === 504) record(client, input, call, undefined)
                else assert.fail(`DELETE ${r.status} ${JSON.stringify(r.body)}`)
              } else {
                // the model checks a list as one read of every key it covers
                const r = yield* http("GET", `${url}/kv`)
                const ret = yield* now
                if (r.status !== 200) continue
                const { entries, more, revision } = r.body
                record(client, { _tag: "List", prefix: "", limit: 1000 }, call, ret, {
                  _tag: "Listed",
                  entries,
                  more,
                  revision
                })
              }
            }
          })

        yield* Effect.forEach(
          Array.from({ length: clients }, (_, i) => i),
          worker,
          {
            concurrency: "unbounded",
            discard: true
          }
        )
        assert.isAtLeast(history.length, clients * opsPerClient)
        // the workload exercised both sides of compare-and-set
        assert.isAbove(swapsOk, 0)
        assert.isAbove(swapsRefused, 0)
        const result = check(KvModel, history)
        assert.isFalse(result.timedOut, "the checker gave up")
        assert.isTrue(result.ok, `not linearizable:\n${(result.failingPartition ?? []).join("\n")}`)
      }),
    60_000
  )
})

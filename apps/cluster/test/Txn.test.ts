/**
 * `POST /txn` and `synod kv txn` against the HTTP API in this process over an embedded
 * cluster: a lock taken with a transaction, the failure branch, bad bodies named, the
 * OpenAPI entry.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startApi } from "./InProcess.ts"
import { http, run } from "./Process.ts"

const takeLock = (who: string) => ({
  compare: [{ key: "lock", exists: false }],
  success: [
    { op: "put", key: "lock", value: who },
    { op: "put", key: "owner/lock", value: who }
  ],
  failure: [{ op: "get", key: "lock" }]
})

describe("transactions over HTTP and the CLI", () => {
  it.live(
    "POST /txn runs one branch atomically; bad bodies get a 400 naming the field",
    () =>
      Effect.gen(function* () {
        const url = yield* startApi
        const first = yield* http("POST", `${url}/txn`, takeLock("alice"))
        assert.strictEqual(first.status, 200, JSON.stringify(first.body))
        assert.deepStrictEqual(first.body, {
          succeeded: true,
          results: [
            { op: "put", key: "lock", version: 1 },
            { op: "put", key: "owner/lock", version: 2 }
          ],
          revision: 2
        })
        const second = yield* http("POST", `${url}/txn`, takeLock("bob"))
        assert.deepStrictEqual(second.body, {
          succeeded: false,
          results: [{ op: "get", key: "lock", value: "alice", version: 1 }],
          revision: 2
        })
        // release only if still ours (the version we took it at)
        const release = yield* http("POST", `${url}/txn`, {
          compare: [{ key: "lock", version: 1 }],
          success: [
            { op: "del", key: "lock" },
            { op: "del", key: "owner/lock" }
          ]
        })
        assert.deepStrictEqual(release.body.succeeded, true)
        assert.strictEqual((yield* http("GET", `${url}/kv/lock`)).status, 404)
        const bad: ReadonlyArray<readonly [unknown, string]> = [
          [{ success: [{ op: "rename", key: "k" }] }, "success.0"],
          [{ success: [{ op: "put", key: "k" }] }, "success.0"],
          [{ compare: [{ key: "k", version: -1 }] }, "compare.0"],
          [{ compare: [{ key: "k", version: 1, op: "~" }] }, "compare.0"],
          // one message for a comparison no shape takes, not the last shape's complaint ("exists: Missing key")
          [{ compare: [{ key: "k", version: 1, value: "x" }] }, "compare.0: a comparison is {key, version"],
          [{ success: Array.from({ length: 65 }, () => ({ op: "get", key: "k" })) }, "success"],
          [{ sucess: [] }, "sucess"],
          // a lone surrogate: no URL could name the key afterwards
          [{ success: [{ op: "put", key: "a\ud800", value: "v" }] }, "success.0.key: a key is well-formed Unicode"]
        ]
        for (const [body, field] of bad) {
          const r = yield* http("POST", `${url}/txn`, body)
          assert.strictEqual(r.status, 400, JSON.stringify(body))
          assert.strictEqual(r.body._tag, "BadRequest")
          assert.include(r.body.message, field, JSON.stringify(r.body))
        }
        // nothing changed
        const after = yield* http("GET", `${url}/kv?prefix=`)
        assert.deepStrictEqual(after.body.entries, [])
        assert.strictEqual(after.body.revision, 4)
        const openapi = yield* http("GET", `${url}/openapi.json`)
        assert.isDefined(openapi.body.paths["/txn"]?.post?.summary)
      }),
    60_000
  )

  it.live(
    "synod kv txn reads the transaction from a file; a bad file exits 2 naming what is wrong",
    () =>
      Effect.gen(function* () {
        const url = yield* startApi
        const dir = mkdtempSync(join(tmpdir(), "synod-txn-"))
        const file = join(dir, "txn.json")
        writeFileSync(file, JSON.stringify(takeLock("carol")))
        const ok = yield* run(["kv", "txn", file, "--url", url])
        assert.strictEqual(ok.code, 0, ok.stderr)
        assert.strictEqual(JSON.parse(ok.stdout).succeeded, true)
        const again = yield* run(["kv", "txn", file, "--url", url])
        assert.strictEqual(JSON.parse(again.stdout).succeeded, false)
        writeFileSync(file, "{nope")
        const notJson = yield* run(["kv", "txn", file, "--url", url])
        assert.strictEqual(notJson.code, 2)
        assert.include(notJson.stderr, "is not JSON")
        writeFileSync(file, JSON.stringify({ success: [{ op: "put", key: "k", value: 1 }] }))
        const invalid = yield* run(["kv", "txn", file, "--url", url])
        assert.strictEqual(invalid.code, 2)
        assert.include(invalid.stderr, "invalid transaction")
        assert.include(invalid.stderr, "value")
        const missing = yield* run(["kv", "txn", join(dir, "absent.json"), "--url", url])
        assert.strictEqual(missing.code, 2)
        assert.include(missing.stderr, "cannot read")
      }),
    60_000
  )
})

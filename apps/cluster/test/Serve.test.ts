/**
 * End to end over NATS: three `synod serve` processes (one server each, with its data
 * directory and HTTP API) on a nats-server the test starts, and the `synod` CLI talking
 * to them: writes through one process are read through another, compare-and-set
 * conflicts, status across the three, and, with two of them killed, a write whose
 * outcome the CLI reports as unknown. Bad configs are refused with the field named, and
 * a second process on a data directory or node id in use is refused naming the first.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { NatsServer } from "@synod/testing"
import { Effect } from "effect"
import { daemon, run, settledStatus } from "./Process.ts"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "synod-serve-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const cluster = {
  acceptors: ["s1", "s2", "s3"],
  leaders: ["s1", "s2", "s3"],
  replicas: ["s1", "s2", "s3"],
  timeouts: { retransmitMs: 50, heartbeatMs: 50, leaderTimeoutMs: 300, clientTimeoutMs: 2_000 }
}

const writeConfig = (dir: string, node: string, contents: object) => {
  const file = join(dir, `${node}.json`)
  writeFileSync(file, JSON.stringify(contents, null, 2))
  return file
}

describe("synod serve", () => {
  it.live(
    "three server processes over NATS, with the CLI talking to them",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const nats = yield* NatsServer.start()
        const servers = yield* Effect.forEach(
          ["s1", "s2", "s3"],
          (node) =>
            Effect.gen(function* () {
              const file = writeConfig(dir, node, {
                name: "e2e",
                node,
                cluster,
                dataDir: join(dir, node),
                transport: { kind: "nats", servers: [nats.url] },
                http: { port: 0 },
                logLevel: "Warn"
              })
              const proc = yield* daemon(["serve", "--config", file])
              const url = yield* proc.waitFor(/HTTP API on (http:\/\/\S+)/)
              return { node, proc, url }
            }),
          { concurrency: "unbounded" }
        )
        const [u1, u2, u3] = servers.map((s) => s.url) as [string, string, string]
        const all = servers.map((s) => s.url).join(",")

        const put = yield* run(["kv", "put", "service/web", "10.0.0.1", "--url", u1])
        assert.deepStrictEqual([put.code, JSON.parse(put.stdout)], [0, { key: "service/web", version: 1 }], put.stderr)
        // written through s1's process, read through s2's
        const get = yield* run(["kv", "get", "service/web", "--url", u2])
        assert.deepStrictEqual(
          JSON.parse(get.stdout),
          { key: "service/web", value: "10.0.0.1", version: 1 },
          get.stderr
        )
        const cas = yield* run(["kv", "cas", "service/web", "1", "10.0.0.2", "--url", u3])
        assert.deepStrictEqual(JSON.parse(cas.stdout), { key: "service/web", version: 2 }, cas.stderr)
        const [stale, list, fallback] = yield* Effect.all(
          [
            run(["kv", "cas", "service/web", "1", "10.0.0.3", "--url", u1]),
            run(["kv", "list", "service/", "--url", u2]),
            // the first URL is down: the CLI moves on to the next
            run(["kv", "get", "service/web", "--url", `http://127.0.0.1:1,${u3}`])
          ],
          { concurrency: "unbounded" }
        )
        assert.strictEqual(stale.code, 1)
        assert.include(stale.stderr, "expected version 1, it is 2")
        assert.deepStrictEqual(JSON.parse(list.stdout).entries, [{ key: "service/web", value: "10.0.0.2", version: 2 }])
        assert.strictEqual(fallback.code, 0, fallback.stderr)
        assert.strictEqual(JSON.parse(fallback.stdout).value, "10.0.0.2")

        // status across the three processes: one active leader, everyone promised its ballot
        const table = yield* run(["status", "--url", all])
        assert.strictEqual(table.code, 0, table.stderr)
        assert.match(table.stdout, /active leader: s\d at ballot \d+\.s\d/)
        const rows = yield* settledStatus(all)
        assert.deepStrictEqual(
          rows.map((r) => r.id),
          ["s1", "s2", "s3"]
        )
        for (const r of rows) {
          assert.isAtLeast(r.replica.slotOut, 4)
          assert.isAtLeast(r.lag, 0)
        }

        // two of three gone: no majority, so a write cannot be decided and its outcome is unknown
        yield* Effect.forEach(servers.slice(1), (s) => s.proc.signal("SIGKILL"), { discard: true })
        const lost = yield* run(["kv", "put", "service/db", "10.0.0.9", "--url", u1])
        assert.strictEqual(lost.code, 3, `${lost.stdout}\n${lost.stderr}`)
        assert.include(lost.stderr, "outcome unknown")
        const partial = yield* run(["status", "--url", all])
        assert.strictEqual(partial.code, 0)
        assert.match(partial.stdout, /^s1\s/m)
        assert.include(partial.stderr, `cannot reach the cluster at ${u2}`)

        assert.strictEqual(yield* servers[0]!.proc.signal("SIGTERM"), 0, servers[0]!.proc.stderr())
      }),
    90_000
  )

  it.live(
    "a bad config is refused with the field named, and a non-zero exit",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const base = {
          name: "e2e",
          node: "s1",
          cluster,
          dataDir: join(dir, "s1"),
          transport: { kind: "nats", servers: ["nats://127.0.0.1:4222"] }
        }
        const badPort = writeConfig(dir, "port", { ...base, http: { port: 70000 } })
        const badWindow = writeConfig(dir, "window", { ...base, cluster: { ...cluster, window: 0 } })
        const memory = writeConfig(dir, "memory", { ...base, transport: { kind: "memory" } })
        const { dataDir: _, ...withoutDir } = base
        const noDir = writeConfig(dir, "nodir", withoutDir)
        const [port, window, mem, missing, noConfig, dataDir] = yield* Effect.all(
          [
            run(["serve", "--config", badPort]),
            run(["serve", "--config", badWindow]),
            run(["serve", "--config", memory]),
            run(["serve", "--config", join(dir, "nope.json")]),
            run(["serve"]),
            run(["serve", "--config", noDir])
          ],
          { concurrency: "unbounded" }
        )
        assert.strictEqual(port.code, 2, port.stderr)
        assert.include(port.stderr, "port")
        assert.strictEqual(window.code, 2, window.stderr)
        assert.include(window.stderr, "window")
        assert.strictEqual(mem.code, 2, mem.stderr)
        assert.include(mem.stderr, "NATS")
        assert.strictEqual(missing.code, 2, missing.stderr)
        assert.include(missing.stderr, "nope.json")
        assert.strictEqual(noConfig.code, 2)
        assert.include(noConfig.stderr, "--config")
        assert.strictEqual(dataDir.code, 2, dataDir.stderr)
        assert.include(dataDir.stderr, "dataDir is required")
      }),
    60_000
  )

  it.live(
    "a second server on the same data directory, or with the same node id, is refused naming the first's pid",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const nats = yield* NatsServer.start()
        const config = (dataDir: string) =>
          writeConfig(dir, dataDir, {
            name: "dup",
            node: "s1",
            cluster: { acceptors: ["s1"], leaders: ["s1"], replicas: ["s1"] },
            dataDir: join(dir, dataDir),
            transport: { kind: "nats", servers: [nats.url] },
            http: { port: 0 },
            logLevel: "Warn"
          })
        const first = yield* daemon(["serve", "--config", config("a")])
        yield* first.waitFor(/HTTP API on (http:\/\/\S+)/)
        const [sameDir, sameNode] = yield* Effect.all(
          [run(["serve", "--config", config("a")]), run(["serve", "--config", config("b")])],
          { concurrency: "unbounded" }
        )
        assert.strictEqual(sameDir.code, 4, sameDir.stderr)
        assert.include(sameDir.stderr, `data directory ${join(dir, "a")} is in use by pid ${first.pid}`)
        assert.strictEqual(sameNode.code, 4, sameNode.stderr)
        assert.include(sameNode.stderr, `node id "s1" on cluster "dup" (pid ${first.pid}`)
        // neither refused start disturbed the first
        assert.isFalse(first.exited())
        assert.strictEqual(yield* first.signal("SIGTERM"), 0, first.stderr())
      }),
    60_000
  )
})

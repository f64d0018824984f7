/**
 * `synod init`: the configs of an N-server cluster, written in one command, accepted by
 * `synod serve` as they are (three servers started from them form a cluster), and its
 * bounds: no overwriting without --force, a clear error for each wrong flag.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Serve from "@synod/cluster/Serve"
import { NatsServer } from "@synod/testing"
import { Effect, Result } from "effect"
import { daemon, http, run } from "./Process.ts"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "synod-init-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const bindable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createServer()
    s.once("error", () => resolve(false))
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)))
  })

/** A first port whose `n - 1` successors are free too (they were a moment ago). */
const freeRun = (n: number) =>
  Effect.promise(async () => {
    for (;;) {
      const first = 20_000 + Math.floor(Math.random() * 40_000)
      const ports = Array.from({ length: n }, (_, i) => first + i)
      if ((await Promise.all(ports.map(bindable))).every(Boolean)) return first
    }
  })

describe("synod init", () => {
  it.live(
    "writes one config per server that synod serve accepts: consecutive HTTP ports, a data directory each",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const out = yield* run([
          "init",
          "--servers",
          "5",
          "--nats",
          "nats://10.0.0.5:4222,nats://10.0.0.6:4222",
          "--data-dir",
          "/var/lib/synod",
          "--http-port",
          "9001",
          "--name",
          "prod",
          "--dir",
          dir
        ])
        assert.strictEqual(out.code, 0, out.stderr)
        assert.include(out.stdout, `synod serve --config ${join(dir, "s5.json")}`)
        assert.include(out.stdout, "http://127.0.0.1:9001,http://127.0.0.1:9002")
        for (let k = 1; k <= 5; k++) {
          const raw = JSON.parse(readFileSync(join(dir, `s${k}.json`), "utf8"))
          const decoded = Serve.decode(raw)
          assert.isTrue(Result.isSuccess(decoded), `s${k}.json`)
          const { host, http } = (decoded as Result.Success<Serve.ServeConfig, never>).success
          assert.strictEqual(host.node, `s${k}`)
          assert.strictEqual(host.name, "prod")
          assert.strictEqual(host.dataDir, `/var/lib/synod/s${k}`)
          assert.deepStrictEqual(host.transport, {
            kind: "nats",
            servers: ["nats://10.0.0.5:4222", "nats://10.0.0.6:4222"]
          })
          assert.deepStrictEqual(host.cluster.acceptors, ["s1", "s2", "s3", "s4", "s5"])
          assert.strictEqual(http?.port, 9000 + k)
        }
        assert.isFalse(existsSync(join(dir, "s6.json")))
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "refuses to overwrite without --force, and names what is wrong with a flag",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        assert.strictEqual((yield* run(["init", "--dir", dir])).code, 0)
        const before = readFileSync(join(dir, "s1.json"), "utf8")
        const [again, servers, ports, name, forced] = yield* Effect.all(
          [
            run(["init", "--dir", dir, "--http-port", "7001"]),
            run(["init", "--dir", join(dir, "x"), "--servers", "16"]),
            run(["init", "--dir", join(dir, "y"), "--http-port", "65534"]),
            run(["init", "--dir", join(dir, "z"), "--name", "no spaces"]),
            run(["init", "--dir", join(dir, "w"), "--force"])
          ]
          // one at a time: five CLI starts at once on a busy 2-core machine can take longer than a run's timeout
        )
        assert.deepStrictEqual([again.code, again.stdout], [2, ""])
        assert.include(again.stderr, "s1.json exists (--force overwrites it)")
        assert.strictEqual(readFileSync(join(dir, "s1.json"), "utf8"), before)
        assert.strictEqual(servers.code, 2)
        assert.include(servers.stderr, "1 to 15 servers")
        assert.strictEqual(ports.code, 2)
        assert.include(ports.stderr, "65534..65536")
        assert.strictEqual(name.code, 2)
        assert.include(name.stderr, "cluster name")
        for (const d of ["x", "y", "z"]) assert.isFalse(existsSync(join(dir, d, "s1.json")), d)
        assert.strictEqual(forced.code, 0, forced.stderr)
        assert.strictEqual((yield* run(["init", "--dir", dir, "--force", "--http-port", "7001"])).code, 0)
        assert.include(readFileSync(join(dir, "s1.json"), "utf8"), '"port": 7001')
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "three synod serve processes started from its files form a cluster",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const nats = yield* NatsServer.start()
        const first = yield* freeRun(3)
        const init = yield* run([
          "init",
          "--nats",
          nats.url,
          "--data-dir",
          join(dir, "data"),
          "--http-port",
          String(first),
          "--name",
          "inittest",
          "--dir",
          dir
        ])
        assert.strictEqual(init.code, 0, init.stderr)
        const procs = yield* Effect.forEach(["s1", "s2", "s3"], (id) =>
          daemon(["serve", "--config", join(dir, `${id}.json`)])
        )
        yield* Effect.forEach(procs, (p) => p.waitFor(/HTTP API on (http:\/\/\S+)/))
        const url = (k: number) => `http://127.0.0.1:${first + k}`
        assert.deepStrictEqual(yield* http("PUT", `${url(0)}/kv/greeting`, { value: "hello" }), {
          status: 200,
          body: { key: "greeting", version: 1 }
        })
        assert.deepStrictEqual((yield* http("GET", `${url(2)}/kv/greeting`)).body, {
          key: "greeting",
          value: "hello",
          version: 1
        })
        for (const id of ["s1", "s2", "s3"]) assert.isTrue(existsSync(join(dir, "data", id)), id)
      }).pipe(Effect.scoped),
    90_000
  )
})

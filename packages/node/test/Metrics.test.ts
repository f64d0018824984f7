/**
 * A node process with a metrics port: Prometheus text on GET /metrics, and a clean exit
 * (code 0) on SIGTERM.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { NatsServer } from "@synod/transport-nats"
import { Effect, Schedule } from "effect"

const main = new URL("../src/main.ts", import.meta.url).pathname

describe("node process", () => {
  it.live(
    "serves Prometheus metrics and exits 0 on SIGTERM",
    () =>
      Effect.gen(function* () {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => mkdtempSync(join(tmpdir(), "synod-metrics-"))),
          (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
        )
        const port = yield* NatsServer.freePort
        const file = join(dir, "node.json")
        writeFileSync(
          file,
          JSON.stringify({
            name: "m",
            cluster: { acceptors: ["s1"], leaders: ["s1"], replicas: ["s1"] },
            node: "s1",
            dataDir: join(dir, "data"),
            transport: { kind: "memory" },
            metricsPort: port,
            logLevel: "Warn"
          })
        )
        const child = yield* Effect.acquireRelease(
          Effect.sync(() => spawn(process.execPath, [main, "--config", file], { stdio: "ignore" })),
          (c) => Effect.sync(() => c.kill("SIGKILL"))
        )
        const scrape = Effect.tryPromise(() => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()))
        const body = yield* scrape.pipe(
          Effect.filterOrFail((text) => /synod_leader_active\{[^}]*id="s1"[^}]*\} 1/.test(text)),
          Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 100 })))
        )
        assert.match(body, /synod_acceptor_promised_round\{[^}]*id="s1"[^}]*\} 1/)
        assert.match(body, /synod_leader_ballot_round/)
        assert.match(body, /synod_wal_fsync_milliseconds_bucket/)
        const code = yield* Effect.callback<number | null>((resume) => {
          child.once("exit", (c) => resume(Effect.succeed(c)))
          child.kill("SIGTERM")
        })
        assert.strictEqual(code, 0)
      }),
    30_000
  )
})

/**
 * A server process (`synod serve`) with a metrics port: Prometheus text on GET /metrics,
 * and a clean exit (code 0) on SIGTERM. The endpoint listens on 127.0.0.1 unless
 * `metricsHost` says otherwise.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Host, HostConfig } from "@synod/node"
import { NatsServer } from "@synod/testing"
import { Effect, Layer, Option, Result, Schedule } from "effect"

const cli = new URL("../../../apps/cluster/src/cli.ts", import.meta.url).pathname

describe("server process", () => {
  it.live(
    "serves Prometheus metrics and exits 0 on SIGTERM",
    () =>
      Effect.gen(function* () {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => mkdtempSync(join(tmpdir(), "synod-metrics-"))),
          (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
        )
        const nats = yield* NatsServer.start()
        const port = yield* NatsServer.freePort
        const file = join(dir, "node.json")
        writeFileSync(
          file,
          JSON.stringify({
            name: "m",
            cluster: { acceptors: ["s1"], leaders: ["s1"], replicas: ["s1"] },
            node: "s1",
            dataDir: join(dir, "data"),
            transport: { kind: "nats", servers: [nats.url] },
            metricsPort: port,
            logLevel: "Warn"
          })
        )
        const child = yield* Effect.acquireRelease(
          Effect.sync(() => spawn(process.execPath, [cli, "serve", "--config", file], { stdio: "ignore" })),
          (c) => Effect.sync(() => c.kill("SIGKILL"))
        )
        const scrape = Effect.tryPromise(() => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()))
        const body = yield* scrape.pipe(
          Effect.filterOrFail((text) => /synod_leader_active\{[^}]*id="s1"[^}]*\} 1/.test(text)),
          Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 100 })))
        )
        assert.match(body, /synod_acceptor_promised_round\{[^}]*id="s1"[^}]*\} 1/)
        // present from the start, at 0 until they move: no command has been submitted
        for (const family of [
          "synod_commands_committed_total",
          "synod_slots_performed_total",
          "synod_leader_preemptions_total",
          "synod_retransmissions_total",
          "synod_slot_lag"
        ])
          assert.match(body, new RegExp(`${family}\\{[^}]*id="s1"`), family)
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

  it.live("binds the metrics endpoint to 127.0.0.1 unless metricsHost says otherwise", () =>
    Effect.gen(function* () {
      const serve = Effect.fnUntraced(function* (metricsHost?: string) {
        const metricsPort = yield* NatsServer.freePort
        const config = HostConfig.decode({
          name: "m",
          cluster: { acceptors: ["s1"], leaders: ["s1"], replicas: ["s1"] },
          node: "s1",
          transport: { kind: "memory" },
          metricsPort,
          ...(metricsHost === undefined ? {} : { metricsHost })
        })
        yield* Layer.build(Host.metricsServer(Result.getOrThrow(config)))
        return metricsPort
      })
      // every 127.x.y.z is loopback on Linux: a server on every interface answers on 127.0.0.2 too
      const status = (address: string, port: number) =>
        Effect.tryPromise(() => fetch(`http://${address}:${port}/metrics`).then((r) => r.status)).pipe(Effect.option)

      const local = yield* serve()
      assert.deepStrictEqual(yield* status("127.0.0.1", local), Option.some(200))
      assert.deepStrictEqual(yield* status("127.0.0.2", local), Option.none())
      const everywhere = yield* serve("0.0.0.0")
      assert.deepStrictEqual(yield* status("127.0.0.2", everywhere), Option.some(200))
    })
  )
})

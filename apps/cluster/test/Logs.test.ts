/**
 * The log lines of `synod up` and `synod serve`: `--log-level` and `SYNOD_LOG_LEVEL` take
 * the same spellings for both; debug adds the slots each replica performed; a start line,
 * and stop lines saying why.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { daemon, http, run } from "./Process.ts"

describe("logs", () => {
  it.live(
    "synod up --log-level DEBUG: a start line, each batch of decided slots, the stop with its signal",
    () =>
      Effect.gen(function* () {
        const proc = yield* daemon(["up", "--port", "0", "--log-level", "DEBUG"])
        const url = yield* proc.waitFor(/HTTP API on (http:\/\/\S+)/)
        for (let i = 0; i < 3; i++)
          assert.strictEqual((yield* http("PUT", `${url}/kv/log${i}`, { value: "x" })).status, 200)
        assert.strictEqual(yield* proc.signal("SIGTERM"), 0)
        const err = proc.stderr()
        assert.match(err, /INFO .*synod up started \{ url: 'http:\/\/127\.0\.0\.1:\d+', transport: 'memory' \}/)
        assert.match(err, /DEBUG .*performed decided slots \{ from: \d+, through: \d+, commands: \d+ \}/)
        assert.match(err, /INFO .*synod up stopping \{ reason: 'signal SIGTERM' \}/)
        assert.match(err, /INFO .*synod up stopped \{ reason: 'signal SIGTERM' \}/)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "SYNOD_LOG_LEVEL=warning: no info lines; a level nobody spells is refused by up and serve alike",
    () =>
      Effect.gen(function* () {
        const proc = yield* daemon(["up", "--port", "0"], { SYNOD_LOG_LEVEL: "warning" })
        const url = yield* proc.waitFor(/HTTP API on (http:\/\/\S+)/)
        assert.strictEqual((yield* http("PUT", `${url}/kv/quiet`, { value: "x" })).status, 200)
        assert.strictEqual(yield* proc.signal("SIGINT"), 0)
        assert.notMatch(proc.stderr(), /INFO|DEBUG/)
        // a valid config: the level is refused before anything connects
        const config = join(mkdtempSync(join(tmpdir(), "synod-logs-")), "s1.json")
        writeFileSync(
          config,
          JSON.stringify({
            name: "logs",
            node: "s1",
            dataDir: join(config, "..", "s1"),
            cluster: { acceptors: ["s1"], leaders: ["s1"], replicas: ["s1"] },
            transport: { kind: "nats", servers: ["nats://127.0.0.1:1"] }
          })
        )
        for (const args of [
          ["up", "--port", "0", "--log-level", "verbose"],
          ["serve", "--config", config, "--log-level", "verbose"]
        ]) {
          const r = yield* run(args)
          assert.strictEqual(r.code, 2, `${args.join(" ")}: ${r.stderr}`)
          assert.include(r.stderr, 'expected debug, info, warn or error, got "verbose"')
        }
      }).pipe(Effect.scoped),
    60_000
  )
})

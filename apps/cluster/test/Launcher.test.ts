/**
 * The installed command (`bin/synod.js`, the bundle `pnpm build` writes): a server runs
 * with one malloc arena and V8's young generation capped, in the process that was started
 * (it replaces itself, so a supervisor's signals still reach it), unless the user set
 * `MALLOC_ARENA_MAX` or `--max-semi-space-size` (in `NODE_OPTIONS` here).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { NatsServer } from "@synod/testing"
import { Effect } from "effect"

const bin = new URL("../bin/synod.js", import.meta.url).pathname

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "synod-launcher-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** `synod serve` from the bin, until its HTTP API is up; stopped with SIGTERM when the scope closes. */
const serve = (config: string, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.callback<ChildProcess, Error>((resume) => {
      const child = spawn(process.execPath, [bin, "serve", "--config", config], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "MALLOC_ARENA_MAX")), ...env }
      })
      let output = ""
      const append = (d: Buffer) => {
        output += d.toString()
        if (/HTTP API on /.test(output)) resume(Effect.succeed(child))
      }
      child.stdout?.on("data", append)
      child.stderr?.on("data", append)
      child.once("exit", (code) => resume(Effect.fail(new Error(`synod serve exited (${code}): ${output}`))))
    }),
    (child) =>
      Effect.callback<void>((resume) => {
        if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
        child.once("exit", () => resume(Effect.void))
        child.kill("SIGTERM")
      })
  )

/** The environment of process `pid`, as the kernel has it. */
const environment = (pid: number): Record<string, string> =>
  Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, "utf8")
      .split("\0")
      .filter((line) => line.includes("="))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)])
  )

describe.runIf(process.platform === "linux")("the synod command", () => {
  it.live(
    "runs a server with one malloc arena and a capped young generation in the process it was started as, unless told otherwise",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const nats = yield* NatsServer.start()
        const config = (node: string) => {
          const file = join(dir, `${node}.json`)
          writeFileSync(
            file,
            JSON.stringify({
              name: "launcher",
              node,
              cluster: { acceptors: [node], leaders: [node], replicas: [node] },
              dataDir: join(dir, node),
              transport: { kind: "nats", servers: [nats.url] },
              http: { port: 0 },
              logLevel: "Warn"
            })
          )
          return file
        }
        const plain = yield* serve(config("a"), {})
        const told = yield* serve(config("b"), { MALLOC_ARENA_MAX: "4", NODE_OPTIONS: "--max-semi-space-size=16" })
        const arenaOnly = yield* serve(config("c"), { MALLOC_ARENA_MAX: "2" })
        const cmdline = (pid: number | undefined) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
        // the pid the supervisor holds is the server's: its command line is the server's
        assert.include(cmdline(plain.pid), "serve")
        assert.include(cmdline(plain.pid), "--max-semi-space-size=8")
        assert.strictEqual(environment(plain.pid!).MALLOC_ARENA_MAX, "1")
        assert.strictEqual(environment(told.pid!).MALLOC_ARENA_MAX, "4")
        assert.notInclude(cmdline(told.pid), "--max-semi-space-size=8")
        // what the user did not set is still set
        assert.strictEqual(environment(arenaOnly.pid!).MALLOC_ARENA_MAX, "2")
        assert.include(cmdline(arenaOnly.pid), "--max-semi-space-size=8")
      }).pipe(Effect.scoped),
    60_000
  )

  it("on a Node older than 24 says which it needs and which it found, and exits 1", () => {
    // Node 20, which the machines ship, fails on the bundle's imports with errors that do not say why
    const older = 'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.20.2"})'
    const run = spawnSync(process.execPath, ["--import", older, bin, "--help"], { encoding: "utf8", timeout: 20_000 })
    assert.strictEqual(run.status, 1)
    assert.strictEqual(run.stdout, "")
    assert.include(run.stderr, "synod needs Node 24 or later, and this is Node 20.20.2")
  })
})

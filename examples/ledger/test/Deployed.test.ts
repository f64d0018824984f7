/**
 * The ledger deployed as three server processes over NATS (`src/server.ts`, one per
 * node, each with its data directory), used by clients over NATS: money moves while a
 * server is killed and restarted, and the command-line client (`src/client.ts`) reads the
 * result. Needs a `nats-server` binary (Debian/Ubuntu: apt-get install nats-server).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@synod/actors"
import { Host, HostConfig } from "@synod/node"
import { Effect } from "effect"
import * as Ledger from "../src/Ledger.ts"

const src = new URL("../src/", import.meta.url).pathname

const freePort = Effect.promise(
  () =>
    new Promise<number>((resolve, reject) => {
      const s = createServer()
      s.once("error", reject)
      s.listen(0, "127.0.0.1", () => {
        const { port } = s.address() as { port: number }
        s.close(() => resolve(port))
      })
    })
)

/** A child process for the life of the scope (SIGTERM, then SIGKILL), with its output. */
const process_ = (file: string, args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] })
      const output = { text: "" }
      child.stdout?.on("data", (d: Buffer) => (output.text += d.toString()))
      child.stderr?.on("data", (d: Buffer) => (output.text += d.toString()))
      return { child, output }
    }),
    ({ child }) => stop(child, "SIGTERM")
  )

const stop = (child: ChildProcess, signal: NodeJS.Signals) =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000)
    child.once("exit", () => {
      clearTimeout(timer)
      resume(Effect.void)
    })
    child.kill(signal)
  })

/** Waits until `output` matches (polling; fails after 30 s with what was written). */
const waitFor = (output: { readonly text: string }, pattern: RegExp) =>
  Effect.gen(function* () {
    for (let i = 0; i < 600; i++) {
      if (pattern.test(output.text)) return
      yield* Effect.sleep("50 millis")
    }
    return yield* Effect.die(new Error(`no ${pattern} in:\n${output.text}`))
  })

const runClient = (args: ReadonlyArray<string>) =>
  Effect.callback<{ code: number; stdout: string; stderr: string }>((resume) => {
    execFile(process.execPath, [join(src, "client.ts"), ...args], { timeout: 30_000 }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : Number(error.code ?? -1), stdout, stderr }))
    )
  })

describe("the ledger as three processes over NATS", () => {
  it.live(
    "moves money through a server's crash and restart; the command-line client reads the balances",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "ledger-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
        const natsPort = yield* freePort
        const binary = existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server"
        const nats = yield* process_(binary, ["-a", "127.0.0.1", "-p", String(natsPort)])
        yield* waitFor(nats.output, /Server is ready/)

        const ids = ["s1", "s2", "s3"]
        const files = ids.map((id) => {
          const file = join(dir, `${id}.json`)
          writeFileSync(
            file,
            JSON.stringify({
              name: "ledger",
              node: id,
              dataDir: join(dir, id),
              cluster: { acceptors: ids, leaders: ids, replicas: ids },
              transport: { kind: "nats", servers: [`nats://127.0.0.1:${natsPort}`] }
            })
          )
          return file
        })
        const start = (file: string) => process_(process.execPath, [join(src, "server.ts"), file])
        const servers = yield* Effect.forEach(files, start)
        yield* Effect.forEach(servers, (s) => waitFor(s.output, /ledger server s\d of cluster "ledger" running/))

        // a client in this process, on its own NATS connection, as an application embeds one;
        // the cluster and the NATS servers as a server's config names them
        const config = yield* HostConfig.decodeEffect(JSON.parse(readFileSync(files[0]!, "utf8")))
        if (config.transport.kind !== "nats") return assert.fail("the servers talk over NATS")
        const transport = Host.natsTransport({ name: config.name, transport: config.transport }, "app")
        yield* Effect.gen(function* () {
          const client = yield* Client.make(Ledger.machine, config.cluster)
          yield* client.submit({ _tag: "Deposit", account: "alice", amount: 1000 })
          for (let i = 0; i < 5; i++) yield* client.submit({ _tag: "Transfer", from: "alice", to: "bob", amount: 100 })
          // s1 (the first leader) dies; the others carry on, then it comes back from its data directory
          yield* stop(servers[0]!.child, "SIGKILL")
          for (let i = 0; i < 5; i++) yield* client.submit({ _tag: "Transfer", from: "alice", to: "bob", amount: 100 })
          const refused = yield* client.submit({ _tag: "Transfer", from: "alice", to: "bob", amount: 1 })
          assert.deepStrictEqual(refused, { _tag: "Refused", reason: "InsufficientFunds", balance: 0 })
          const again = yield* start(files[0]!)
          yield* waitFor(again.output, /ledger server s1 of cluster "ledger" running/)
          yield* client.submit({ _tag: "Transfer", from: "bob", to: "carol", amount: 250 })
        }).pipe(Effect.scoped, Effect.provide(transport))

        const balance = yield* runClient([files[1]!, "balance", "bob"])
        assert.deepStrictEqual(
          [balance.code, JSON.parse(balance.stdout)],
          [0, { _tag: "Balances", balances: { bob: 750 } }],
          balance.stderr
        )
        const overdraw = yield* runClient([files[2]!, "withdraw", "carol", "251"])
        assert.deepStrictEqual(
          [overdraw.code, JSON.parse(overdraw.stdout)],
          [1, { _tag: "Refused", reason: "InsufficientFunds", balance: 250 }],
          overdraw.stderr
        )
        const bad = yield* runClient([files[2]!, "withdraw", "carol", "-5"])
        assert.strictEqual(bad.code, 2)
        assert.include(bad.stderr, "amount")
      }).pipe(Effect.scoped),
    120_000
  )
})

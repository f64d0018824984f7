/**
 * Crash test with real processes: three `synod serve` processes over a nats-server the
 * test starts, each with its own data directory. Clients advance counters by
 * compare-and-set while the test SIGKILLs servers at random moments (the first leader
 * first) and restarts them from their data directories, once after deleting the victim's
 * replica directory (a lost disk). Afterwards every acknowledged command is in every
 * replica's state exactly once, and the replicas are identical. Each value is over a
 * kilobyte, so the followers' acceptors log the P2as as they received them (`Wal`), and
 * the restarted ones recover from such records.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeFileSystem, NodePath } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@synod/actors"
import { ClusterConfig, StateMachine } from "@synod/core"
import { Kv } from "@synod/kv"
import { FileStorage } from "@synod/node"
import { NatsServer } from "@synod/testing"
import { NatsTransport } from "@synod/transport-nats"
import { Effect, Layer, Option, Result } from "effect"

const cli = new URL("../../../apps/cluster/src/cli.ts", import.meta.url).pathname
const clusterInput = {
  acceptors: ["s1", "s2", "s3"],
  leaders: ["s1", "s2", "s3"],
  replicas: ["s1", "s2", "s3"],
  snapshotEvery: 10,
  timeouts: { retransmitMs: 50, heartbeatMs: 50, leaderTimeoutMs: 300, clientTimeoutMs: 15_000 }
}
const config = ClusterConfig.make(clusterInput)

/** Counter value `n`, padded past a kilobyte: a P2a of it is logged as received (`Codec.receivedMinBytes`). */
const counterValue = (n: number) => `${n}|${"x".repeat(1100)}`
/** The count a counter value holds. */
const countOf = (value: string) => Number(value.split("|")[0])

/** A server process: the real Node binary (the npm `node` shim does not forward signals). */
const makeNode = (dir: string, id: string, url: string) => {
  const file = join(dir, `${id}.json`)
  writeFileSync(
    file,
    JSON.stringify({
      name: "crash",
      cluster: clusterInput,
      node: id,
      dataDir: join(dir, id),
      transport: { kind: "nats", servers: [url] },
      http: { port: 0 },
      logLevel: "Info"
    })
  )
  let child: ChildProcess | undefined
  let log = ""
  // what the running process printed: its HTTP API's address (port 0) is new on each start
  let current = ""
  const start = Effect.sync(() => {
    const c = spawn(process.execPath, [cli, "serve", "--config", file], { stdio: ["ignore", "pipe", "pipe"] })
    current = ""
    const append = (d: Buffer) => {
      log += d.toString()
      if (child === c) current += d.toString()
    }
    c.stdout?.on("data", append)
    c.stderr?.on("data", append)
    child = c
  })
  const exited = (c: ChildProcess) =>
    Effect.callback<number | null>((resume) => {
      if (c.exitCode !== null || c.signalCode !== null) return resume(Effect.succeed(c.exitCode))
      c.once("exit", (code) => resume(Effect.succeed(code)))
    })
  const signal = (sig: NodeJS.Signals) =>
    Effect.suspend(() => {
      const c = child
      if (c === undefined) return Effect.succeed(null)
      child = undefined
      c.kill(sig)
      return exited(c)
    })
  const httpUrl = () => /HTTP API on (http:\/\/[^\s"]+)/.exec(current)?.[1]
  return { id, start, kill: signal("SIGKILL"), stop: signal("SIGTERM"), log: () => log, httpUrl }
}

const getJson = (url: string) =>
  Effect.promise(() =>
    fetch(url)
      .then((r) => (r.ok ? r.json() : { status: r.status }))
      .catch((e: unknown) => ({ error: String(e) }))
  )

/**
 * Polls a server until its own replica serves every counter at `steps`
 * (`consistency=serializable`) and the state a clean stop saves is that one (`verified`:
 * the replicas compared digests of it).
 */
const caughtUp = (node: ReturnType<typeof makeNode>, clients: number, steps: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 60_000
    let seen = "nothing yet"
    while (Date.now() < deadline) {
      const url = node.httpUrl()
      if (url !== undefined) {
        const values = yield* Effect.forEach(
          Array.from({ length: clients }, (_, i) => i),
          (i) => getJson(`${url}/kv/counter${i}?consistency=serializable`)
        )
        const status = (yield* getJson(`${url}/status`)) as {
          servers?: Array<{ replica?: { slotOut: number; verified: number } }>
        }
        const replica = status.servers?.[0]?.replica
        seen = JSON.stringify({ values, replica })
        if (
          values.every((v) => (v as { value?: unknown }).value === counterValue(steps)) &&
          replica !== undefined &&
          replica.verified === replica.slotOut
        )
          return
      }
      yield* Effect.sleep("100 millis")
    }
    assert.fail(`${node.id} did not catch up within 60 s; it last served ${seen}; its log:\n${node.log()}`)
  })

describe("real server processes killed under load", () => {
  it.live(
    "every acknowledged command is applied exactly once and the replicas end identical",
    () =>
      Effect.gen(function* () {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => mkdtempSync(join(tmpdir(), "synod-crash-"))),
          (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
        )
        const nats = yield* NatsServer.start()
        const nodes = config.replicas.map((id) => makeNode(dir, id, nats.url))
        yield* Effect.acquireRelease(
          Effect.forEach(nodes, (n) => n.start, { discard: true }),
          () => Effect.forEach(nodes, (n) => n.kill, { discard: true })
        )
        const ctx = yield* Layer.build(
          NatsTransport.layer({ servers: [nats.url], name: "crash-client", cluster: "crash" })
        )

        // clients: each advances its own counter by compare-and-set on the version it last
        // saw; after an unknown outcome it re-reads the counter and its version
        const clients = 3
        const steps = 40
        const acknowledged: Array<number> = Array.from({ length: clients }, () => 0)
        const workload = Effect.forEach(
          Array.from({ length: clients }, (_, i) => i),
          (i) =>
            Effect.gen(function* () {
              const client = yield* Client.make(Kv.machine, config, { id: `w${i}` }).pipe(Effect.provideContext(ctx))
              let current = 0
              let version = 0
              while (current < steps) {
                const value = counterValue(current + 1)
                const r = yield* Effect.result(client.submit({ _tag: "Cas", key: `counter${i}`, version, value }))
                if (Result.isSuccess(r)) {
                  // nobody else writes this key: a failed swap means an acknowledged step was lost
                  const swap = r.success
                  assert.isTrue(
                    swap._tag === "Swapped" && swap.ok,
                    `client ${i} step ${value}: ${JSON.stringify(swap)}`
                  )
                  if (swap._tag === "Swapped") version = swap.version
                  current++
                  acknowledged[i] = current
                } else {
                  const read = yield* client.submit({ _tag: "Get", key: `counter${i}` })
                  if (read._tag === "Value") {
                    current = read.value === null ? 0 : countOf(read.value)
                    version = read.version
                  }
                }
                yield* Effect.sleep(`${5 + Math.floor(Math.random() * 20)} millis`)
              }
            }),
          { concurrency: "unbounded", discard: true }
        )
        // the nemesis: kill a server, wait, restart it from its data directory; s1 (the first leader) first
        const nemesis = Effect.gen(function* () {
          for (let k = 0; k < 5; k++) {
            yield* Effect.sleep(`${200 + Math.floor(Math.random() * 400)} millis`)
            const victim = k === 0 ? nodes[0]! : nodes[Math.floor(Math.random() * nodes.length)]!
            yield* victim.kill
            // once, the victim also loses its replica's disk: it must copy a peer's state
            if (k === 2) rmSync(join(dir, victim.id, `replica-${victim.id}`), { recursive: true, force: true })
            yield* Effect.sleep(`${100 + Math.floor(Math.random() * 400)} millis`)
            yield* victim.start
          }
        })
        yield* Effect.all([workload, nemesis], { concurrency: "unbounded", discard: true })
        const client = yield* Client.make(Kv.machine, config, { id: "final" }).pipe(Effect.provideContext(ctx))
        for (let i = 0; i < clients; i++) {
          const read = yield* client.submit({ _tag: "Get", key: `counter${i}` })
          assert.strictEqual(read._tag === "Value" ? read.value : undefined, counterValue(steps), JSON.stringify(read))
        }
        // let every replica catch up (a server restarted last may still be starting, or
        // copying a peer's state after the lost disk): each serves the final counters from
        // its own replica; then stop them cleanly: each exits 0 after a last snapshot
        yield* Effect.forEach(nodes, (n) => caughtUp(n, clients, steps), { concurrency: "unbounded", discard: true })
        for (const n of nodes) {
          const code = yield* n.stop
          assert.strictEqual(code, 0, `${n.id} exit code; its log:\n${n.log()}`)
        }

        const codecs = StateMachine.codecs(Kv.machine)
        const states: Array<string> = []
        for (const n of nodes) {
          const store = yield* (yield* FileStorage.make({ dataDir: join(dir, n.id) })).replica(n.id)
          const loaded = yield* store.load
          assert.isTrue(Option.isSome(loaded), `${n.id} left no replica snapshot; its log:\n${n.log()}`)
          const snapshot = Option.getOrThrow(loaded)
          const state = Result.getOrThrow(codecs.decodeState(snapshot.state))
          for (let i = 0; i < clients; i++) {
            const counter = Option.map(Option.fromUndefinedOr(state.entries.get(`counter${i}`)), (e) => e.value)
            assert.deepStrictEqual(counter, Option.some(counterValue(steps)), `${n.id} counter${i}`)
          }
          states.push(JSON.stringify(snapshot.state))
        }
        assert.strictEqual(new Set(states).size, 1, "identical replica states")
        // the path under test was taken: some acceptor logged a P2a as it came
        const logs = nodes.map((n) => readFileSync(join(dir, n.id, `acceptor-${n.id}`, "wal"), "latin1"))
        assert.isTrue(
          logs.some((log) => log.includes(`{"raw":0`)),
          "no acceptor logged a received P2a as it came"
        )
        assert.deepStrictEqual(
          acknowledged,
          Array.from({ length: clients }, () => steps)
        )
      }).pipe(Effect.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer))),
    120_000
  )
})

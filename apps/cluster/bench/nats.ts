/**
 * Benchmark over NATS: starts a local nats-server and three `synod serve` processes
 * (each a replica + leader + acceptor of the product's key-value store, state on disk
 * with fsync), then drives them from this process with 1, 16, 64 and 256 concurrent
 * clients and prints ops/s and latency p50/p99 for each: writes (a `Put` of the client's
 * key), then linearizable reads of the keys written (a `Get` by read index, no slot),
 * and the ratio of reads to writes at each level.
 *
 *   pnpm bench            (root; also runs the in-memory benchmark)
 *   pnpm bench nats --profile DIR   also CPU profiles of the servers, and their top functions
 *   node apps/cluster/bench/nats.ts --seconds 5
 *   BENCH_OPS=write,read,logread BENCH_LEVELS=1,256 pnpm bench nats   also reads through the log
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import { Client } from "@synod/actors"
import { ClusterConfig } from "@synod/core"
import { Kv } from "@synod/kv"
import * as NatsServer from "@synod/testing/NatsServer"
import { NatsTransport } from "@synod/transport-nats"
import { Effect, Layer } from "effect"
import { printTop } from "./Profile.ts"

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`)
  const v = i > 0 ? Number(process.argv[i + 1]) : dflt
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`--${name} must be a positive number\n`)
    process.exit(2)
  }
  return v
}
const seconds = arg("seconds", 4)
const profileAt = process.argv.indexOf("--profile")
/** `--profile DIR` (or BENCH_PROFILE_DIR): CPU profiles of the servers, and their top functions at the end. */
const profileDir =
  profileAt > 0 ? (process.argv[profileAt + 1] ?? "synod-profiles") : process.env.BENCH_PROFILE_DIR || undefined
const levels = (process.env.BENCH_LEVELS ?? "1,16,64,256").split(",").map(Number)
/** What each level measures: `write` (Put), `read` (Get by read index), `logread` (Get through the log). */
type Op = "write" | "read" | "logread"
const ops = (process.env.BENCH_OPS ?? "write,read").split(",") as Array<Op>
for (const op of ops) {
  if (op !== "write" && op !== "read" && op !== "logread") {
    process.stderr.write(`BENCH_OPS: "${op}" is not one of write, read, logread\n`)
    process.exit(2)
  }
}
const cli = new URL("../src/cli.ts", import.meta.url).pathname

const clusterInput = {
  acceptors: ["s1", "s2", "s3"],
  leaders: ["s1", "s2", "s3"],
  replicas: ["s1", "s2", "s3"],
  window: 16,
  batch: { maxSize: 256 },
  timeouts: { clientTimeoutMs: 30_000 }
}
const config = ClusterConfig.make(clusterInput)

const startNode = (dir: string, id: string, url: string) =>
  Effect.acquireRelease(
    Effect.callback<ChildProcess, Error>((resume) => {
      const file = join(dir, `${id}.json`)
      writeFileSync(
        file,
        JSON.stringify({
          name: "bench",
          cluster: clusterInput,
          node: id,
          dataDir: join(dir, id),
          transport: { kind: "nats", servers: [url] },
          logLevel: "Warn"
        })
      )
      // the real Node binary, not the npm `node` shim, so that signals reach it
      // --profile DIR: a CPU profile of each server process, written when it exits
      const profile = profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${join(profileDir, id)}`]
      const child = spawn(process.execPath, [...profile, cli, "serve", "--config", file], {
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      const append = (d: Buffer) => {
        output += d.toString()
        // it prints this line once its roles run and its connections are up
        if (/synod serve: node /.test(output)) resume(Effect.succeed(child))
      }
      child.stdout?.on("data", append)
      child.stderr?.on("data", append)
      child.once("exit", (code) => resume(Effect.fail(new Error(`server ${id} exited (${code}): ${output}`))))
    }),
    (child) =>
      Effect.callback<void>((resume) => {
        if (child.exitCode !== null) return resume(Effect.void)
        child.once("exit", () => resume(Effect.void))
        child.kill("SIGTERM")
      })
  )

/**
 * CPU seconds a process has used (user + system), from /proc on Linux (undefined
 * elsewhere): CPU per operation does not depend on what else the machine runs, where
 * throughput and latency do.
 */
const cpuSeconds = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  try {
    // fields after the command name (which may hold spaces): utime is the 14th, stime the 15th
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

/** One operation of client `i`: its `n`-th write of its key, or a read of it. */
const operation = (op: Op, client: Client.Client<Kv.Command, Kv.Result>, i: number, n: number) =>
  op === "write"
    ? client.submit({ _tag: "Put", key: `k${i}`, value: `${n}` })
    : op === "read"
      ? client.read({ _tag: "Get", key: `k${i}` })
      : client.submit({ _tag: "Get", key: `k${i}` })

const measure = (op: Op, clients: ReadonlyArray<Client.Client<Kv.Command, Kv.Result>>) =>
  Effect.gen(function* () {
    const latencies: Array<number> = []
    const start = performance.now()
    const end = start + seconds * 1000
    let last = start
    yield* Effect.forEach(
      clients,
      (client, i) =>
        Effect.gen(function* () {
          let n = 0
          while (performance.now() < end) {
            const t0 = performance.now()
            yield* operation(op, client, i, n++)
            latencies.push(performance.now() - t0)
            if (i === 0 && performance.now() - last > 1000) {
              last = performance.now()
              process.stderr.write(
                `  ${clients.length} clients, ${op}: ${Math.round((last - start) / 1000)}/${seconds} s, ${latencies.length} ops\r`
              )
            }
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
    const elapsed = (performance.now() - start) / 1000
    latencies.sort((a, b) => a - b)
    return { ops: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99) }
  })

const main = Effect.gen(function* () {
  process.stdout.write(
    `synod over NATS: 3 server processes (fsync on) + 1 client process, ${cpus().length} cores, ${seconds} s per level\n`
  )
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "synod-bench-"))),
    (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
  )
  const nats = yield* NatsServer.start()
  process.stderr.write("  starting 3 server processes...\r")
  const children = yield* Effect.forEach(["s1", "s2", "s3"], (id) => startNode(dir, id, nats.url), {
    concurrency: "unbounded"
  })
  const serversCpu = () => children.reduce((sum, c) => sum + (cpuSeconds(c.pid) ?? Number.NaN), 0)
  const clientCpu = () => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1e6
  }
  const ctx = yield* Layer.build(NatsTransport.layer({ servers: [nats.url], name: "bench-client", cluster: "bench" }))
  // one client scope (ids `<scope>.<i>`): their requests to a replica share a subject, so the
  // transport coalesces them as it did before requests had subjects of their own
  const all = yield* Effect.forEach(
    Array.from({ length: Math.max(...levels) }, (_, i) => i),
    (i) => Client.make(Kv.machine, config, { id: `bench.${i}` }).pipe(Effect.provideContext(ctx))
  )
  yield* all[0]!.submit({ _tag: "Put", key: "warm", value: "up" })
  // every key the reads read exists: each client writes its own once
  yield* Effect.forEach(all, (client, i) => client.submit({ _tag: "Put", key: `k${i}`, value: "0" }), {
    concurrency: "unbounded",
    discard: true
  })
  // CPU per operation: the three servers together, and this (the client) process
  process.stdout.write("clients  op          ops/s   p50 ms   p99 ms   servers µs/op   client µs/op\n")
  const ratios: Array<string> = []
  for (const n of levels) {
    const rates = new Map<Op, number>()
    for (const op of ops) {
      const [s0, c0] = [serversCpu(), clientCpu()]
      const r = yield* measure(op, all.slice(0, n))
      rates.set(op, r.ops)
      const total = r.ops * seconds
      const perOp = (cpu: number) => (Number.isFinite(cpu) ? ((cpu * 1e6) / total).toFixed(0) : "-")
      process.stdout.write(
        `${String(n).padStart(7)}  ${op.padEnd(8)} ${r.ops.toFixed(0).padStart(9)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${perOp(serversCpu() - s0).padStart(15)} ${perOp(clientCpu() - c0).padStart(14)}\n`
      )
    }
    const [w, rd] = [rates.get("write"), rates.get("read")]
    if (w !== undefined && rd !== undefined) ratios.push(`${n} clients ${(rd / w).toFixed(1)}x`)
  }
  if (ratios.length > 0) process.stdout.write(`reads (read index) per write: ${ratios.join(", ")}\n`)
})

Effect.runPromise(Effect.scoped(main)).then(
  () => {
    // the servers have exited (the scope closed), so their profiles are written
    if (profileDir !== undefined) printTop(profileDir, (line) => process.stdout.write(`${line}\n`))
    process.exit(0)
  },
  (e) => {
    process.stderr.write(`${e}\n`)
    process.exit(1)
  }
)

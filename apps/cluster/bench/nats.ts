/**
 * Benchmark over NATS: starts a local nats-server and three `synod serve` processes
 * (each a replica + leader + acceptor of the product's key-value store, state on disk
 * with fsync), then drives them from this process with 1, 16, 64 and 256 concurrent
 * clients and prints committed ops/s and latency p50/p99 for each.
 *
 *   pnpm bench            (root; also runs the in-memory benchmark)
 *   pnpm bench nats --profile DIR   also CPU profiles of the servers and of this process (the
 *                                   client), and their top functions
 *   pnpm bench nats --tracing       the levels with tracing off, then on (OTLP to a sink in
 *                                   this process), and what tracing costs per command
 *   node apps/cluster/bench/nats.ts --seconds 5 --warmup 2   (each level: 2 s not counted, then 5 s)
 *   BENCH_OPS=write,read,logread BENCH_LEVELS=1,256 pnpm bench nats   also reads through the log
 *   pnpm bench nats --clients separate   one synod client per loop instead of one shared by all
 *   pnpm bench nats --hops          one client, writes then reads, and where each one's time
 *                                   goes, hop by hop, from every process's hop log (Hops.ts)
 *   BENCH_LEVELS=256 BENCH_OPS=read pnpm bench nats --hops   the same logs under load (the
 *                                   per-command summary then means little; read the logs)
 *   pnpm bench nats --keys 256 --value-bytes 8   another workload than the yardstick's
 *   BENCH_SERVER_FLAGS="--max-semi-space-size=4"   Node flags for the server processes only
 *   pnpm bench nats --stalls        also each level's event-loop stalls in each server: how
 *                                   many of 50 ms or more, the longest, how many a collection
 *                                   of 10 ms or more fell in, and the collections of 5 ms or
 *                                   more (LoopStalls.ts)
 *
 * The workload is the yardstick's (keys uniform over 100,000, 100-byte values), so the
 * table compares with its figures.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { Session } from "node:inspector/promises"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import { Client } from "@synod/actors"
import { ClusterConfig, HopLog } from "@synod/core"
import { Kv } from "@synod/kv"
import * as NatsServer from "@synod/testing/NatsServer"
import { NatsTransport } from "@synod/transport-nats"
import { Effect, Layer } from "effect"
import * as Tracing from "@synod/cluster/Tracing"
import * as Hops from "./Hops.ts"
import * as LoopStalls from "./LoopStalls.ts"
import { printTop } from "./Profile.ts"
import { cpuSeconds, runQueueSeconds, wakeups } from "./Cluster.ts"

const arg = (name: string, dflt: number, min: "positive" | "non-negative" = "positive") => {
  const i = process.argv.indexOf(`--${name}`)
  const v = i > 0 ? Number(process.argv[i + 1]) : dflt
  if (!Number.isFinite(v) || v < 0 || (v === 0 && min === "positive")) {
    process.stderr.write(`--${name} must be a ${min} number\n`)
    process.exit(2)
  }
  return v
}
const seconds = arg("seconds", 4)
/**
 * Seconds each level runs before it is measured, as the yardstick's `WARM`: what the level
 * before left behind (replicas applying their backlog, a snapshot, JIT) is not counted.
 */
const warmup = arg("warmup", 1, "non-negative")
/**
 * The yardstick's workload (../shared/peers/loadgen.mjs): each write puts a 16-byte key
 * drawn uniformly from `--keys` (100,000) with a `--value-bytes` (100) printable value;
 * each read gets a key drawn from those this run has written (all exist, values included).
 */
const keyspace = arg("keys", 100_000)
const valueBytes = arg("value-bytes", 100)
const keyOf = (k: number) => `k${String(k).padStart(15, "0")}`
const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
/** 1,024 random values, used in turn (drawing one per write would cost the client CPU the servers' figures do not include). */
const values = Array.from({ length: 1024 }, () =>
  Array.from({ length: valueBytes }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join("")
)
/** Keys written so far (indices into the keyspace), for reads to draw from. */
const written: Array<number> = []
const seen = new Set<number>()
const profileAt = process.argv.indexOf("--profile")
/** `--profile DIR` (or BENCH_PROFILE_DIR): CPU profiles of the servers, and their top functions at the end. */
const profileDir =
  profileAt > 0 ? (process.argv[profileAt + 1] ?? "synod-profiles") : process.env.BENCH_PROFILE_DIR || undefined
/** `--hops`: one client, writes and reads, each process logging its hops (HopLog) to a directory of its own. */
const hopsDir = process.argv.includes("--hops") ? mkdtempSync(join(tmpdir(), "synod-hops-")) : undefined
if (hopsDir !== undefined) HopLog.start(hopsDir)
const levels =
  hopsDir !== undefined && !process.env.BENCH_LEVELS
    ? [1]
    : (process.env.BENCH_LEVELS ?? "1,16,64,256").split(",").map(Number)
/** What each level measures: `write` (Put), `read` (Get by read index), `logread` (Get through the log). */
type Op = "write" | "read" | "logread"
const ops = (
  hopsDir !== undefined && !process.env.BENCH_OPS ? "write,read" : (process.env.BENCH_OPS ?? "write,read")
).split(",") as Array<Op>
for (const op of ops) {
  if (op !== "write" && op !== "read" && op !== "logread") {
    process.stderr.write(`BENCH_OPS: "${op}" is not one of write, read, logread\n`)
    process.exit(2)
  }
}
/**
 * `--clients shared` (the default, as the yardstick's load generator): the C closed loops of
 * a level share one synod client, as an application's concurrent requests do; its commands
 * are in flight together and their answers come back on one subject, coalesced.
 * `--clients separate`: one synod client per loop (C clients in one process, each with its
 * own subject), the cost of many independent clients.
 */
const clientsAt = process.argv.indexOf("--clients")
const clientsMode = clientsAt > 0 ? process.argv[clientsAt + 1] : "shared"
if (clientsMode !== "shared" && clientsMode !== "separate") {
  process.stderr.write(`--clients: "${clientsMode}" is not one of shared, separate\n`)
  process.exit(2)
}
/** `--tracing`: run the levels with tracing off, then on, and compare. */
const tracingToo = process.argv.includes("--tracing")
const cli = new URL("../src/cli.ts", import.meta.url).pathname
/** `BENCH_SERVER_FLAGS`: Node flags for the server processes only (`--max-semi-space-size=4`, say). */
const serverFlags = (process.env.BENCH_SERVER_FLAGS ?? "").split(" ").filter((flag) => flag !== "")
/** `--stalls`: each server notes its event loop's stalls (`LoopStalls.ts`), printed per level. */
const stallsToo = process.argv.includes("--stalls")
const stallsOf = (dir: string, id: string) => join(dir, `${id}.stalls`)

const clusterInput = {
  acceptors: ["s1", "s2", "s3"],
  leaders: ["s1", "s2", "s3"],
  replicas: ["s1", "s2", "s3"],
  window: 16,
  batch: { maxSize: 256 },
  timeouts: { clientTimeoutMs: 30_000 }
}
const config = ClusterConfig.make(clusterInput)

const startNode = (dir: string, id: string, url: string, tracing: string | undefined) =>
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
          logLevel: "Warn",
          ...(tracing === undefined ? {} : { tracing: { endpoint: tracing } })
        })
      )
      // the real Node binary, not the npm `node` shim, so that signals reach it
      // --profile DIR: a CPU profile of each server process, written when it exits
      const profile = profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${join(profileDir, id)}`]
      const monitor = stallsToo ? ["--import", new URL("./LoopStalls.ts", import.meta.url).pathname] : []
      const child = spawn(process.execPath, [...serverFlags, ...profile, ...monitor, cli, "serve", "--config", file], {
        stdio: ["ignore", "pipe", "pipe"],
        // only the config file turns tracing on
        env: {
          ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("OTEL_"))),
          ...(hopsDir === undefined ? {} : { SYNOD_HOP_LOG: hopsDir }),
          ...(stallsToo ? { SYNOD_LOOP_STALLS: stallsOf(dir, id) } : {})
        }
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

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

/** One operation: a write of a key drawn from the keyspace, or a read of one written before. */
const operation = (
  op: Op,
  client: Client.Client<Kv.Command, Kv.Result>,
  n: number
): Effect.Effect<Kv.Result, Client.SubmitError | Client.ReadError> => {
  if (op === "write") {
    const k = Math.floor(Math.random() * keyspace)
    if (!seen.has(k)) {
      seen.add(k)
      written.push(k)
    }
    return client.submit({ _tag: "Put", key: keyOf(k), value: values[n % values.length]! })
  }
  const key = keyOf(written[Math.floor(Math.random() * written.length)]!)
  return op === "read" ? client.read({ _tag: "Get", key }) : client.submit({ _tag: "Get", key })
}

/**
 * One level: `clients` loops doing `op` for `warmup` + `seconds`; only operations started
 * after the warm-up count, and `cpu` is sampled when the warm-up ends and at the end.
 */
const measure = <A>(op: Op, clients: ReadonlyArray<Client.Client<Kv.Command, Kv.Result>>, cpu: () => A) =>
  Effect.gen(function* () {
    const latencies: Array<number> = []
    const warmEnd = performance.now() + warmup * 1000
    const end = warmEnd + seconds * 1000
    let start = warmEnd
    let atStart: A | undefined
    const began = () => {
      if (atStart !== undefined) return true
      if (performance.now() < warmEnd) return false
      atStart = cpu()
      start = performance.now()
      return true
    }
    let last = performance.now()
    yield* Effect.forEach(
      clients,
      (client, i) =>
        Effect.gen(function* () {
          let n = 0
          while (performance.now() < end) {
            const counted = began()
            const t0 = performance.now()
            if (hopsDir !== undefined) HopLog.mark("C start")
            yield* operation(op, client, n++)
            if (hopsDir !== undefined) HopLog.mark("C done")
            if (counted) latencies.push(performance.now() - t0)
            if (i === 0 && performance.now() - last > 1000) {
              last = performance.now()
              process.stderr.write(
                counted
                  ? `  ${clients.length} clients, ${op}: ${Math.round((last - start) / 1000)}/${seconds} s, ${latencies.length} ops\r`
                  : `  ${clients.length} clients, ${op}: warming up\r`
              )
            }
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
    const elapsed = (performance.now() - start) / 1000
    const cpuSpent = { atStart: atStart ?? cpu(), atEnd: cpu() }
    latencies.sort((a, b) => a - b)
    return {
      ops: latencies.length / elapsed,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      elapsed,
      cpu: cpuSpent
    }
  })

/**
 * An OTLP/HTTP collector that only counts what it gets (requests, bytes, spans), for the
 * lifetime of the scope: tracing's cost is the exporters', not a real collector's.
 */
const sink = Effect.acquireRelease(
  Effect.callback<{ url: string; stats: { requests: number; bytes: number; spans: number }; close: () => void }>(
    (resume) => {
      const stats = { requests: 0, bytes: 0, spans: 0 }
      const server = createServer((req, res) => {
        let text = ""
        req.on("data", (d: Buffer) => {
          text += d.toString()
        })
        req.on("end", () => {
          stats.requests++
          stats.bytes += text.length
          // every span has a kind, and nothing else in the JSON encoding does
          stats.spans += text.split('"kind":').length - 1
          res.writeHead(200, { "content-type": "application/json" }).end("{}")
        })
      })
      server.listen(0, "127.0.0.1", () =>
        resume(
          Effect.succeed({
            url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
            stats,
            close: () => server.close()
          })
        )
      )
    }
  ),
  (s) => Effect.sync(s.close)
)

interface Row {
  readonly clients: number
  readonly op: Op
  readonly ops: number
  readonly p50: number
  readonly p99: number
  /** CPU microseconds per operation, the three servers together and the client process. */
  readonly servers: number
  readonly client: number
  /** nats-server's CPU per operation. */
  readonly nats: number
  /** Microseconds per operation the servers' main threads waited for a core (`ProcessCpu.runQueueSeconds`). */
  readonly waited: number
  /** Times per operation the servers' main threads slept and were woken, together (`ProcessCpu.wakeups`). */
  readonly wakeups: number
}

/** One cluster (tracing to `collector` when given): each level of clients, printed as it goes. */
const run = (collector: string | undefined) =>
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "synod-bench-"))),
      (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
    )
    const nats = yield* NatsServer.start()
    process.stderr.write("  starting 3 server processes...\r")
    const children = yield* Effect.forEach(["s1", "s2", "s3"], (id) => startNode(dir, id, nats.url, collector), {
      concurrency: "unbounded"
    })
    const serversCpu = () => children.reduce((sum, c) => sum + (cpuSeconds(c.pid) ?? Number.NaN), 0)
    const natsCpu = () => cpuSeconds(nats.pid()) ?? Number.NaN
    // time the servers' main threads were ready to run and waited for a core
    const serversWait = () => children.reduce((sum, c) => sum + (runQueueSeconds(c.pid) ?? Number.NaN), 0)
    const serversWakeups = () => children.reduce((sum, c) => sum + (wakeups(c.pid) ?? Number.NaN), 0)
    const clientCpu = () => {
      const u = process.cpuUsage()
      return (u.user + u.system) / 1e6
    }
    const ctx = yield* Layer.build(NatsTransport.layer({ servers: [nats.url], name: "bench-client", cluster: "bench" }))
    // one client scope (ids `<scope>.<i>`): their requests to a replica share a subject, so the
    // transport coalesces them as it did before requests had subjects of their own
    const made = yield* Effect.forEach(
      Array.from({ length: clientsMode === "shared" ? 1 : Math.max(...levels) }, (_, i) => i),
      (i) => Client.make(Kv.machine, config, { id: `bench.${i}` }).pipe(Effect.provideContext(ctx))
    )
    // loop `i` drives `all[i]`: its own client, or the one they share
    const all = Array.from({ length: Math.max(...levels) }, (_, i) => made[i % made.length]!)
    yield* all[0]!.submit({ _tag: "Put", key: "warm", value: "up" })
    // reads draw from written keys: a few exist before any level runs
    yield* Effect.forEach(all, (client, n) => operation("write", client, n), {
      concurrency: "unbounded",
      discard: true
    })
    // CPU per operation: the three servers together, and this (the client) process
    // and how long the servers' main threads waited for a core, and how often they woke, per operation
    process.stdout.write(
      "clients  op          ops/s   p50 ms   p99 ms   servers µs/op   client µs/op   nats µs/op   servers waited µs/op   servers wake-ups/op\n"
    )
    const rows: Array<Row> = []
    const ratios: Array<string> = []
    for (const n of levels) {
      const rates = new Map<Op, number>()
      for (const op of ops) {
        const r = yield* measure(
          op,
          all.slice(0, n),
          () => [serversCpu(), clientCpu(), natsCpu(), serversWait(), serversWakeups(), Date.now()] as const
        )
        rates.set(op, r.ops)
        const total = r.ops * r.elapsed
        const delta = (k: 0 | 1 | 2 | 3 | 4) => (r.cpu.atEnd[k] - r.cpu.atStart[k]) / total
        const perOp = (k: 0 | 1 | 2 | 3) => delta(k) * 1e6
        const row = {
          clients: n,
          op,
          ops: r.ops,
          p50: r.p50,
          p99: r.p99,
          servers: perOp(0),
          client: perOp(1),
          nats: perOp(2),
          waited: perOp(3),
          wakeups: delta(4)
        }
        rows.push(row)
        const us = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : "-")
        process.stdout.write(
          `${String(n).padStart(7)}  ${op.padEnd(8)} ${r.ops.toFixed(0).padStart(9)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${us(row.servers).padStart(15)} ${us(row.client).padStart(14)} ${us(row.nats).padStart(12)} ${us(row.waited).padStart(22)} ${(Number.isFinite(row.wakeups) ? row.wakeups.toFixed(2) : "-").padStart(21)}\n`
        )
        if (stallsToo) {
          const each = ["s1", "s2", "s3"].map((id) => {
            const file = stallsOf(dir, id)
            const { stalls, collections } = existsSync(file)
              ? LoopStalls.readAll(readFileSync(file, "utf8"), r.cpu.atStart[5], r.cpu.atEnd[5])
              : { stalls: [], collections: [] }
            const over = stalls.filter((s) => s.ms >= 50)
            const inGc = over.filter((s) => LoopStalls.collectionsIn(s, collections, 10).length > 0).length
            const gcMs = collections.reduce((sum, c) => sum + c.ms, 0)
            const longestGc = collections.reduce<LoopStalls.Collection | undefined>(
              (a, c) => (a === undefined || c.ms > a.ms ? c : a),
              undefined
            )
            const stallText =
              over.length > 0
                ? ` (longest ${Math.max(...over.map((s) => s.ms)).toFixed(0)} ms, ${inGc} with a collection of 10 ms or more)`
                : ""
            const gcText =
              longestGc === undefined
                ? "no collection of 5 ms or more"
                : `collections of 5 ms or more: ${collections.length}, ${gcMs.toFixed(0)} ms in all, longest ${longestGc.ms.toFixed(0)} ms ${longestGc.kind}`
            return `${id} ${over.length}${stallText}; ${gcText}`
          })
          process.stdout.write(`${" ".repeat(17)}event-loop stalls of 50 ms or more:\n`)
          for (const line of each) process.stdout.write(`${" ".repeat(19)}${line}\n`)
        }
      }
      const [w, rd] = [rates.get("write"), rates.get("read")]
      if (w !== undefined && rd !== undefined) ratios.push(`${n} clients ${(rd / w).toFixed(1)}x`)
    }
    if (ratios.length > 0) process.stdout.write(`reads (read index, leased) per write: ${ratios.join(", ")}\n`)
    return rows
  }).pipe(Effect.scoped)

const main = Effect.gen(function* () {
  process.stdout.write(
    `synod over NATS: 3 server processes (fsync on) + 1 client process (${clientsMode === "shared" ? "one synod client shared by the loops" : "one synod client per loop"}), ${cpus().length} cores, ${seconds} s per level after ${warmup} s of warm-up\n`
  )
  if (!tracingToo) return yield* Effect.asVoid(run(undefined))
  process.stdout.write("tracing off:\n")
  const off = yield* run(undefined)
  // on: the servers by their config file, this process's clients by the same layer as `synod serve`
  const collector = yield* sink
  process.stdout.write(`tracing on (OTLP/HTTP JSON to a counting sink at ${collector.url}):\n`)
  const on = yield* run(collector.url).pipe(
    Effect.provide(Tracing.layer({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url }, { instance: "bench-client" }))
  )
  const { requests, bytes, spans } = collector.stats
  process.stdout.write(
    `exported ${spans} spans in ${requests} requests (${(bytes / 1e6).toFixed(1)} MB of JSON)\n` +
      "tracing's cost per command (on minus off; CPU is the steadier figure on a busy machine):\n" +
      "clients  op         ops/s off → on   servers µs/op   client µs/op\n"
  )
  for (let i = 0; i < off.length; i++) {
    const [a, b] = [off[i]!, on[i]!]
    const d = (x: number, y: number) =>
      Number.isFinite(x) && Number.isFinite(y) ? `${y - x >= 0 ? "+" : ""}${(y - x).toFixed(0)}` : "-"
    process.stdout.write(
      `${String(a.clients).padStart(7)}  ${a.op.padEnd(8)} ${`${a.ops.toFixed(0)} → ${b.ops.toFixed(0)}`.padStart(16)} ${d(a.servers, b.servers).padStart(15)} ${d(a.client, b.client).padStart(14)}\n`
    )
  }
})

/**
 * `--profile`: this process's own CPU profile (the synod client, the load loops, its NATS
 * connection), taken through the inspector as `--cpu-prof` takes the servers', and written
 * beside theirs as `DIR/client/`; answers the function that stops and writes it.
 */
const profileSelf = async (dir: string): Promise<() => Promise<void>> => {
  const session = new Session()
  session.connect()
  await session.post("Profiler.enable")
  await session.post("Profiler.start")
  return async () => {
    const { profile } = await session.post("Profiler.stop")
    session.disconnect()
    mkdirSync(join(dir, "client"), { recursive: true })
    writeFileSync(join(dir, "client", `CPU.client.${process.pid}.cpuprofile`), JSON.stringify(profile))
  }
}
const stopSelfProfile = profileDir === undefined ? undefined : await profileSelf(profileDir)

Effect.runPromise(Effect.scoped(main)).then(
  async () => {
    await stopSelfProfile?.()
    // the servers have exited (the scope closed), so their profiles are written
    if (profileDir !== undefined) printTop(profileDir, (line) => process.stdout.write(`${line}\n`))
    if (hopsDir !== undefined) {
      // this process's lines too: its exit handler runs only after this
      process.emit("exit", 0)
      process.stdout.write("where one command's time goes (median and 90th percentile of each step):\n")
      Hops.print(hopsDir, String(process.pid), (line) => process.stdout.write(`${line}\n`))
      process.stdout.write(`the logs, one per process (<µs since the epoch> <event>): ${hopsDir}\n`)
    }
    process.exit(0)
  },
  (e) => {
    process.stderr.write(`${e}\n`)
    process.exit(1)
  }
)

/**
 * Benchmark: a 3-server cluster (colocated replica + leader + acceptor) on the in-memory
 * bus in one process. For 1, 16 and 256 concurrent clients, with batching on and off,
 * prints committed commands per second, latency p50/p99, CPU time per command and resident
 * memory; with batching on, also linearizable reads of the keys written (a `Get` by read
 * index: no slot, so the log's batching does not apply to them).
 *
 *   pnpm --filter @synod/actors bench [-- --seconds 3]
 *   BENCH_OPS=write,read,logread  what to measure (default write,read; logread: a Get through the log)
 *   BENCH_LEVELS=256 BENCH_BATCHING=on BENCH_ENCODE=off node --cpu-prof packages/actors/bench/inmemory.ts
 *   pnpm bench inmemory --keys 100000 --value-bytes 100   the yardstick's workload (16-byte keys
 *                      uniform over 100,000, 100-byte values) instead of 64 keys and counters
 *   pnpm bench inmemory --clients separate   one synod client per loop instead of one shared by all
 *
 * Every message still goes through the wire codec; storage is in memory (no fsync), so
 * this measures the protocol and runtime overhead, not disks or the network.
 */
import { ClusterConfig, InMemoryBus, Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { Clock, Effect, Layer, References } from "effect"
import { Client, Server } from "@synod/actors"

const arg = (name: string, dflt: number | undefined): number | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) return dflt
  const v = Number(process.argv[i + 1])
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`--${name} must be a positive number\n`)
    process.exit(2)
  }
  return v
}
const seconds = arg("seconds", 3)!
/**
 * The keys written: by default client `i` writes key `k<i % 64>` (a small store, the
 * protocol's cost); `--keys N` draws 16-byte keys uniformly from N, as the yardstick does,
 * so the store grows as it would under it and each write costs what a large tree costs.
 */
const keyspace = arg("keys", undefined)
/** `--value-bytes B`: each write's value is B printable characters (default: a counter). */
const valueBytes = arg("value-bytes", undefined)
const keyOf = (k: number) => `k${String(k).padStart(15, "0")}`
const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
/** 1,024 values used in turn: drawing one per write would be the benchmark's own CPU. */
const values =
  valueBytes === undefined
    ? undefined
    : Array.from({ length: 1024 }, () =>
        Array.from({ length: valueBytes }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join("")
      )

/**
 * `--clients shared` (the default, as `pnpm bench nats` and the yardstick's load generator):
 * a level's closed loops share one synod client, as an application's concurrent requests
 * do; its requests to a replica and the answers come in batches. `--clients separate`: one
 * client per loop, each with its own mailbox, timer and answers (many independent clients).
 */
const clientsAt = process.argv.indexOf("--clients")
const clientsMode = clientsAt > 0 ? process.argv[clientsAt + 1] : "shared"
if (clientsMode !== "shared" && clientsMode !== "separate") {
  process.stderr.write(`--clients: "${clientsMode}" is not one of shared, separate\n`)
  process.exit(2)
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

/** BENCH_ENCODE=off: envelopes handed over as they are (as `synod up` does), not through the codec. */
const encode = process.env.BENCH_ENCODE !== "off"

type Op = "write" | "read" | "logread"
const ops = (process.env.BENCH_OPS ?? "write,read").split(",") as Array<Op>
for (const op of ops) {
  if (op !== "write" && op !== "read" && op !== "logread") {
    process.stderr.write(`BENCH_OPS: "${op}" is not one of write, read, logread\n`)
    process.exit(2)
  }
}

const runOne = (clients: number, batching: boolean, op: Op) => {
  const config = ClusterConfig.servers(3, {
    window: 16,
    batch: { maxSize: batching ? 256 : 1 },
    timeouts: { clientTimeoutMs: 30_000 }
  })
  const cluster = Server.layerCluster(config, Kv.machine).pipe(
    Layer.provideMerge(Storage.layerMemory()),
    Layer.provideMerge(InMemoryBus.layer({ encode }))
  )
  return Effect.gen(function* () {
    const clock = yield* Clock.Clock
    const shared = clientsMode === "shared" ? yield* Client.make(Kv.machine, config, { id: "bench" }) : undefined
    const handles = yield* Effect.forEach(
      Array.from({ length: clients }, (_, i) => i),
      (i) => (shared !== undefined ? Effect.succeed(shared) : Client.make(Kv.machine, config, { id: `bench${i}` }))
    )
    // warm up: elect a leader, JIT the hot paths
    yield* handles[0]!.submit({ _tag: "Put", key: "warm", value: "up" })
    // the keys the reads read exist
    yield* Effect.forEach(
      Array.from({ length: Math.min(64, clients) }, (_, i) => i),
      (i) => handles[i]!.submit({ _tag: "Put", key: `k${i}`, value: "0" }),
      { concurrency: "unbounded", discard: true }
    )
    const latencies: Array<number> = []
    const cpu0 = process.cpuUsage()
    const start = clock.currentTimeMillisUnsafe()
    const end = start + seconds * 1000
    yield* Effect.forEach(
      handles,
      (client, i) =>
        Effect.gen(function* () {
          let n = 0
          while (clock.currentTimeMillisUnsafe() < end) {
            const t0 = performance.now()
            const key = keyspace === undefined ? `k${i % 64}` : keyOf(Math.floor(Math.random() * keyspace))
            const value = values === undefined ? `${n}` : values[n % values.length]!
            n++
            yield* op === "write"
              ? client.submit({ _tag: "Put", key, value })
              : op === "read"
                ? client.read({ _tag: "Get", key })
                : client.submit({ _tag: "Get", key })
            latencies.push(performance.now() - t0)
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
    const elapsed = (clock.currentTimeMillisUnsafe() - start) / 1000
    const cpu = process.cpuUsage(cpu0)
    latencies.sort((a, b) => a - b)
    return {
      opsPerSec: latencies.length / elapsed,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      // the whole process's CPU per command: unlike ops/s, hardly moved by other load on the machine
      cpuMicros: (cpu.user + cpu.system) / Math.max(1, latencies.length),
      rssMiB: process.memoryUsage().rss / 2 ** 20
    }
  }).pipe(Effect.scoped, Effect.provide(cluster))
}

const main = Effect.gen(function* () {
  process.stdout.write(
    `synod in-memory benchmark: 3 colocated servers, one process, ${seconds} s per run, ${clientsMode === "shared" ? "one client shared by the loops" : "one client per loop"}\n`
  )
  process.stdout.write("clients  batching  op          ops/s   p50 ms   p99 ms   CPU µs/op   rss MiB\n")
  const ratios: Array<string> = []
  for (const batching of (process.env.BENCH_BATCHING ?? "on,off").split(",").map((b) => b === "on")) {
    for (const clients of (process.env.BENCH_LEVELS ?? "1,16,256").split(",").map(Number)) {
      const rates = new Map<Op, number>()
      // reads take no slot: the log's batching changes nothing for them, so they run once
      for (const op of ops.filter((o) => batching || o === "write")) {
        process.stderr.write(`  running ${clients} clients, batching ${batching ? "on" : "off"}, ${op}...\r`)
        const r = yield* runOne(clients, batching, op)
        rates.set(op, r.opsPerSec)
        process.stdout.write(
          `${String(clients).padStart(7)}  ${(batching ? "on" : "off").padEnd(8)}  ${op.padEnd(8)} ${r.opsPerSec.toFixed(0).padStart(8)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${r.cpuMicros.toFixed(1).padStart(11)} ${r.rssMiB.toFixed(0).padStart(9)}\n`
        )
      }
      const [w, rd] = [rates.get("write"), rates.get("read")]
      if (batching && w !== undefined && rd !== undefined) ratios.push(`${clients} clients ${(rd / w).toFixed(1)}x`)
    }
  }
  if (ratios.length > 0) process.stdout.write(`reads (read index) per write, batching on: ${ratios.join(", ")}\n`)
})

// the cluster's own logs (each level elects a leader) would interleave with the table: warnings only
Effect.runPromise(main.pipe(Effect.provideService(References.MinimumLogLevel, "Warn"))).catch((e) => {
  process.stderr.write(`${e}\n`)
  process.exit(1)
})

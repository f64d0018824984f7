/**
 * Memory benchmark: a nats-server and 3 `synod serve` processes with fsync; prints each
 * server's resident memory (`rss`), the part of it that is the process's own (`anon`:
 * anonymous pages, from `/proc/PID/status`; the rest is mostly the Node binary's code,
 * mapped from the file and shared by every Node process) and its V8 heap in use (from its
 * `/metrics`) when idle, every `--every` keys while 256 clients write `--keys` distinct keys
 * of `--value-bytes`-byte values, and after the writes stop (when V8 has had `--settle`
 * seconds to collect); then the growth per key and per stored byte (key and value bytes)
 * of the largest server. When idle it also prints each server's CPU, as a share of a core.
 *
 *   pnpm bench memory                          1,000,000 keys of 100-byte values
 *   pnpm bench memory --keys 100000 --every 20000
 *   pnpm bench memory --keys 0                 idle only
 *
 * Flags: --keys N (1000000), --value-bytes N (100), --clients N (256), --every N
 * (keys / 10), --idle S (10: before the first reading), --idle-cpu S (5: the idle servers'
 * CPU is measured over this long, after the first reading), --settle S (30), --source (run
 * the servers from the sources, `src/cli.ts` with the source condition, instead of the
 * `synod` command's build), --snapshot-every N (the cluster's `snapshotEvery`; default
 * its default, 10,000 slots, or `snapshotBytes` of commands), --keep.
 */
import { readFileSync } from "node:fs"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, References } from "effect"
import * as Cluster from "./Cluster.ts"
import { cpuSeconds, flag, has, now, print } from "./Cluster.ts"

const keys = flag("keys", 1_000_000)
const valueBytes = flag("value-bytes", 100)
const clients = flag("clients", 256)
const every = flag("every", Math.max(1, Math.floor(keys / 10)))
const idleSeconds = flag("idle", 10)
const idleCpuSeconds = flag("idle-cpu", 5)
// long enough for an idle server's collection (`Memory.collectWhenIdle`: a 10 s period)
const settleSeconds = flag("settle", 30)
const snapshotEvery = flag("snapshot-every", 0)

interface Reading {
  readonly rss: number
  readonly anon: number
  readonly heap: number
}

/** The anonymous resident memory of process `pid`, in bytes (NaN when unknown). */
const anonymous = (pid: number | undefined): number => {
  try {
    const kib = readFileSync(`/proc/${pid}/status`, "utf8").match(/^RssAnon:\s+(\d+) kB$/m)?.[1]
    return kib === undefined ? Number.NaN : Number(kib) * 1024
  } catch {
    return Number.NaN
  }
}

/** One server's memory from its `/metrics` (and `/proc`), or undefined when it does not answer. */
const reading = (server: Cluster.Server): Effect.Effect<Reading | undefined> =>
  Effect.promise(async () => {
    try {
      const page = await (await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text()
      const value = (name: string) => Number(page.match(new RegExp(`^${name} (\\S+)$`, "m"))?.[1] ?? Number.NaN)
      return {
        rss: value("process_resident_memory_bytes"),
        anon: anonymous(server.pid()),
        heap: value("nodejs_heap_size_used_bytes")
      }
    } catch {
      return undefined
    }
  })

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1).padStart(8)

const main = Effect.gen(function* () {
  const entry = has("source") ? "source" : "build"
  print(
    `memory benchmark: 3 servers over NATS (fsync on, run from the ${entry === "build" ? "build: bin/synod.js" : "sources"}), ` +
      `${clients} clients writing ${keys} distinct keys of ${valueBytes}-byte values` +
      `${snapshotEvery > 0 ? `, snapshotEvery ${snapshotEvery}` : ""}; MiB`
  )
  const cluster = yield* Cluster.start({
    servers: 3,
    name: "memory",
    clientTimeoutMs: 30_000,
    keep: () => has("keep"),
    entry,
    ...(snapshotEvery > 0 ? { snapshotEvery } : {})
  })
  const readAll = Effect.forEach(cluster.servers, reading, { concurrency: "unbounded" })
  const row = (label: string, rs: ReadonlyArray<Reading | undefined>) =>
    print(
      `${label.padStart(12)} ${rs.map((r) => (r === undefined ? `${"-".padStart(8)}`.repeat(3) : `${mib(r.rss)}${mib(r.anon)}${mib(r.heap)}`)).join("   ")}`
    )
  print(
    `${"keys".padStart(12)} ${cluster.servers.map((s) => `${`${s.id} rss`.padStart(8)}${"anon".padStart(8)}${"heap".padStart(8)}`).join("   ")}`
  )
  yield* Effect.sleep(idleSeconds * 1000)
  const idle = yield* readAll
  row("idle", idle)
  // what an idle server costs: heartbeats, Progress and History, timers, metrics (after
  // the start's collections, `Memory.ts`, which end within `--idle` seconds by default)
  const cpuBefore = cluster.servers.map((server) => cpuSeconds(server.pid()) ?? Number.NaN)
  yield* Effect.sleep(idleCpuSeconds * 1000)
  print(
    `${"idle CPU".padStart(12)} ${cluster.servers
      .map(
        (server, i) =>
          `${server.id} ${((((cpuSeconds(server.pid()) ?? Number.NaN) - cpuBefore[i]!) / idleCpuSeconds) * 100).toFixed(1)}%`
      )
      .join("   ")} of a core, over ${idleCpuSeconds} s`
  )
  // `--keys 0`: the idle figures only
  if (keys === 0) return

  // client i writes mem/<i>/<n>: every write a new key
  let next = every
  const started = now()
  const load = yield* Cluster.load(cluster, {
    clients,
    valueBytes,
    key: (i, n) => `mem/${i}/${n}`
  })
  while (load.committed() < keys) {
    yield* Effect.sleep(200)
    if (load.committed() >= next) {
      next += every
      const rs = yield* readAll
      const rate = load.committed() / ((now() - started) / 1000)
      row(String(load.committed()), rs)
      process.stderr.write(`  ${rate.toFixed(0)} writes/s\r`)
    }
  }
  yield* load.stop
  const written = load.committed()
  row(String(written), yield* readAll)
  yield* Effect.sleep(settleSeconds * 1000)
  const settled = yield* readAll
  row("settled", settled)

  const stored = written * (`mem/${clients - 1}/${Math.ceil(written / clients)}`.length + valueBytes)
  // of the servers that answered (a server busy for over 5 s, in a snapshot or a collection, does not)
  const largest = (rs: ReadonlyArray<Reading | undefined>, f: (r: Reading) => number) =>
    Math.max(...rs.flatMap((r) => (r === undefined ? [] : [f(r)])))
  const growth = (f: (r: Reading) => number) => {
    const bytes = largest(settled, f) - largest(idle, f)
    return `${(bytes / written).toFixed(0)} B/key (${(bytes / stored).toFixed(2)} B per stored byte)`
  }
  print(
    `settled, largest server: rss ${mib(largest(settled, (r) => r.rss)).trim()} MiB, ` +
      `anon ${mib(largest(settled, (r) => r.anon)).trim()} MiB, heap ${mib(largest(settled, (r) => r.heap)).trim()} MiB`
  )
  print(
    `growth after ${written} keys (${mib(stored).trim()} MiB of keys and values): ` +
      `rss ${growth((r) => r.rss)}, anon ${growth((r) => r.anon)}, heap ${growth((r) => r.heap)}`
  )
}).pipe(Effect.scoped, Effect.provideService(References.MinimumLogLevel, "Warn"))

NodeRuntime.runMain(main)

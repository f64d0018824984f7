/**
 * Soak benchmark: a 3-server cluster (colocated replica + leader + acceptor) on the
 * in-memory bus in one process, with real file storage (write-ahead logs, fsync,
 * snapshots) in a fresh temp directory. Many clients put on a bounded key space in a
 * closed loop until `--commands` have completed; every `--every` commands it prints
 * throughput, memory and the size of the data directory, so a leak or an unbounded log
 * shows up as a curve that keeps rising although the state machine's size is fixed.
 *
 *   pnpm --filter @synod/node soak [-- --commands 10000000 --every 1000000]
 *   node packages/node/bench/soak.ts --commands 200000 --every 50000 --keep
 *
 * Flags: --commands N, --every M, --clients C, --keys K, --value-bytes B,
 * --snapshot-every S (the config's snapshotEvery), --keep (leave the data directory).
 */
import { mkdtemp, readdir, rm, stat } from "node:fs/promises"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import { Client, Server } from "@synod/actors"
import { ClusterConfig, InMemoryBus } from "@synod/core"
import { Kv } from "@synod/kv"
import { Effect, Fiber, Layer, Queue } from "effect"
import { FileStorage } from "@synod/node"

const fail = (message: string): never => {
  process.stderr.write(`soak: ${message}\n`)
  process.exit(2)
}

const known = new Set(["commands", "every", "clients", "keys", "value-bytes", "snapshot-every"])
const flags = new Map<string, string>()
let keep = false
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]!
  if (a === "--keep") keep = true
  else if (a.startsWith("--") && known.has(a.slice(2))) flags.set(a.slice(2), process.argv[++i] ?? "")
  else fail(`unknown argument "${a}" (flags: --${[...known].join(", --")}, --keep)`)
}
/** `--name` as an integer ≥ `min`, or `dflt` when absent; anything else exits 2 naming the flag. */
const int = <D extends number | undefined>(name: string, dflt: D, min = 1): number | D => {
  const raw = flags.get(name)
  if (raw === undefined) return dflt
  const v = Number(raw)
  return Number.isSafeInteger(v) && v >= min && raw.trim() !== ""
    ? v
    : fail(`--${name} must be an integer ≥ ${min}, got "${raw}"`)
}
const total = int("commands", 10_000_000)
const every = int("every", 1_000_000)
const clients = int("clients", 256)
const keys = int("keys", 1024)
const valueBytes = int("value-bytes", 16, 0)
const snapshotEvery = int("snapshot-every", undefined)

// same tuning as the in-memory benchmark, so the numbers compare; a long client timeout
// because an fsync stall is something to measure here, not a failure
const config = ClusterConfig.servers(3, {
  window: 16,
  batch: { maxSize: 256 },
  timeouts: { clientTimeoutMs: 30_000 },
  ...(snapshotEvery === undefined ? {} : { snapshotEvery })
})
const value = "v".repeat(valueBytes)
const MiB = 2 ** 20

/** Bytes of all files under `dir`; files renamed away mid-walk (compaction, atomic writes) count 0. */
const dirBytes = (dir: string) =>
  Effect.promise(async () => {
    const entries = await readdir(dir, { withFileTypes: true, recursive: true })
    const sizes = await Promise.all(
      entries
        .filter((e) => e.isFile())
        .map((e) =>
          stat(join(e.parentPath, e.name)).then(
            (s) => s.size,
            () => 0
          )
        )
    )
    return sizes.reduce((a, b) => a + b, 0)
  })

interface Point {
  readonly done: number
  readonly seconds: number
  readonly opsPerSec: number
  readonly rssMiB: number
  readonly heapMiB: number
}

const run = (dataDir: string) =>
  Effect.gen(function* () {
    const handles = yield* Effect.forEach(
      Array.from({ length: clients }, (_, i) => i),
      (i) => Client.make(Kv.machine, config, { id: `soak${i}` })
    )
    // elect a leader before the clock starts
    yield* handles[0]!.submit({ _tag: "Put", key: "warm", value })
    process.stdout.write("  commands   seconds     ops/s   rss MiB  heap MiB  data MiB\n")
    // the clients only sample the cheap numbers; walking the data directory happens in
    // this reporter fiber so it never holds up a submit
    const points = yield* Queue.unbounded<Point>()
    const checkpoints = Math.ceil(total / every)
    const reporter = yield* Effect.forkChild(
      Effect.forEach(Array.from({ length: checkpoints }), () =>
        Effect.gen(function* () {
          const p = yield* Queue.take(points)
          const dataMiB = (yield* dirBytes(dataDir)) / MiB
          process.stdout.write(
            `${String(p.done).padStart(10)} ${p.seconds.toFixed(1).padStart(9)} ${p.opsPerSec.toFixed(0).padStart(9)} ${p.rssMiB.toFixed(0).padStart(9)} ${p.heapMiB.toFixed(0).padStart(9)} ${dataMiB.toFixed(1).padStart(9)}\n`
          )
          return { done: p.done, rssMiB: p.rssMiB, dataMiB }
        })
      )
    )
    const start = performance.now()
    let issued = 0
    let done = 0
    let last = { t: start, done: 0 }
    yield* Effect.forEach(
      handles,
      (client) =>
        Effect.gen(function* () {
          while (issued < total) {
            const n = issued++
            yield* client.submit({ _tag: "Put", key: `k${n % keys}`, value })
            done++
            if (done % every === 0 || done === total) {
              const t = performance.now()
              const mem = process.memoryUsage()
              yield* Queue.offer(points, {
                done,
                seconds: (t - start) / 1000,
                opsPerSec: ((done - last.done) * 1000) / (t - last.t),
                rssMiB: mem.rss / MiB,
                heapMiB: mem.heapUsed / MiB
              })
              last = { t, done }
            }
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
    const curve = yield* Fiber.join(reporter)
    return { curve, seconds: (performance.now() - start) / 1000 }
  }).pipe(
    Effect.scoped,
    Effect.provide(
      Server.layerCluster(config, Kv.machine).pipe(
        Layer.provideMerge(FileStorage.layerNode({ dataDir })),
        Layer.provideMerge(InMemoryBus.layer())
      )
    )
  )

const main = Effect.gen(function* () {
  const dataDir = yield* Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "synod-soak-"))),
    (dir) => (keep ? Effect.void : Effect.promise(() => rm(dir, { recursive: true, force: true })))
  )
  process.stdout.write(
    `synod soak: 3 colocated servers, in-memory bus, file storage (fsync) in ${dataDir}${keep ? " (kept)" : ""}\n` +
      `  ${total} commands, report every ${every}, ${clients} clients, ${keys} keys, ${valueBytes}-byte values\n` +
      `  window ${config.window}, batch ${config.batch.maxSize}, snapshotEvery ${config.snapshotEvery}, node ${process.version}, ${cpus().length} cores\n`
  )
  const { curve, seconds } = yield* run(dataDir)
  process.stdout.write(`\n${total} commands in ${seconds.toFixed(1)} s, ${(total / seconds).toFixed(0)} ops/s\n\n`)
  process.stdout.write("| commands | RSS MiB | data-dir MiB |\n|---:|---:|---:|\n")
  for (const p of curve) process.stdout.write(`| ${p.done} | ${p.rssMiB.toFixed(0)} | ${p.dataMiB.toFixed(1)} |\n`)
})

Effect.runPromise(Effect.scoped(main)).catch((e) => {
  process.stderr.write(`${e}\n`)
  process.exit(1)
})

/**
 * Memory benchmark: a nats-server and 3 `synod serve` processes with fsync; prints each
 * server's resident memory and V8 heap (from its `/metrics`) when idle, every
 * `--every` keys while 256 clients write `--keys` distinct keys of `--value-bytes`-byte
 * values, and after the writes stop (when V8 has had `--settle` seconds to collect);
 * then the growth per key and per stored byte (key and value bytes) of the largest server.
 *
 *   pnpm bench memory                          1,000,000 keys of 100-byte values
 *   pnpm bench memory --keys 100000 --every 20000
 *
 * Flags: --keys N (1000000), --value-bytes N (100), --clients N (256), --every N
 * (keys / 10), --idle S (10: before the first reading), --settle S (15), --keep.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, References } from "effect"
import * as Cluster from "./Cluster.ts"
import { flag, has, now, print } from "./Cluster.ts"

const keys = flag("keys", 1_000_000)
const valueBytes = flag("value-bytes", 100)
const clients = flag("clients", 256)
const every = flag("every", Math.max(1, Math.floor(keys / 10)))
const idleSeconds = flag("idle", 10)
const settleSeconds = flag("settle", 15)

interface Reading {
  readonly rss: number
  readonly heap: number
}

/** One server's memory from its `/metrics`, or undefined when it does not answer. */
const reading = (url: string): Effect.Effect<Reading | undefined> =>
  Effect.promise(async () => {
    try {
      const page = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text()
      const value = (name: string) => Number(page.match(new RegExp(`^${name} (\\S+)$`, "m"))?.[1] ?? Number.NaN)
      return { rss: value("process_resident_memory_bytes"), heap: value("nodejs_heap_size_used_bytes") }
    } catch {
      return undefined
    }
  })

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1).padStart(8)

const main = Effect.gen(function* () {
  print(
    `memory benchmark: 3 servers over NATS (fsync on), ${clients} clients writing ${keys} distinct keys ` +
      `of ${valueBytes}-byte values`
  )
  const cluster = yield* Cluster.start({ servers: 3, name: "memory", clientTimeoutMs: 30_000, keep: () => has("keep") })
  const readAll = Effect.forEach(cluster.servers, (s) => reading(s.url), { concurrency: "unbounded" })
  const row = (label: string, rs: ReadonlyArray<Reading | undefined>) =>
    print(
      `${label.padStart(12)} ${rs.map((r) => (r === undefined ? "       -        -" : `${mib(r.rss)} ${mib(r.heap)}`)).join("   ")}`
    )
  print(`${"keys".padStart(12)} ${cluster.servers.map((s) => `${s.id} rss MiB  heap MiB`.padStart(17)).join("   ")}`)
  yield* Effect.sleep(idleSeconds * 1000)
  const idle = yield* readAll
  row("idle", idle)

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
  const largest = (rs: ReadonlyArray<Reading | undefined>, f: (r: Reading) => number) =>
    Math.max(...rs.map((r) => (r === undefined ? Number.NaN : f(r))))
  const heapGrowth = largest(settled, (r) => r.heap) - largest(idle, (r) => r.heap)
  const rssGrowth = largest(settled, (r) => r.rss) - largest(idle, (r) => r.rss)
  print(
    `growth after ${written} keys (${mib(stored).trim()} MiB of keys and values): ` +
      `heap ${(heapGrowth / written).toFixed(0)} B/key (${(heapGrowth / stored).toFixed(2)} B per stored byte), ` +
      `rss ${(rssGrowth / written).toFixed(0)} B/key (${(rssGrowth / stored).toFixed(2)} B per stored byte)`
  )
}).pipe(Effect.scoped, Effect.provideService(References.MinimumLogLevel, "Warn"))

NodeRuntime.runMain(main)

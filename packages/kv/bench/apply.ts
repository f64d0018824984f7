/**
 * Benchmark: the store's `apply` alone, as three replicas run it in one process: Puts of
 * 16-byte keys drawn uniformly from `--keys` (100,000) with `--value-bytes` (100) values, in
 * batches of `--batch` (64) commands, each batch applied by three independent states in
 * turn (their trees compete for the CPU's caches as a cluster's do). Each state holds every
 * key before the clock starts, so each round measures a store of `--keys` keys, as under
 * the yardstick once it has run a while. Prints µs per apply.
 *
 *   pnpm bench apply [--keys 100000] [--value-bytes 100] [--batch 64] [--commands 600000]
 */
import { Kv } from "@synod/kv"

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) return dflt
  const v = Number(process.argv[i + 1])
  if (!Number.isInteger(v) || v <= 0) {
    process.stderr.write(`--${name} must be a positive integer\n`)
    process.exit(2)
  }
  return v
}
const keyspace = arg("keys", 100_000)
const valueBytes = arg("value-bytes", 100)
const batch = arg("batch", 64)
const commands = arg("commands", 600_000)

const keyOf = (k: number) => `k${String(k).padStart(15, "0")}`
const value = "v".repeat(valueBytes)
const machine = Kv.machine
const edit = machine.edit

/** A Put of key `k` as a replica gets it: decoded from JSON, so each key is a string of its own. */
const put = (k: number): Kv.Command =>
  machine.fast!.decodeCommand!(JSON.parse(JSON.stringify({ _tag: "Put", key: keyOf(k), value })))!

/** A store holding every key of the keyspace. */
const full = (): Kv.State => {
  let s = machine.initial
  for (let k = 0; k < keyspace; k++) s = machine.apply(s, put(k))[0]
  return s
}

/** Applies `n` commands to three full states; answers µs per apply. */
const run = (n: number): number => {
  const states = [full(), full(), full()]
  const all = Array.from({ length: n }, () => put(Math.floor(Math.random() * keyspace)))
  const t0 = performance.now()
  for (let at = 0; at < n; at += batch) {
    for (let r = 0; r < states.length; r++) {
      let s = edit === undefined ? states[r]! : edit.begin(states[r]!)
      for (let i = at; i < Math.min(n, at + batch); i++) s = machine.apply(s, all[i]!)[0]
      states[r] = edit === undefined ? s : edit.end(s)
    }
  }
  return ((performance.now() - t0) * 1000) / (n * states.length)
}

process.stdout.write(
  `Kv.apply: Puts over ${keyspace} keys, ${valueBytes}-byte values, batches of ${batch}, 3 states${edit === undefined ? "" : ", edited in place per batch"}\n`
)
run(Math.min(commands, 100_000)) // warm up: JIT
for (let round = 1; round <= 3; round++)
  process.stdout.write(`  round ${round}: ${run(commands).toFixed(2)} µs per apply\n`)

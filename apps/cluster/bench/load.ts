/**
 * Load benchmark: a nats-server and 3 `synod serve` processes with fsync, 256 closed-loop
 * clients in this process writing 4 KB values for 60 s (after a 5 s warm-up). Prints
 * committed ops/s and latency p50/p99 for every 5 s interval, and the leader changes seen while polling each
 * server's `GET /status` (the active leader with the highest ballot) twice a second. The
 * run should keep one leader throughout (warm-up included) and commit steadily.
 *
 *   pnpm bench load
 *   pnpm bench load --clients 64 --value-bytes 1024 --seconds 20 --servers 5
 *
 * Flags: --clients N (256), --value-bytes N (4096), --seconds N (60), --servers N (3),
 * --interval S (5), --warmup S (5: writes before the measured run), --client-timeout MS
 * (10000), --keep (keep data and logs).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Option, References } from "effect"
import * as Cluster from "./Cluster.ts"
import { flag, has, now, percentile, print } from "./Cluster.ts"

const clients = flag("clients", 256)
const valueBytes = flag("value-bytes", 4096)
const seconds = flag("seconds", 60)
const servers = flag("servers", 3)
const intervalMs = flag("interval", 5) * 1000
const clientTimeoutMs = flag("client-timeout", 10_000)
const warmupMs = flag("warmup", 5) * 1000

interface Interval {
  readonly latencies: Array<number>
  unknown: number
  /** Status polls that found no active leader. */
  leaderless: number
}

const ms = (x: number) => (Number.isNaN(x) ? "-" : x.toFixed(0))

const main = Effect.gen(function* () {
  print(
    `load benchmark: ${servers} servers over NATS (fsync on), ${clients} clients writing ${valueBytes}-byte values ` +
      `for ${seconds} s, ops/s every ${intervalMs / 1000} s`
  )
  const cluster = yield* Cluster.start({
    servers,
    name: "load",
    clientTimeoutMs,
    keep: () => has("keep")
  })
  const intervals: Array<Interval> = []
  let t0 = Number.POSITIVE_INFINITY
  const interval = (i: number): Interval => {
    while (intervals.length <= i) intervals.push({ latencies: [], unknown: 0, leaderless: 0 })
    return intervals[i]!
  }
  const slot = (end: number) => (end < t0 ? undefined : interval(Math.floor((end - t0) / intervalMs)))
  const load = yield* Cluster.load(cluster, {
    clients,
    valueBytes,
    onCommit: (start, end) => slot(end)?.latencies.push(end - start),
    onUnknown: (_, end) => {
      const s = slot(end)
      if (s !== undefined) s.unknown++
    }
  })
  print(`waiting for a leader and the first commit…`)
  const first = yield* load.firstCommitAfter(0).pipe(Effect.timeoutOption("60 seconds"))
  if (Option.isNone(first)) {
    print("no commit within 60 s: giving up")
    Cluster.printLogs(cluster, 0)
    return
  }

  // leader watch: the active leader with the highest ballot, polled twice a second
  const changes: Array<string> = []
  let current: string | undefined
  let latest: string | undefined
  let polls = 0
  let unanswered = 0
  let leaderless = 0
  const poll = Effect.gen(function* () {
    const rows = yield* cluster.statuses(1000)
    polls++
    unanswered += rows.filter((r) => r === undefined).length
    const leader = Cluster.activeLeader(rows)
    const seen = leader === undefined ? undefined : `${leader.id} ${Cluster.ballotText(leader.ballot)}`
    latest = seen
    if (seen === undefined) {
      leaderless++
      const s = slot(now())
      if (s !== undefined) s.leaderless++
    }
    if (seen !== undefined && seen !== current) {
      // negative: during the warm-up
      const at = ((now() - t0) / 1000).toFixed(1)
      if (current !== undefined) {
        changes.push(`${at} s: ${current} → ${seen}`)
        print(`  ${at.padStart(5)} s  leader change: ${current} → ${seen}`)
      } else print(`leader ${seen}`)
      current = seen
    }
  })
  t0 = now() + warmupMs
  yield* poll
  yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep("500 millis"), poll)))
  if (warmupMs > 0) {
    print(`warming up for ${warmupMs / 1000} s (not counted)…`)
    yield* Effect.sleep(Math.max(0, t0 - now()))
  }
  print(
    `${"interval".padEnd(11)} ${"ops/s".padStart(7)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"unknown".padStart(7)}  leader`
  )
  const count = Math.ceil((seconds * 1000) / intervalMs)
  for (let i = 0; i < count; i++) {
    yield* Effect.sleep(Math.max(0, t0 + (i + 1) * intervalMs - now()))
    const s = interval(i)
    const sorted = [...s.latencies].sort((a, b) => a - b)
    const from = (i * intervalMs) / 1000
    print(
      `${`${from}-${from + intervalMs / 1000} s`.padEnd(11)} ${(s.latencies.length / (intervalMs / 1000)).toFixed(0).padStart(7)} ` +
        `${ms(percentile(sorted, 50)).padStart(7)} ${ms(percentile(sorted, 99)).padStart(7)} ${String(s.unknown).padStart(7)}  ${latest ?? "none"}` +
        (s.leaderless > 0 ? ` (no active leader in ${s.leaderless} polls)` : "")
    )
  }
  yield* load.stop
  const done = intervals.slice(0, count)
  const all = done.flatMap((s) => s.latencies).sort((a, b) => a - b)
  const rates = done.map((s) => s.latencies.length / (intervalMs / 1000))
  const median = [...rates].sort((a, b) => a - b)[Math.floor(rates.length / 2)] ?? 0
  const min = Math.min(...rates)
  const unknown = done.reduce((n, s) => n + s.unknown, 0)
  const idle = rates.filter((r) => r === 0).length
  print(`\nsummary`)
  print(
    `  ${all.length} writes committed in ${seconds} s: ${(all.length / seconds).toFixed(0)} ops/s, ` +
      `${((all.length * valueBytes) / seconds / 1024 / 1024).toFixed(2)} MB/s of values; ` +
      `p50 ${ms(percentile(all, 50))} ms, p99 ${ms(percentile(all, 99))} ms, max ${ms(all.at(-1) ?? Number.NaN)} ms; ${unknown} unknown outcomes`
  )
  print(`  intervals: min ${min.toFixed(0)} ops/s, median ${median.toFixed(0)} ops/s, ${idle} without a commit`)
  print(
    `  leader changes: ${changes.length}${changes.length > 0 ? ` (${changes.join("; ")})` : ""}; ` +
      `${leaderless}/${polls} polls without an active leader, ${unanswered} status requests unanswered`
  )
  const steady = idle === 0 && min >= median / 2
  print(
    `  one leader throughout: ${changes.length === 0 && leaderless === 0 ? "PASS" : "FAIL"}; ` +
      `steady commits (every interval ≥ half the median): ${steady ? "PASS" : "FAIL"}`
  )
  if (changes.length > 0 || !steady) Cluster.printLogs(cluster, t0)
})

NodeRuntime.runMain(
  main.pipe(
    Effect.scoped,
    Effect.provideService(References.MinimumLogLevel, "Warn"),
    Effect.catchTag("BenchError", (e) => Effect.sync(() => print(`aborted: ${e.reason}`)))
  )
)

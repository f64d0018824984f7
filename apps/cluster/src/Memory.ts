/**
 * Gives back the memory a process no longer uses, when it has nothing else to do.
 *
 * Starting `synod serve` allocates far more than it keeps (loading and compiling the
 * command line, building schemas and the HTTP router, the first elections), and so does a
 * burst of writes. That garbage grows V8's heap: the young generation to its largest size
 * (two semi-spaces of 16–32 MiB on a machine with a few GiB of memory), the old one to
 * several times what is alive. A process that then sits idle allocates too little to ever
 * trigger the collection that would shrink it again: it idles at its peak. Measured
 * (`pnpm bench memory`, see the README): after 50,000 writes a server held 345 MiB
 * resident with 85–100 MiB of heap in use and 210–220 MiB reserved, of which 43 MiB was
 * alive; one collection brought it to 190 MiB.
 *
 * So a long-running command (`Lifecycle.serve`) runs V8's "last resort" collection once
 * when it starts serving (`collectAll`), and then again whenever it has been idle for a
 * period (`shouldCollect`: under `idleCpu` of a core) and its resident memory has grown
 * by `growth` since the last one. It is a full mark-compact that also shrinks the young
 * generation to its initial size and returns the freed pages. It stops the process: about
 * 60 ms at start, 1.6 s for a heap with 685 MiB alive (measured alone on a loaded 2-core
 * machine); so never while the process is busy, at most once a period, and only while the
 * heap alive after the last one was at most `maxLive` (112 MiB: about a quarter of a
 * second), since an active
 * leader that pauses past a leader timeout sees a follower campaign, and a lightly loaded
 * server's clients wait as long. A larger heap is left to V8's own collector.
 *
 * Right after the start it also collects once a second, `settle` times, while idle: V8
 * drops a function's bytecode only once it went unused through six major collections
 * (`--bytecode-old-age`), and what only the start ran (parsing the command line and the
 * config, building schemas, the HTTP router and the roles) is a tenth of the heap. Without
 * them a server that starts and waits kept it for good: 80.3-81.5 MiB resident and 15.6-16.9
 * of heap in use when idle (`pnpm bench memory --keys 0`), against 79.2-79.8 and 13.9-15.1
 * with them.
 *
 * V8's flags cannot do it alone: `--max-semi-space-size` is read when the heap is set up,
 * before any of this process's code runs (setting it later does nothing). The `synod`
 * command starts servers with it at 8 MiB (`bin/synod.js`, for shorter scavenges under
 * load), which bounds the young generation but does not shrink it when idle.
 *
 * @since 0.3.0
 */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Duration, Effect } from "effect"

type Gc = (options: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void

let gc: Gc | undefined

/**
 * V8's `gc` function: the global one when Node was started with `--expose-gc`, else taken
 * from a fresh context once the flag is set (a context gets `gc` when it is created with
 * the flag on; the main context was created before).
 */
const collector = (): Gc => {
  if (gc !== undefined) return gc
  const global = (globalThis as { gc?: Gc }).gc
  if (typeof global === "function") return (gc = global)
  setFlagsFromString("--expose-gc")
  return (gc = runInNewContext("gc") as Gc)
}

/** A full, memory-reducing collection now (synchronous: the process does nothing else meanwhile). */
export const collectAll: Effect.Effect<void> = Effect.sync(() =>
  collector()({ type: "major", execution: "sync", flavor: "last-resort" })
)

export interface Policy {
  /** How often the process looks. */
  readonly period: Duration.Duration
  /** Idle: it used at most this share of one core over the period. */
  readonly idleCpu: number
  /** Worth a collection: resident memory grew by at least this many bytes since the last one. */
  readonly growth: number
  /**
   * Short enough: the heap alive after the last collection (what the next one's pause
   * follows: live data grows slowly) is at most this many bytes. The collection stops the
   * process for about 2.3 ms per MiB alive on this machine (60 ms at start, 1.6 s at 685
   * MiB); past a leader timeout (300 ms by default) an idle leader's followers would start
   * an election, and a lightly loaded server's clients would wait that long.
   */
  readonly maxLive: number
  /** After the start's collection: this many more, `settlePeriod` apart, each while idle. */
  readonly settle: number
  readonly settlePeriod: Duration.Duration
}

/**
 * Every 10 s; idle under 10% of a core (an idle server's heartbeats, timers and metrics
 * took 2.8% on this loaded 2-core machine; one taking writes, 20% and more); 16 MiB of
 * growth (a few thousand writes of 100-byte values).
 */
export const defaultPolicy: Policy = {
  period: Duration.seconds(10),
  idleCpu: 0.1,
  growth: 16 * 1024 * 1024,
  // about a quarter of a second of pause
  maxLive: 112 * 1024 * 1024,
  // one more than V8's bytecode age (6 collections)
  settle: 7,
  settlePeriod: Duration.seconds(1)
}

/** What one period showed: CPU used over it, and resident memory now and after the last collection. */
export interface Sample {
  readonly cpuMicros: number
  readonly periodMicros: number
  readonly rss: number
  readonly rssAfterLast: number
  /** V8's heap in use right after the last collection: what was alive then. */
  readonly liveAfterLast: number
}

/** Whether to collect after a period: it was idle, and memory grew enough since the last collection. */
export const shouldCollect = (policy: Policy, sample: Sample): boolean =>
  sample.cpuMicros <= policy.idleCpu * sample.periodMicros &&
  sample.rss - sample.rssAfterLast >= policy.growth &&
  sample.liveAfterLast <= policy.maxLive

/** Whether to collect at one of the looks right after the start: that second was idle. */
export const shouldSettle = (policy: Policy, sample: Sample): boolean =>
  sample.cpuMicros <= policy.idleCpu * sample.periodMicros && sample.liveAfterLast <= policy.maxLive

/**
 * The resident set size, or undefined when the kernel cannot be asked: Node reads it from
 * a file, and with every file descriptor taken (a flood of connections) that throws EMFILE,
 * which must not stop the process.
 */
export const residentBytes = (): number | undefined => {
  try {
    return process.memoryUsage.rss()
  } catch {
    return undefined
  }
}

/**
 * Collects now (what the start left behind), `policy.settle` more times a second apart
 * when idle (what only the start ran), then whenever `policy` says so; runs until
 * interrupted.
 */
export const collectWhenIdle = (policy: Policy = defaultPolicy): Effect.Effect<never> =>
  Effect.suspend(() => {
    const periodMicros = Duration.toMillis(policy.period) * 1000
    let rssAfterLast = 0
    let liveAfterLast = 0
    let cpu = process.cpuUsage()
    const collect = Effect.suspend(() => {
      const before = residentBytes() ?? 0
      const started = performance.now()
      return Effect.andThen(
        collectAll,
        Effect.suspend(() => {
          const ms = Math.round(performance.now() - started)
          rssAfterLast = residentBytes() ?? rssAfterLast
          liveAfterLast = process.memoryUsage().heapUsed
          cpu = process.cpuUsage()
          const mib = (bytes: number) => Math.round(bytes / 2 ** 20)
          return Effect.logDebug("collected garbage", { rssMiB: mib(before), afterMiB: mib(rssAfterLast), ms })
        })
      )
    })
    const look = (decide: (policy: Policy, sample: Sample) => boolean, periodMicros: number) =>
      Effect.suspend(() => {
        const used = process.cpuUsage(cpu)
        cpu = process.cpuUsage()
        const rss = residentBytes()
        // no reading this time (see `residentBytes`): look again next period
        if (rss === undefined) return Effect.void
        // memory given back by itself (V8's own reducer, a shrinking workload) lowers the bar
        if (rss < rssAfterLast) rssAfterLast = rss
        return decide(policy, { cpuMicros: used.user + used.system, periodMicros, rss, rssAfterLast, liveAfterLast })
          ? collect
          : Effect.void
      })
    const settle = Effect.andThen(
      Effect.sleep(policy.settlePeriod),
      look(shouldSettle, Duration.toMillis(policy.settlePeriod) * 1000)
    )
    return collect.pipe(
      Effect.andThen(Effect.forEach(Array.from({ length: policy.settle }), () => settle, { discard: true })),
      Effect.andThen(Effect.forever(Effect.andThen(Effect.sleep(policy.period), look(shouldCollect, periodMicros))))
    )
  })

/**
 * The Effect scheduler of a synod process: fiber hand-offs on microtasks, with the event
 * loop let in after a bounded number of them.
 *
 * Effect's default scheduler runs each batch of woken fibers from `setImmediate`: every
 * hand-off inside the process (a replica's Propose to the leader beside it, the leader's
 * P2a to its own acceptor, that acceptor's P2b back, the Decision to the replica) waits
 * for the event loop's next check phase, behind whatever I/O the loop polls first. With
 * one client, a write crosses four such hand-offs on its critical path
 * (`pnpm bench nats --hops`: 0.1–0.2 ms each, of a 2 ms write). On a microtask the woken
 * fiber runs as soon as the current one yields, in the same turn.
 *
 * A process that only ever ran microtasks would starve its sockets and timers: after
 * `maxChained` batches in one turn of the event loop the next batch goes to
 * `setImmediate`, as with the default, and the count starts again when the loop turns.
 * Fibers still yield every `maxOpsBeforeYield` operations, so no fiber holds the
 * process either way.
 *
 * The simulator and the tests that step time run under their own scheduler; this one is
 * for processes on real time (`synod serve`, `synod up`: `apps/cluster/src/Main.ts`).
 *
 * Measured (`BENCH_LEVELS=1,256 pnpm bench nats`, 2026-12-01, against the default
 * scheduler, alternated): one client's write p50 2.01–2.05 → 1.93–1.96 ms, read p50
 * 0.38–0.40 → 0.34–0.36 ms; at 256 clients reads 47.5–47.9k → 50.7–51.8k ops/s and the
 * writes' p99 95–117 → 41–63 ms, writes' throughput within the runs' noise
 * (13.5–14.0k → 13.0–13.5k). 64 batches per turn gave the same reads and a p99 of 57–167 ms.
 *
 * @since 0.3.0
 */
import { JsonText } from "@synod/core"
import { Effect, Layer, Scheduler } from "effect"

/** Scheduler batches run on microtasks per turn of the event loop, before one waits for `setImmediate`. */
export const defaultMaxChained = 8

/** The `setImmediate` replacement the scheduler dispatches its batches with. */
export const dispatcher = (maxChained: number = defaultMaxChained): ((f: () => void) => () => void) => {
  let chained = 0
  let resetScheduled = false
  const reset = () => {
    chained = 0
    resetScheduled = false
  }
  return (f) => {
    let cancelled = false
    const run = () => {
      if (!cancelled) f()
    }
    if (chained < maxChained) {
      chained++
      // the count is per turn: the loop's next check phase starts it again
      if (!resetScheduled) {
        resetScheduled = true
        setImmediate(reset)
      }
      queueMicrotask(run)
      return () => {
        cancelled = true
      }
    }
    const timer = setImmediate(run)
    return () => {
      cancelled = true
      clearImmediate(timer)
    }
  }
}

/** A scheduler whose batches run on microtasks, `maxChained` per turn of the event loop. */
export const make = (maxChained: number = defaultMaxChained): Scheduler.Scheduler =>
  new Scheduler.MixedScheduler("async", dispatcher(maxChained))

/** A turn of the event loop (`setImmediate`): every socket and timer ready is let in. */
export const nextTurn: Effect.Effect<void> = Effect.callback<void>((resume) => {
  const timer = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(timer))
})

/**
 * The share of the process's time background work may take while it runs: a replica's
 * snapshot encoded, hashed and written, an acceptor's log compacted (`JsonText.runGradually`).
 * All replicas take a snapshot at the same slot, and each process then had work for about
 * 200 ms of a core (100,000 keys): run as fast as each turn allowed, it held the rounds of
 * the cluster at 2–4 times their length for half a second, the slowest of a run
 * (`pnpm bench nats`, the yardstick: docs/benchmark-log.md).
 */
export const backgroundShare = 0.2

/** The longest rest after one slice: a slice is a few milliseconds, a rest a few more. */
export const maxRestMs = 50

/**
 * How background work pauses after a slice of `sliceMs` (`JsonText.Pause`) under this
 * scheduler: it rests long enough to keep to `backgroundShare` (a timer, so every socket and
 * timer ready gets in first), or, after a slice too short to rest after, for a turn of the
 * event loop, so that a snapshot being encoded lets every socket and timer in between two
 * slices, not only after eight of them.
 */
export const pause = (sliceMs: number): Effect.Effect<void> => {
  const restMs = Math.min(maxRestMs, (sliceMs * (1 - backgroundShare)) / backgroundShare)
  return restMs >= 1 ? Effect.sleep(restMs) : nextTurn
}

/** Runs `effect` (and every fiber it forks) under the hand-off scheduler, background work pausing as `pause` does. */
export const provide = <A, E, R>(effect: Effect.Effect<A, E, R>, maxChained?: number): Effect.Effect<A, E, R> =>
  effect.pipe(
    Effect.provideService(Scheduler.Scheduler, make(maxChained)),
    Effect.provideService(JsonText.Pause, pause)
  )

/** The hand-off scheduler as a layer, background work pausing as `pause` does. */
export const layer = (maxChained?: number): Layer.Layer<never> =>
  Layer.merge(Layer.succeed(Scheduler.Scheduler, make(maxChained)), Layer.succeed(JsonText.Pause, pause))

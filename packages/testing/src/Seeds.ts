/**
 * Running many simulation seeds: in this thread, or spread over worker threads (`jobs`),
 * one seed at a time to whichever worker is free. A seed's run is deterministic and
 * shares nothing with another's, so the outcomes are the same however many run at once;
 * only the order they arrive in changes.
 *
 * What a seed's run comes back as is its `Outcome`: the figures the summary adds up and,
 * for a failure, the sentence that says why. The full `Report` stays in the thread that
 * ran it; reducing a failure replays its seed (`Simulation.run` again: the same run).
 *
 * @since 0.2.0
 */
import { Worker } from "node:worker_threads"
import { Effect } from "effect"
import * as Scenario from "./Scenario.ts"
import * as Simulation from "./Simulation.ts"

export type Overrides = Partial<Omit<Scenario.Scenario, "seed">>

/** What a run found, in the order `pnpm sim` names it: the first that applies. */
export type Verdict = "ok" | "violation" | "stall" | "nonlinearizable" | "oversized"

/** One seed's run, as the summary counts it. */
export interface Outcome {
  readonly scenario: Scenario.Scenario
  readonly steps: number
  readonly gcs: number
  readonly transfers: number
  readonly leaseExpiries: number
  /** The divergence nemesis changed a replica, and whether its peers found out. */
  readonly corrupted: boolean
  readonly detected: boolean
  readonly verdict: Verdict
  /** What the run found, one line (the first violation, the stall, the history) or "ok …". */
  readonly summary: string
}

/** What `r` found: the first of a violation, a stall, a history that is not linearizable, an oversized message. */
export const verdictOf = (r: Simulation.Report): Verdict =>
  r.violations.length > 0
    ? "violation"
    : r.stall !== undefined
      ? "stall"
      : !r.linearizable
        ? "nonlinearizable"
        : r.oversized > 0
          ? "oversized"
          : "ok"

/** The run's result in one line (more for a history that is not linearizable). */
export const summary = (r: Simulation.Report): string => {
  switch (verdictOf(r)) {
    case "violation":
      return `violation: ${r.violations[0]}`
    case "stall":
      return `stall: ${r.stall}`
    case "nonlinearizable":
      return `history is not linearizable:\n    ${(r.nonlinearizable ?? []).join("\n    ")}`
    case "oversized":
      return `${r.oversized} messages exceeded the bus's limit of ${Simulation.messageBytes} bytes`
    case "ok":
      return r.linearizabilityTimedOut ? "ok (linearizability check gave up: too many interleavings)" : "ok"
  }
}

export const outcomeOf = (r: Simulation.Report): Outcome => ({
  scenario: r.scenario,
  steps: r.steps,
  gcs: r.gcs,
  transfers: r.transfers,
  leaseExpiries: r.leaseExpiries,
  corrupted: r.corrupted !== undefined,
  detected: r.detections > 0,
  verdict: verdictOf(r),
  summary: summary(r)
})

/** One seed, in this thread. */
export const runOne = (seed: number, overrides: Overrides): Effect.Effect<Outcome> =>
  Effect.map(Simulation.run(Scenario.fromSeed(seed, overrides)), outcomeOf)

/** A worker's answer to a seed: its outcome, or why the run itself failed (a defect). */
export type WorkerAnswer =
  | { readonly _tag: "Outcome"; readonly outcome: Outcome }
  | { readonly _tag: "Failed"; readonly seed: number; readonly error: string }

/** The data a worker starts with (`SeedWorker.ts`). */
export interface WorkerData {
  readonly overrides: Overrides
}

/**
 * Seeds `first` .. `first + count - 1`, each outcome handed to `onOutcome` as it comes:
 * in seed order with `jobs` 1, in order of completion otherwise. Fails when a run fails
 * (a defect in the simulator, not a finding: findings are outcomes).
 */
export const run = (options: {
  readonly first: number
  readonly count: number
  readonly overrides: Overrides
  readonly jobs: number
  readonly onOutcome: (outcome: Outcome) => void
}): Effect.Effect<void, Error> => {
  const { first, count, overrides, onOutcome } = options
  const jobs = Math.max(1, Math.min(options.jobs, count))
  if (jobs === 1) {
    return Effect.gen(function* () {
      for (let seed = first; seed < first + count; seed++) onOutcome(yield* runOne(seed, overrides))
    })
  }
  return Effect.callback<void, Error>((resume) => {
    const workers: Array<Worker> = []
    let next = first
    let finished = 0
    let over = false
    const end = (error?: Error) => {
      if (over) return
      over = true
      for (const w of workers) void w.terminate()
      resume(error === undefined ? Effect.void : Effect.fail(error))
    }
    const feed = (worker: Worker) => {
      if (next < first + count) worker.postMessage(next++)
    }
    const data: WorkerData = { overrides }
    for (let i = 0; i < jobs; i++) {
      const worker = new Worker(new URL("./SeedWorker.ts", import.meta.url), { workerData: data })
      workers.push(worker)
      worker.on("message", (answer: WorkerAnswer) => {
        if (over) return
        if (answer._tag === "Failed") return end(new Error(`seed ${answer.seed}: ${answer.error}`))
        onOutcome(answer.outcome)
        finished++
        if (finished === count) return end()
        feed(worker)
      })
      worker.on("error", (e) => end(e instanceof Error ? e : new Error(String(e))))
      worker.on("exit", (code) => {
        if (!over) end(new Error(`a simulation worker exited (code ${code}) before the seeds were done`))
      })
      feed(worker)
    }
    // interrupted (Ctrl-C through the runtime): stop the workers
    return Effect.sync(() => end())
  })
}

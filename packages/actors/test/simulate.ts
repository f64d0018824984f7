/** Shared helpers of the simulation test files. */
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { Scenario, Simulation } from "@synod/testing"

export const explain = (r: Simulation.Report): string =>
  `${Scenario.describe(r.scenario)}: ${r.violations[0] ?? r.stall ?? (r.linearizable ? "ok" : `not linearizable: ${r.nonlinearizable?.join("; ")}`)}` +
  ` (replay: pnpm sim --seed ${r.scenario.seed} --trace)`

/** One test per block of seeds, asserting every invariant, liveness after heal, and linearizability. */
export const seedBlock = (first: number, count: number) =>
  it.live(
    `seeds ${first}..${first + count - 1}: no violation, no stall, linearizable`,
    () =>
      Effect.gen(function* () {
        let steps = 0
        for (let seed = first; seed < first + count; seed++) {
          const r = yield* Simulation.run(Scenario.fromSeed(seed))
          steps += r.steps
          assert.isFalse(Simulation.failed(r), explain(r))
        }
        assert.isAbove(steps, count * 100, "the runs did real work")
      }),
    600_000
  )

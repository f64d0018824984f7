/**
 * Reduces a failing scenario to a smaller one that still fails: fewer clients, fewer
 * operations, fewer kinds of faults, smaller f, shorter fault phase. Greedy: each
 * candidate that still fails (any failure kind) is kept; stops when none does.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { Scenario } from "./Scenario.ts"
import * as Simulation from "./Simulation.ts"

const candidates = (s: Scenario): Array<Scenario> => {
  const out: Array<Scenario> = []
  if (s.clients > 1) out.push({ ...s, clients: s.clients - 1 })
  if (s.opsPerClient > 2) out.push({ ...s, opsPerClient: Math.ceil(s.opsPerClient / 2) })
  if (s.crashes) out.push({ ...s, crashes: false })
  if (s.partitions) out.push({ ...s, partitions: false })
  if (s.partitions && s.rivals) out.push({ ...s, rivals: false })
  if (s.network) out.push({ ...s, network: false })
  if (s.f === 2) out.push({ ...s, f: 1 })
  if (s.keys > 1) out.push({ ...s, keys: 1 })
  if (s.largeValues) out.push({ ...s, largeValues: false })
  if (s.faultMs > 400) out.push({ ...s, faultMs: Math.ceil(s.faultMs / 2) })
  return out
}

export const reduce = (failing: Simulation.Report, onTry?: (s: Scenario, failed: boolean) => void) =>
  Effect.gen(function* () {
    let best = failing
    let improved = true
    while (improved) {
      improved = false
      for (const c of candidates(best.scenario)) {
        const report = yield* Simulation.run(c)
        const f = Simulation.failed(report)
        onTry?.(c, f)
        if (f) {
          best = report
          improved = true
          break
        }
      }
    }
    return best
  })

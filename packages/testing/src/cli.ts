/**
 * `pnpm sim`: runs simulation seeds.
 *
 *   pnpm sim --first S --count N     seeds S..S+N-1, a progress line, one summary line
 *   pnpm sim ... --jobs J            on J worker threads (default: one per core; 1: this thread)
 *   pnpm sim --seed S --trace        replays one seed and prints its event trace
 *   pnpm sim --seed S --html FILE    replays one seed and writes its space-time view (SpaceTime.ts)
 *   pnpm sim ... --bug NAME          with a planted bug switched on (see @synod/actors/Hooks)
 *
 * Exit status is non-zero unless violations, stalls and non-linearizable histories are all 0.
 * A failing seed is printed with its scenario, then reduced to the smallest case that
 * still fails.
 */
import { writeFileSync } from "node:fs"
import { availableParallelism } from "node:os"
import { PlantedBugs } from "@synod/actors/Hooks"
import { Effect } from "effect"
import { reduce } from "./Reduce.ts"
import * as Scenario from "./Scenario.ts"
import * as Seeds from "./Seeds.ts"
import * as Simulation from "./Simulation.ts"
import * as SpaceTime from "./SpaceTime.ts"
import { Timeline } from "./Timeline.ts"

const usage = `usage: pnpm sim [--first S] [--count N] [--jobs J] | --seed S [--trace] [--html FILE]   [--bug NAME] [--no-reduce]
  scenario overrides (otherwise derived from the seed):
    --f 1|2  --layout colocated|split  --clients N  --ops N  --keys N  --fault-ms N  --snapshot-every N
    --network on|off  --partitions on|off  --crashes on|off  --large on|off  --lease-holders N  --corrupt on|off  --reconfigure on|off
    --rivals on|off
  planted bugs: ${PlantedBugs.names.join(", ")}`

const fail = (message: string): never => {
  process.stderr.write(`${message}\n${usage}\n`)
  process.exit(2)
}

const args = process.argv.slice(2)
const flags = new Map<string, string | true>()
for (let i = 0; i < args.length; i++) {
  const a = args[i]!
  if (!a.startsWith("--")) fail(`unexpected argument "${a}"`)
  const name = a.slice(2)
  if (name === "help") {
    process.stdout.write(`${usage}\n`)
    process.exit(0)
  }
  if (
    ![
      "first",
      "count",
      "jobs",
      "seed",
      "trace",
      "html",
      "bug",
      "no-reduce",
      "f",
      "layout",
      "clients",
      "ops",
      "keys",
      "fault-ms",
      "snapshot-every",
      "network",
      "partitions",
      "crashes",
      "large",
      "lease-holders",
      "corrupt",
      "reconfigure",
      "rivals"
    ].includes(name)
  ) {
    fail(`unknown option --${name}`)
  }
  if (name === "trace" || name === "no-reduce") flags.set(name, true)
  else {
    const v = args[++i]
    if (v === undefined) fail(`--${name} needs a value`)
    flags.set(name, v!)
  }
}
const int = (name: string, dflt: number): number => {
  const v = flags.get(name)
  if (v === undefined) return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer, got "${v}"`)
  return n
}
if (flags.has("html") && !flags.has("seed")) fail("--html needs --seed: it draws one run")
const bug = flags.get("bug")
if (bug !== undefined && !PlantedBugs.names.includes(bug as PlantedBugs.Name)) fail(`unknown planted bug "${bug}"`)
const bugs = bug === undefined ? {} : { [bug as PlantedBugs.Name]: true }

const onOff = (name: string): boolean | undefined => {
  const v = flags.get(name)
  if (v === undefined) return undefined
  if (v !== "on" && v !== "off") fail(`--${name} must be on or off, got "${v}"`)
  return v === "on"
}
const positive = (name: string): number | undefined => (flags.has(name) ? Math.max(1, int(name, 1)) : undefined)
const layout = flags.get("layout")
if (layout !== undefined && layout !== "colocated" && layout !== "split") fail(`--layout must be colocated or split`)
const f = flags.get("f")
if (f !== undefined && f !== "1" && f !== "2") fail(`--f must be 1 or 2`)
const overrides: Partial<Omit<Scenario.Scenario, "seed">> = Object.fromEntries(
  Object.entries({
    f: f === undefined ? undefined : (Number(f) as 1 | 2),
    layout,
    clients: positive("clients"),
    opsPerClient: positive("ops"),
    keys: positive("keys"),
    faultMs: positive("fault-ms"),
    snapshotEvery: positive("snapshot-every"),
    network: onOff("network"),
    partitions: onOff("partitions"),
    crashes: onOff("crashes"),
    largeValues: onOff("large"),
    leaseHolders: flags.has("lease-holders") ? int("lease-holders", 0) : undefined,
    corruption: onOff("corrupt"),
    reconfigure: onOff("reconfigure"),
    rivals: onOff("rivals"),
    bugs
  }).filter(([, v]) => v !== undefined)
)

/** The command that replays exactly this scenario. */
const replayCommand = (s: Scenario.Scenario): string =>
  `pnpm sim --seed ${s.seed} --trace --f ${s.f} --layout ${s.layout} --clients ${s.clients} --ops ${s.opsPerClient} ` +
  `--keys ${s.keys} --fault-ms ${s.faultMs} --snapshot-every ${s.snapshotEvery} --network ${s.network ? "on" : "off"} ` +
  `--partitions ${s.partitions ? "on" : "off"} --crashes ${s.crashes ? "on" : "off"} --large ${s.largeValues ? "on" : "off"} --lease-holders ${s.leaseHolders} --corrupt ${s.corruption ? "on" : "off"} --reconfigure ${s.reconfigure ? "on" : "off"} --rivals ${s.rivals ? "on" : "off"}` +
  (bug ? ` --bug ${bug}` : "")

const main = Effect.gen(function* () {
  if (flags.has("seed")) {
    const scenario = Scenario.fromSeed(int("seed", 0), overrides)
    process.stdout.write(`${Scenario.describe(scenario)}\n`)
    const trace = flags.has("trace") ? (line: string) => process.stdout.write(`${line}\n`) : undefined
    const html = flags.get("html")
    const timeline = typeof html === "string" ? new Timeline() : undefined
    const r = yield* Simulation.run(scenario, { ...(trace ? { trace } : {}), ...(timeline ? { timeline } : {}) })
    const outcome =
      `steps ${r.steps}, simulated ${r.simMs} ms, ${r.operations} operations (${r.unknown} unknown outcome), ` +
      `${r.gcs} garbage collections, ${r.transfers} state transfers` +
      (r.corrupted === undefined
        ? ""
        : `, replica ${r.corrupted} corrupted (found out ${r.detections} times, ${r.exempt} of its answers exempt)`) +
      `: ${Seeds.summary(r)}`
    process.stdout.write(`${outcome}\n`)
    if (typeof html === "string" && timeline !== undefined) {
      const page = SpaceTime.render(timeline, {
        title: `synod simulation, seed ${scenario.seed}${bug ? ` with planted bug ${bug}` : ""}`,
        scenario: Scenario.describe(scenario),
        outcome,
        failed: Simulation.failed(r),
        replay: replayCommand(scenario)
      })
      yield* Effect.try({
        try: () => writeFileSync(html, page),
        catch: (e) => new Error(`cannot write ${html}: ${e instanceof Error ? e.message : String(e)}`)
      })
      process.stdout.write(
        `wrote ${html} (${Math.round(page.length / 1024)} KiB, ${timeline.arrows.length} messages)\n`
      )
    }
    return Simulation.failed(r) ? 1 : 0
  }
  const first = int("first", 1)
  const count = int("count", 100)
  const jobs = flags.has("jobs") ? int("jobs", 1) : availableParallelism()
  if (jobs < 1) fail("--jobs must be at least 1")
  let steps = 0
  let violations = 0
  let stalls = 0
  let nonlin = 0
  let oversized = 0
  let gcs = 0
  let transfers = 0
  let leaseExpiries = 0
  let corrupted = 0
  let detections = 0
  let done = 0
  const failures: Array<Seeds.Outcome> = []
  const started = Date.now()
  yield* Seeds.run({
    first,
    count,
    overrides,
    jobs,
    onOutcome: (r) => {
      steps += r.steps
      gcs += r.gcs
      transfers += r.transfers
      leaseExpiries += r.leaseExpiries
      if (r.corrupted) corrupted++
      if (r.detected) detections++
      if (r.verdict === "violation") violations++
      else if (r.verdict === "stall") stalls++
      else if (r.verdict === "nonlinearizable") nonlin++
      else if (r.verdict === "oversized") oversized++
      if (r.verdict !== "ok") {
        failures.push(r)
        process.stdout.write(
          `\nFAIL ${Scenario.describe(r.scenario)}\n  ${r.summary}\n  replay: ${replayCommand(r.scenario)}\n`
        )
      }
      done++
      const rate = done / ((Date.now() - started) / 1000)
      if (process.stdout.isTTY)
        process.stdout.write(
          `\r${done}/${count} seeds, ${steps} steps, ${rate.toFixed(1)} seeds/s, ${failures.length} failed`
        )
      else if (done % 25 === 0 || done === count)
        process.stdout.write(
          `${done}/${count} seeds, ${steps} steps, ${rate.toFixed(1)} seeds/s, ${failures.length} failed\n`
        )
    }
  })
  if (process.stdout.isTTY) process.stdout.write("\n")
  if (failures.length > 0 && !flags.has("no-reduce")) {
    // the lowest failing seed, replayed here for its full report (the same run)
    const lowest = failures.reduce((a, b) => (b.scenario.seed < a.scenario.seed ? b : a))
    process.stdout.write(`reducing seed ${lowest.scenario.seed}...\n`)
    const small = yield* reduce(yield* Simulation.run(lowest.scenario))
    process.stdout.write(
      `smallest failing case: ${Scenario.describe(small.scenario)}\n  ${Seeds.summary(small)}\n` +
        `  replay: ${replayCommand(small.scenario)}\n`
    )
  }
  process.stdout.write(`garbage collections ${gcs}, state transfers ${transfers}, lease expiries ${leaseExpiries}\n`)
  process.stdout.write(`replicas corrupted in ${corrupted} seeds, found out in ${detections}\n`)
  process.stdout.write(
    `seeds ${count}, steps ${steps}, violations ${violations}, stalls ${stalls}, nonlinearizable ${nonlin}, oversized ${oversized}\n`
  )
  return violations + stalls + nonlin + oversized > 0 ? 1 : 0
})

Effect.runPromise(main).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${e}\n`)
    process.exit(2)
  }
)

/**
 * Gives back what a start leaves behind. Starting `synod serve` allocates far more than it
 * keeps: loading and compiling the command line (and, run from the sources, stripping its
 * TypeScript), building schemas, the HTTP router, the first elections. That garbage grows
 * V8's young generation to its largest size (two 16–32 MiB semi-spaces on a machine with a
 * few GiB of memory), and a process that then sits idle allocates too little to ever
 * trigger the collection that would shrink it again: it idles with the start's peak.
 *
 * `collectAll` runs V8's "last resort" collection once, when the process starts serving:
 * a full mark-compact that also shrinks the young generation to its initial size and
 * returns the freed pages. It takes some tens of milliseconds, once. An idle `synod serve`
 * went from 136 to 125 MiB resident run from its build, and from 217 to 157 MiB run from
 * the sources (`pnpm bench memory`, see the README). A busy process needs nothing of the
 * kind: it collects as it allocates, and V8's memory reducer shrinks the heap when the
 * work stops.
 *
 * V8's flags cannot do it: `--max-semi-space-size` is read when the heap is set up, before
 * any of this process's code runs (setting it later does nothing), and capping it would
 * slow the busy case to help the idle one.
 *
 * @since 0.3.0
 */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Effect } from "effect"

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

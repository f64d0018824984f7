/**
 * Loaded into each server by `pnpm bench nats --stalls` (`node --import`): notes every time
 * the process's event loop was held up, every role of the process with it, and the
 * collections that may have held it. A 10 ms interval timer that runs late by `late` ms
 * was held up that long (by a step that took it, a collection, or a wait for a core); each
 * delay of at least 20 ms is appended to `SYNOD_LOOP_STALLS` as `<ms since the epoch> <ms
 * late>`, and each collection of at least 5 ms as `<ms since the epoch it began> gc <ms>
 * <minor|major|incremental|weak>` (a `PerformanceObserver` of `gc` entries). A benchmark's
 * tool, not the server's: the timer wakes the process 100 times a second.
 */
import { appendFileSync } from "node:fs"
import { constants, PerformanceObserver } from "node:perf_hooks"

const file = process.env.SYNOD_LOOP_STALLS
if (file !== undefined) {
  let last = performance.now()
  setInterval(() => {
    const now = performance.now()
    const late = now - last - 10
    last = now
    if (late >= 20) appendFileSync(file, `${Date.now()} ${late.toFixed(1)}\n`)
  }, 10).unref()
  const kinds: Record<number, string> = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: "minor",
    [constants.NODE_PERFORMANCE_GC_MAJOR]: "major",
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental",
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weak"
  }
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.duration < 5) continue
      const detail = (entry as unknown as { readonly detail?: { readonly kind?: number } }).detail
      const kind = kinds[detail?.kind ?? 0] ?? "other"
      appendFileSync(
        file,
        `${(performance.timeOrigin + entry.startTime).toFixed(0)} gc ${entry.duration.toFixed(1)} ${kind}\n`
      )
    }
  }).observe({ entryTypes: ["gc"] })
}

/** A collection the file noted: when it began (ms since the epoch), how long it took, and its kind. */
export interface Collection {
  readonly at: number
  readonly ms: number
  readonly kind: string
}

/** What `file` noted from `from` to `to` (ms since the epoch): the stalls (when they ended, how long) and the collections. */
export const readAll = (
  text: string,
  from: number,
  to: number
): {
  readonly stalls: Array<{ readonly at: number; readonly ms: number }>
  readonly collections: Array<Collection>
} => {
  const stalls: Array<{ at: number; ms: number }> = []
  const collections: Array<Collection> = []
  for (const line of text.split("\n")) {
    const fields = line.split(" ")
    const at = Number(fields[0])
    if (!Number.isFinite(at) || at < from || at > to) continue
    if (fields[1] === "gc") collections.push({ at, ms: Number(fields[2]), kind: fields[3] ?? "other" })
    else if (fields.length === 2 && Number.isFinite(Number(fields[1]))) stalls.push({ at, ms: Number(fields[1]) })
  }
  return { stalls, collections }
}

/** The stalls `file` noted from `from` to `to` (ms since the epoch), in ms, in the order they came. */
export const read = (text: string, from: number, to: number): Array<number> =>
  readAll(text, from, to).stalls.map((s) => s.ms)

/**
 * The collections of at least `atLeast` ms within a stall (which ended at `at` after `ms`):
 * what a collection took of it.
 */
export const collectionsIn = (
  stall: { readonly at: number; readonly ms: number },
  collections: ReadonlyArray<Collection>,
  atLeast = 5
): Array<Collection> =>
  collections.filter((c) => c.ms >= atLeast && c.at + c.ms >= stall.at - stall.ms - 10 - 1 && c.at <= stall.at + 1)

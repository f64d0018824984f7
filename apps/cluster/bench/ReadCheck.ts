/**
 * The check of `pnpm bench reads`: reads of one key whose writes are ordered in the log
 * (its version only grows), each of which must see at least the version of every write
 * and every read that ended before it began.
 */

/** A write or read of the key: when it began and ended (one clock) and the version it wrote or saw. */
export interface Op {
  readonly start: number
  readonly end: number
  readonly version: number
  readonly who: string
}

/** The reads that saw less than they must (at most `max`), each with what it should have seen. */
export const check = (writes: ReadonlyArray<Op>, reads: ReadonlyArray<Op>, max = 10): Array<string> => {
  const problems: Array<string> = []
  const byEnd = [...writes, ...reads].sort((a, b) => a.end - b.end)
  const byStart = [...reads].sort((a, b) => a.start - b.start)
  // sweep the reads by start, taking in every operation that ended before: the highest
  // version among them is a floor for the read
  let floor = 0
  let floorOf: Op | undefined
  let j = 0
  for (const r of byStart) {
    while (j < byEnd.length && byEnd[j]!.end < r.start) {
      if (byEnd[j]!.version > floor) {
        floor = byEnd[j]!.version
        floorOf = byEnd[j]
      }
      j++
    }
    if (r.version < floor && problems.length < max) {
      problems.push(
        `${r.who} read version ${r.version} at ${r.start.toFixed(1)}–${r.end.toFixed(1)} ms, after ${floorOf!.who} ended with version ${floor} at ${floorOf!.end.toFixed(1)} ms`
      )
    }
  }
  return problems
}

/**
 * The check `pnpm bench reads` runs: a read must see at least the version of every write
 * and every read that ended before it began; overlapping operations constrain nothing.
 */
import { assert, describe, it } from "@effect/vitest"
import { check } from "../bench/ReadCheck.ts"

const op = (who: string, start: number, end: number, version: number) => ({ who, start, end, version })

describe("pnpm bench reads: the check", () => {
  it("passes reads that saw every write that ended before they began, and overlaps either way", () => {
    const writes = [op("write 1", 0, 10, 1), op("write 2", 10, 20, 2)]
    const reads = [
      op("r a", 5, 12, 0), // overlaps write 1: may see it or not
      op("r b", 11, 15, 1), // after write 1, overlapping write 2
      op("r c", 14, 25, 2), // overlaps write 2: sees it
      op("r d", 21, 22, 2)
    ]
    assert.deepStrictEqual(check(writes, reads), [])
  })

  it("fails a read older than a write that completed before it, naming both", () => {
    const problems = check([op("write 1", 0, 10, 1), op("write 2", 10, 20, 2)], [op("r1", 21, 22, 1)])
    assert.strictEqual(problems.length, 1)
    assert.include(problems[0]!, "r1 read version 1")
    assert.include(problems[0]!, "write 2 ended with version 2")
  })

  it("fails a read older than a read that ended before it began (a stale replica or leader after a fresh one)", () => {
    const problems = check(
      [op("write 1", 0, 10, 1), op("write 2", 10, 40, 2)],
      [op("fresh", 15, 20, 2), op("stale", 25, 30, 1)]
    )
    assert.strictEqual(problems.length, 1)
    assert.include(problems[0]!, "stale read version 1")
    assert.include(problems[0]!, "after fresh ended with version 2")
  })
})

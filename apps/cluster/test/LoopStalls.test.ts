/**
 * The stall monitor's file (`bench/LoopStalls.ts`, `pnpm bench nats --stalls`): its stalls
 * and collections read back for one level's time, and which collections fell in a stall.
 */
import { assert, describe, it } from "@effect/vitest"
import * as LoopStalls from "../bench/LoopStalls.ts"

// two stalls and three collections in the level's time (1,000-2,000), one of each before it
const text = [
  "900 35.0",
  "950 gc 12.0 minor",
  "1200 gc 40.5 minor",
  "1260 62.5",
  "1500 gc 6.0 major",
  "1700 gc 8.0 incremental",
  "1800 21.0",
  "not a line",
  ""
].join("\n")

describe("LoopStalls", () => {
  it("reads the stalls and the collections noted within a level's time", () => {
    const { stalls, collections } = LoopStalls.readAll(text, 1000, 2000)
    assert.deepStrictEqual(stalls, [
      { at: 1260, ms: 62.5 },
      { at: 1800, ms: 21 }
    ])
    assert.deepStrictEqual(
      collections.map((c) => [c.at, c.ms, c.kind]),
      [
        [1200, 40.5, "minor"],
        [1500, 6, "major"],
        [1700, 8, "incremental"]
      ]
    )
    assert.deepStrictEqual(LoopStalls.read(text, 0, 2000), [35, 62.5, 21])
  })

  it("finds the collections that overlap a stall, of at least the length asked", () => {
    const { stalls, collections } = LoopStalls.readAll(text, 1000, 2000)
    // the first stall held the loop from about 1,187 to 1,260: the scavenge at 1,200 is in it
    assert.deepStrictEqual(
      LoopStalls.collectionsIn(stalls[0]!, collections, 10).map((c) => c.at),
      [1200]
    )
    // the second, from about 1,769 to 1,800, overlaps the collection of 1,700-1,708 only if
    // short ones count and it reaches into it: it does not
    assert.deepStrictEqual(LoopStalls.collectionsIn(stalls[1]!, collections, 5), [])
    // a collection shorter than asked is left out even when it overlaps
    assert.deepStrictEqual(LoopStalls.collectionsIn({ at: 1510, ms: 30 }, collections, 10), [])
    assert.deepStrictEqual(
      LoopStalls.collectionsIn({ at: 1510, ms: 30 }, collections, 5).map((c) => c.kind),
      ["major"]
    )
  })
})

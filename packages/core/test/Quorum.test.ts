import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Quorum } from "@synod/core"

describe("Quorum", () => {
  it("isMajority is strictly more than half, for n = 1..9", () => {
    for (let n = 1; n <= 9; n++) {
      for (let k = 0; k <= n; k++) assert.strictEqual(Quorum.isMajority(k, n), k > n / 2, `k=${k} n=${n}`)
    }
    assert.isFalse(Quorum.isMajority(1, 2))
    assert.isTrue(Quorum.isMajority(2, 3))
    assert.isFalse(Quorum.isMajority(2, 4))
  })

  it("a tally counts distinct members only, whatever duplicates and strangers arrive", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 40 }),
        (n, responders) => {
          const members = Array.from({ length: n }, (_, i) => `a${i}`)
          const tally = Quorum.make(members)
          const distinct = new Set<number>()
          for (const r of responders) {
            const reached = tally.add(`a${r}`)
            if (r < n) distinct.add(r)
            assert.strictEqual(reached, 2 * distinct.size > n)
          }
          assert.strictEqual(tally.missing().length, n - distinct.size)
        }
      ),
      { numRuns: 500 }
    )
  })
})

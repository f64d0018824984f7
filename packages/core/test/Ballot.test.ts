import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Ballot } from "@synod/core"
import { ballotArb } from "@synod/testing/Arbitraries"

describe("Ballot order", () => {
  it("is a total order: antisymmetric, transitive, total", () => {
    fc.assert(
      fc.property(ballotArb, ballotArb, ballotArb, (a, b, c) => {
        const ab = Ballot.compare(a, b)
        assert.strictEqual(ab, -Ballot.compare(b, a) || 0)
        if (ab === 0) assert.isTrue(Ballot.equals(a, b))
        if (Ballot.compare(a, b) <= 0 && Ballot.compare(b, c) <= 0) assert.isAtMost(Ballot.compare(a, c), 0)
        assert.isTrue(Ballot.lessThan(a, b) || Ballot.lessThan(b, a) || Ballot.equals(a, b))
      }),
      { numRuns: 1000 }
    )
  })

  it("orders by round first, then by leader id", () => {
    assert.isTrue(Ballot.lessThan(Ballot.make(1, "z"), Ballot.make(2, "a")))
    assert.isTrue(Ballot.lessThan(Ballot.make(2, "a"), Ballot.make(2, "b")))
    assert.isTrue(Ballot.lessThan(Ballot.bottom, Ballot.make(1, "")))
  })

  it("bottom is below every ballot a leader can use", () => {
    fc.assert(
      fc.property(ballotArb, fc.stringMatching(/^[a-z0-9]{1,4}$/), (b, leader) => {
        const n = Ballot.next(b, leader)
        assert.isTrue(Ballot.lessThan(Ballot.bottom, n))
        assert.isTrue(Ballot.greaterThan(n, b))
        assert.strictEqual(n.leader, leader)
        assert.isAtLeast(n.round, 1)
      })
    )
  })
})

/** The first half of the planted bugs' budgets (plantedBugs.ts); PlantedBugs.b.test.ts runs the rest. */
import { assert, describe, it } from "@effect/vitest"
import { PlantedBugs } from "@synod/actors/Hooks"
import { budget, caught, firstHalf } from "./plantedBugs.ts"

describe("planted bugs", () => {
  it("every switch has a budget: a bug the simulator is not shown to catch is not planted", () => {
    const budgeted = new Set(budget.map(([bug]) => bug))
    assert.deepStrictEqual(
      PlantedBugs.names.filter((bug) => !budgeted.has(bug)),
      []
    )
  })
})

caught(firstHalf)

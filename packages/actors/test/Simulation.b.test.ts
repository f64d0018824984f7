import { describe } from "@effect/vitest"
import { seedBlock } from "./simulate.ts"

describe("deterministic simulation", () => {
  seedBlock(151, 75)
  seedBlock(226, 75)
})

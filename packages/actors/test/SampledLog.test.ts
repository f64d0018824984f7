/**
 * The sampled debug log: at most N lines a second, the lines left out counted into the
 * next one written.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger, References } from "effect"
import * as SampledLog from "@synod/actors/SampledLog"

describe("sampled log", () => {
  it.effect("writes at most perSecond lines a second and counts the rest into the next line", () =>
    Effect.gen(function* () {
      const lines: Array<unknown> = []
      const capture = Logger.make(({ message }) => {
        lines.push(message)
      })
      let now = 0
      const log = SampledLog.make(3, () => now)
      const write = (i: number) => log("performed decided slots", { from: i })
      yield* Effect.gen(function* () {
        for (let i = 0; i < 10; i++) yield* write(i) // second 0: 3 written, 7 left out
        now = 999
        yield* write(10) // still second 0
        now = 1000
        yield* write(11) // second 1: written, with the 8 left out
        yield* write(12)
      }).pipe(Effect.provide(Logger.layer([capture])), Effect.provideService(References.MinimumLogLevel, "Debug"))
      assert.deepStrictEqual(lines, [
        ["performed decided slots", { from: 0 }],
        ["performed decided slots", { from: 1 }],
        ["performed decided slots", { from: 2 }],
        ["performed decided slots", { from: 11, skipped: 8 }],
        ["performed decided slots", { from: 12 }]
      ])
    })
  )
})

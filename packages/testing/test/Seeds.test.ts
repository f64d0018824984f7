/**
 * `Seeds.run` over worker threads finds what it finds in this thread: every seed once,
 * each with the same outcome (a seed's run is deterministic), findings included.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Seeds from "@synod/testing/Seeds"
import { Effect } from "effect"

const outcomes = (options: { first: number; count: number; jobs: number; overrides: Seeds.Overrides }) =>
  Effect.gen(function* () {
    const found: Array<Seeds.Outcome> = []
    yield* Seeds.run({ ...options, onOutcome: (o) => found.push(o) })
    return found.sort((a, b) => a.scenario.seed - b.scenario.seed)
  })

/** Small scenarios: a few clients and operations each, so a seed takes tens of milliseconds. */
const small: Seeds.Overrides = { clients: 2, opsPerClient: 4, faultMs: 400 }

describe("Seeds.run", () => {
  it.effect(
    "on worker threads, every seed once with the outcome it has in this thread",
    () =>
      Effect.gen(function* () {
        const here = yield* outcomes({ first: 11, count: 6, jobs: 1, overrides: small })
        const spread = yield* outcomes({ first: 11, count: 6, jobs: 3, overrides: small })
        assert.deepStrictEqual(
          here.map((o) => o.scenario.seed),
          [11, 12, 13, 14, 15, 16]
        )
        assert.deepStrictEqual(spread, here)
        assert.isTrue(here.every((o) => o.steps > 0))
      }),
    120_000
  )

  it.effect(
    "a planted bug's findings come back from the workers as from this thread",
    () =>
      Effect.gen(function* () {
        // strictAccept (B5): an acceptor accepts only its promise's ballot, commanders give up on any other
        const overrides: Seeds.Overrides = { ...small, bugs: { strictAccept: true } }
        const here = yield* outcomes({ first: 1, count: 4, jobs: 1, overrides })
        const spread = yield* outcomes({ first: 1, count: 4, jobs: 2, overrides })
        assert.isTrue(
          here.some((o) => o.verdict !== "ok"),
          "the planted bug was found"
        )
        assert.deepStrictEqual(spread, here)
      }),
    120_000
  )
})

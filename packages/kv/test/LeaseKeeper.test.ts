/**
 * The lease keeper's decisions (pure): deadlines start at `now + ttl` when a lease is first
 * seen or kept alive, are dropped with the lease, and come due earliest first; the
 * planted bug's passive tracking keeps deadlines from a lease's first sighting. And the
 * keeper's loop on a test clock: it proposes expiries only while its leader is active,
 * a whole TTL after it started leading.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Ref } from "effect"
import { TestClock } from "effect/testing"
import { Kv, LeaseKeeper } from "@synod/kv"

const state = (commands: ReadonlyArray<Kv.Command>) =>
  commands.reduce<Kv.State>((s, c) => Kv.apply(s, c)[0], Kv.initial)

describe("LeaseKeeper", () => {
  it("restarts a deadline when the lease's renewals change, drops ended leases, expires earliest first", () => {
    const granted = state([
      { _tag: "LeaseGrant", ttlMs: 1000 },
      { _tag: "LeaseGrant", ttlMs: 500 }
    ])
    let tracked = LeaseKeeper.observe(new Map(), granted.leases, 0)
    assert.deepStrictEqual(
      [...tracked.entries()],
      [
        [1, { renewals: 0, ttlMs: 1000, deadline: 1000 }],
        [2, { renewals: 0, ttlMs: 500, deadline: 500 }]
      ]
    )
    // seen again unchanged: deadlines stay
    tracked = LeaseKeeper.observe(tracked, granted.leases, 400)
    assert.deepStrictEqual(LeaseKeeper.due(tracked, 600), [[2, 0]])
    const kept = Kv.apply(granted, { _tag: "LeaseKeepAlive", id: 2 })[0]
    tracked = LeaseKeeper.observe(tracked, kept.leases, 450)
    assert.deepStrictEqual(tracked.get(2), { renewals: 1, ttlMs: 500, deadline: 950 })
    assert.deepStrictEqual(LeaseKeeper.due(tracked, 1000), [
      [2, 1],
      [1, 0]
    ])
    const revoked = Kv.apply(kept, { _tag: "LeaseRevoke", id: 1 })[0]
    tracked = LeaseKeeper.observe(tracked, revoked.leases, 460)
    assert.deepStrictEqual([...tracked.keys()], [2])
  })

  it("the planted bug's passive tracking keeps the deadline of a lease's first sighting through keep-alives", () => {
    const granted = state([{ _tag: "LeaseGrant", ttlMs: 1000 }])
    let tracked = LeaseKeeper.observeWhilePassive(new Map(), granted.leases, 0)
    const kept = Kv.apply(granted, { _tag: "LeaseKeepAlive", id: 1 })[0]
    tracked = LeaseKeeper.observeWhilePassive(tracked, kept.leases, 900)
    assert.deepStrictEqual(tracked.get(1), { renewals: 1, ttlMs: 1000, deadline: 1000 })
    // the correct keeper, starting to lead at 900, gives it its whole TTL
    assert.deepStrictEqual(LeaseKeeper.observe(new Map(), kept.leases, 900).get(1)?.deadline, 1900)
  })

  it.effect("proposes an expiry only while leading, a whole TTL after it started leading", () =>
    Effect.gen(function* () {
      const current = state([{ _tag: "LeaseGrant", ttlMs: 1000 }])
      const leading = yield* Ref.make(false)
      const proposed: Array<readonly [number, ReadonlyArray<readonly [number, number]>]> = []
      let clock = 0
      const fiber = yield* Effect.forkChild(
        LeaseKeeper.run({
          applied: { current: Effect.sync(() => current) },
          leading: Ref.get(leading),
          submit: (command) =>
            Effect.sync(() => {
              if (command._tag === "LeaseExpire") proposed.push([clock, command.leases])
              return { _tag: "LeaseExpired", expired: [], revision: 0 } as const
            }),
          now: () => clock,
          pollMs: 50
        })
      )
      const advance = (ms: number) =>
        Effect.gen(function* () {
          for (let i = 0; i < ms / 10; i++) {
            clock += 10
            yield* TestClock.adjust(10)
          }
        })
      yield* advance(3000)
      assert.deepStrictEqual(proposed, [], "a passive keeper proposes nothing")
      yield* Ref.set(leading, true)
      yield* advance(900)
      assert.deepStrictEqual(proposed, [], "not before a whole TTL since it started leading")
      yield* advance(300)
      // the first at the deadline; then again every poll while the lease is still there
      assert.isAtLeast(proposed.length, 1)
      assert.isAtLeast(proposed[0]![0], 3000 + 1000)
      assert.deepStrictEqual(proposed[0]![1], [[1, 0]])
      yield* Fiber.interrupt(fiber)
    })
  )
})

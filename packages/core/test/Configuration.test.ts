import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Result, Schema } from "effect"
import { Configuration } from "@synod/core"

const m = (acceptors: string, replicas = acceptors, leaders = acceptors): Configuration.Members => ({
  acceptors: acceptors.split(","),
  leaders: leaders.split(","),
  replicas: replicas.split(",")
})

const s123 = m("s1,s2,s3")
const s234 = m("s2,s3,s4")

/** The definition: the configuration of the last change decided at or below `slot - window`, else the initial one. */
const reference = (
  initial: Configuration.Members,
  changes: ReadonlyArray<readonly [number, Configuration.Members]>,
  slot: number,
  window: number
) => {
  let members = initial
  for (const [at, c] of changes) if (at <= slot - window) members = c
  return members
}

const membersArb = fc
  .uniqueArray(fc.constantFrom("s1", "s2", "s3", "s4", "s5", "s6"), { minLength: 1, maxLength: 5 })
  .map((ids) => ({ acceptors: ids, leaders: ids, replicas: ids }))
const changesArb = fc
  .uniqueArray(fc.integer({ min: 1, max: 200 }), { maxLength: 8 })
  .map((slots) => slots.sort((a, b) => a - b))
  .chain((slots) => fc.tuple(...slots.map((s) => fc.tuple(fc.constant(s), membersArb))))

const build = (
  initial: Configuration.Members,
  changes: ReadonlyArray<readonly [number, Configuration.Members]>,
  window: number
) => changes.reduce((h, [s, c]) => Configuration.decided(h, s, c, window), Configuration.initial(initial))

describe("Configuration", () => {
  it("a change decided in slot s governs from s + window on; the slots before keep their configuration", () => {
    const h = Configuration.decided(Configuration.initial(s123), 10, s234, 4)
    assert.deepStrictEqual(h.at(-1), { from: 14, decidedAt: 10, members: s234 })
    assert.deepStrictEqual(Configuration.at(h, 1), s123)
    assert.deepStrictEqual(Configuration.at(h, 13), s123)
    assert.deepStrictEqual(Configuration.at(h, 14), s234)
    assert.deepStrictEqual(Configuration.at(h, 1000), s234)
    assert.throws(() => Configuration.decided(h, 10, s123, 4), /comes after the one of slot 10/)
  })

  it("at agrees with the definition for every slot, whatever changes were decided", () => {
    fc.assert(
      fc.property(membersArb, changesArb, fc.integer({ min: 1, max: 20 }), (initial, changes, window) => {
        const h = build(initial, changes, window)
        assert.isTrue(Result.isSuccess(Schema.decodeUnknownResult(Configuration.History)(h)))
        for (let slot = 1; slot <= 230; slot++) {
          assert.deepStrictEqual(Configuration.at(h, slot), reference(initial, changes, slot, window), `slot ${slot}`)
        }
      })
    )
  })

  it("a slot below known + window keeps its configuration whatever is decided from known on", () => {
    fc.assert(
      fc.property(
        membersArb,
        changesArb,
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 220 }),
        membersArb,
        (initial, changes, window, known, late) => {
          // every change below `known` applied; then any change decided at `known` or later
          const before = changes.filter(([s]) => s < known)
          const h = build(initial, before, window)
          const later = Configuration.decided(h, Math.max(known, (before.at(-1)?.[0] ?? 0) + 1), late, window)
          for (let slot = 1; slot < known + window; slot++) {
            assert.isTrue(Configuration.isKnown(slot, known, window))
            assert.deepStrictEqual(Configuration.at(later, slot), Configuration.at(h, slot), `slot ${slot}`)
          }
          assert.isFalse(Configuration.isKnown(known + window, known, window))
        }
      )
    )
  })

  it("pruning below a watermark keeps the configuration of every slot from the watermark on", () => {
    fc.assert(
      fc.property(
        membersArb,
        changesArb,
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 230 }),
        (initial, changes, window, watermark) => {
          const h = build(initial, changes, window)
          const pruned = Configuration.prune(h, watermark)
          assert.isAtMost(pruned.length, h.length)
          assert.isAtMost(pruned[0]!.from, watermark)
          for (let slot = watermark; slot <= 240; slot++) {
            assert.deepStrictEqual(Configuration.at(pruned, slot), Configuration.at(h, slot))
          }
        }
      )
    )
  })

  it("governing lists the configurations of the slots from a slot on; retired acceptors are in none of them", () => {
    const h = Configuration.decided(
      Configuration.decided(Configuration.initial(s123), 10, s234, 4),
      20,
      m("s3,s4,s5"),
      4
    )
    assert.deepStrictEqual(Configuration.governing(h, 1), [s123, s234, m("s3,s4,s5")])
    assert.deepStrictEqual(Configuration.governing(h, 14), [s234, m("s3,s4,s5")])
    assert.deepStrictEqual(Configuration.governing(h, 30), [m("s3,s4,s5")])
    assert.deepStrictEqual(Configuration.retiredAcceptors(h, 13), [])
    assert.deepStrictEqual(Configuration.retiredAcceptors(h, 14), ["s1"])
    assert.deepStrictEqual(Configuration.retiredAcceptors(h, 24), ["s1", "s2"])
  })

  it("removed lists the servers the latest configuration dropped, retired once the watermark passed the slot they left at", () => {
    // s1 leaves at 14, s2 at 24; s1 comes back at 34
    const h = [
      [10, s234],
      [20, m("s3,s4,s5")],
      [30, m("s1,s3,s4")]
    ].reduce(
      (h, [s, c]) => Configuration.decided(h, s as number, c as Configuration.Members, 4),
      Configuration.initial(s123)
    )
    assert.deepStrictEqual(Configuration.removed(h.slice(0, 2), 14), [{ id: "s1", leftAt: 14, retired: false }])
    assert.deepStrictEqual(Configuration.removed(h.slice(0, 2), 15), [{ id: "s1", leftAt: 14, retired: true }])
    assert.deepStrictEqual(Configuration.removed(h.slice(0, 3), 20), [
      { id: "s1", leftAt: 14, retired: true },
      { id: "s2", leftAt: 24, retired: false }
    ])
    // back in the latest configuration: not removed; s5 left at 34
    assert.deepStrictEqual(Configuration.removed(h, 40), [
      { id: "s2", leftAt: 24, retired: true },
      { id: "s5", leftAt: 34, retired: true }
    ])
    assert.deepStrictEqual(Configuration.removed(Configuration.initial(s123), 100), [])
  })

  it("a retired server is in no configuration of a slot from the watermark - 1 on", () => {
    fc.assert(
      fc.property(
        membersArb,
        changesArb,
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 240 }),
        (initial, changes, window, watermark) => {
          const h = build(initial, changes, window)
          const latest = Configuration.latest(h)
          const named = (c: Configuration.Members, id: string) =>
            c.acceptors.includes(id) || c.leaders.includes(id) || c.replicas.includes(id)
          const removed = Configuration.removed(h, watermark)
          for (const r of removed) {
            assert.isFalse(named(latest, r.id))
            const needed = Configuration.governing(h, Math.max(1, watermark - 1)).some((c) => named(c, r.id))
            assert.strictEqual(r.retired, !needed, `${r.id} at watermark ${watermark}`)
            assert.isTrue(named(Configuration.at(h, r.leftAt - 1), r.id))
            assert.isFalse(named(Configuration.at(h, r.leftAt), r.id))
          }
          const ids = new Set(h.flatMap((e) => [...e.members.acceptors, ...e.members.replicas]))
          for (const id of ids) if (!named(latest, id)) assert.isTrue(removed.some((r) => r.id === id))
        }
      )
    )
  })

  it("a slot is decided by a majority of its own configuration's acceptors, counted once each", () => {
    const h = Configuration.decided(Configuration.initial(s123), 10, s234, 4)
    assert.isTrue(Configuration.isMajorityAt(h, 13, ["s1", "s2"]))
    // s1 votes for slot 14 do not count: it is not in that slot's configuration
    assert.isFalse(Configuration.isMajorityAt(h, 14, ["s1", "s2", "s2"]))
    assert.isTrue(Configuration.isMajorityAt(h, 14, ["s1", "s2", "s4"]))
    // the planted mistake: the new configuration applied at once, from slot 11
    const immediate = Configuration.decided(Configuration.initial(s123), 10, s234, 1)
    assert.isFalse(Configuration.isMajorityAt(immediate, 11, ["s1", "s2"]))
  })

  it("GC counts the replicas of the configuration that holds each slot: removing a dead replica lets it resume", () => {
    // three servers, f = 1: h = 2 replicas of the configuration must hold a slot
    const reports = new Map([
      ["s1", 40],
      ["s2", 40]
    ])
    // with exactly f + 1 replicas, a dead one stops GC for good
    const two = m("s1,s2,s3", "s1,s3")
    assert.strictEqual(Configuration.gcWatermark(Configuration.initial(two), new Map([["s1", 40]])), 1)
    // s3 is dead (no report); s1, s2 and s3 are replicas: two of them hold slot 39
    assert.strictEqual(Configuration.gcWatermark(Configuration.initial(s123), reports), 40)
    const deadFirst = Configuration.initial(m("s1,s2,s3", "s1,s3"))
    const replaced = Configuration.decided(deadFirst, 20, m("s1,s2,s3", "s1,s2"), 4)
    // below the change (slot 24) the slots need s1 and s3; s3 is dead, so reports past
    // 24 count only once s1 and s2 hold them
    const r = new Map([["s1", 40]])
    assert.strictEqual(Configuration.gcWatermark(replaced, r), 1)
    r.set("s2", 30)
    assert.strictEqual(Configuration.gcWatermark(replaced, r), 30)
    r.set("s2", 40)
    assert.strictEqual(Configuration.gcWatermark(replaced, r), 40)
    // never below the current watermark
    assert.strictEqual(Configuration.gcWatermark(replaced, new Map(), 12), 12)
  })

  it("a history is validated: entries in order, bounded, members named once", () => {
    const decode = Schema.decodeUnknownResult(Configuration.History)
    assert.isTrue(Result.isFailure(decode([])))
    assert.isTrue(
      Result.isFailure(
        decode([
          { from: 1, decidedAt: 0, members: s123 },
          { from: 1, decidedAt: 5, members: s234 }
        ])
      )
    )
    assert.isTrue(Result.isFailure(decode([{ from: 1, decidedAt: 0, members: m("s1,s1") }])))
    assert.isTrue(Result.isFailure(decode([{ from: 1, decidedAt: 0, members: { ...s123, acceptors: [] } }])))
    assert.isTrue(Result.isSuccess(decode(Configuration.initial(s123))))
  })
})

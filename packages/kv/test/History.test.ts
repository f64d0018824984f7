/**
 * The store's history of writes (for watches): one event per revision, bounded by
 * revisions and bytes, part of the snapshot; selection by key or prefix from a revision,
 * and the "compacted" answer; restore chunks staged out of sight.
 */
import { assert, describe, it } from "@effect/vitest"
import { StateMachine } from "@synod/core"
import { Result } from "effect"
import * as fc from "fast-check"
import { Kv, KvWatch } from "@synod/kv"

const run = (
  machine: StateMachine.StateMachine<Kv.State, Kv.Command, Kv.Result>,
  commands: ReadonlyArray<Kv.Command>
) => {
  let state = machine.initial
  const results: Array<Kv.Result> = []
  for (const c of commands) {
    const [next, r] = machine.apply(state, c)
    state = next
    results.push(r)
  }
  return { state, results }
}

const puts = (n: number, key = (i: number) => `k${i % 3}`): Array<Kv.Command> =>
  Array.from({ length: n }, (_, i) => ({ _tag: "Put", key: key(i), value: `v${i}` }))

describe("Kv history", () => {
  it("records one event per write, in revision order, deletes and transactions included", () => {
    const { state } = run(Kv.machine, [
      { _tag: "Put", key: "a", value: "1" },
      { _tag: "Del", key: "nope" },
      { _tag: "Cas", key: "a", version: 1, value: "2" },
      { _tag: "Cas", key: "a", version: 1, value: "x" },
      {
        _tag: "Txn",
        compare: [],
        success: [
          { op: "put", key: "b", value: "3" },
          { op: "del", key: "a" },
          { op: "get", key: "b" }
        ],
        failure: []
      }
    ])
    assert.deepStrictEqual(state.history.events(), [
      { revision: 1, key: "a", value: "1" },
      { revision: 2, key: "a", value: "2" },
      { revision: 3, key: "b", value: "3" },
      { revision: 4, key: "a", value: null }
    ])
  })

  it("keeps at most `revisions` events and `bytes` of them, compacting the oldest", () => {
    const byCount = run(Kv.make({ retention: { revisions: 5 } }), puts(12)).state
    assert.strictEqual(byCount.history.size, 5)
    assert.strictEqual(byCount.history.compacted, 7)
    assert.deepStrictEqual(
      byCount.history.events().map((e) => e.revision),
      [8, 9, 10, 11, 12]
    )
    // each event counts 16 + key + value bytes: "k0" + "v10" is 21
    const byBytes = run(Kv.make({ retention: { bytes: 3 * 21 } }), puts(12)).state
    assert.isAtMost(byBytes.history.bytes, 3 * 21)
    assert.strictEqual(byBytes.history.size, 3)
    // the newest event is kept even when it alone is over the limit
    const tiny = run(Kv.make({ retention: { bytes: 1 } }), puts(3)).state
    assert.deepStrictEqual(tiny.history.events(), [{ revision: 3, key: "k2", value: "v2" }])
    assert.throws(() => Kv.make({ retention: { revisions: 0 } }), RangeError)
  })

  it("is persistent: appending to an older history leaves the newer one alone", () => {
    const machine = Kv.make({ retention: { revisions: 3 } })
    const { state: base } = run(machine, puts(4))
    const [a] = machine.apply(base, { _tag: "Put", key: "a", value: "A" })
    const [b] = machine.apply(base, { _tag: "Put", key: "b", value: "B" })
    assert.deepStrictEqual(a.history.events().at(-1), { revision: 5, key: "a", value: "A" })
    assert.deepStrictEqual(b.history.events().at(-1), { revision: 5, key: "b", value: "B" })
    assert.deepStrictEqual(
      base.history.events().map((e) => e.revision),
      [2, 3, 4]
    )
    // many appends through compactions of the shared array
    const long = run(machine, puts(5000)).state
    assert.deepStrictEqual(
      long.history.events().map((e) => e.revision),
      [4998, 4999, 5000]
    )
  })

  it("survives the snapshot round trip, trimmed to the machine's retention", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 10 }), (n, keep) => {
        const machine = Kv.make({ retention: { revisions: keep } })
        const codecs = StateMachine.codecs(machine)
        const { state } = run(machine, puts(n))
        const restored = Result.getOrThrow(codecs.decodeState(JSON.parse(JSON.stringify(codecs.encodeState(state)))))
        assert.deepStrictEqual(restored.history.events(), state.history.events())
        assert.strictEqual(restored.history.compacted, state.history.compacted)
        assert.strictEqual(restored.history.bytes, state.history.bytes)
      })
    )
  })

  it("selects a key's or a prefix's events from a revision; older than the history: compacted", () => {
    const machine = Kv.make({ retention: { revisions: 6 } })
    const { state } = run(
      machine,
      puts(10, (i) => (i % 2 === 0 ? `a/${i}` : `b/${i}`))
    )
    // revisions 5..10 are kept: a/4 (5), b/5 (6), a/6 (7), b/7 (8), a/8 (9), b/9 (10)
    assert.deepStrictEqual(KvWatch.select(state, { prefix: "a/" }, 6, 100), {
      _tag: "Events",
      events: [
        { revision: 7, key: "a/6", value: "v6" },
        { revision: 9, key: "a/8", value: "v8" }
      ],
      through: 10
    })
    assert.deepStrictEqual(KvWatch.select(state, { key: "b/5" }, 5, 100), {
      _tag: "Events",
      events: [{ revision: 6, key: "b/5", value: "v5" }],
      through: 10
    })
    // at most `max`, then `through` stops before the next match
    assert.deepStrictEqual(KvWatch.select(state, { prefix: "" }, 5, 2), {
      _tag: "Events",
      events: [
        { revision: 5, key: "a/4", value: "v4" },
        { revision: 6, key: "b/5", value: "v5" }
      ],
      through: 6
    })
    // about `maxBytes` of keys and values (each event here: 3 + 2), at least one event
    assert.deepStrictEqual(KvWatch.select(state, { prefix: "" }, 5, 100, 8), {
      _tag: "Events",
      events: [
        { revision: 5, key: "a/4", value: "v4" },
        { revision: 6, key: "b/5", value: "v5" }
      ],
      through: 6
    })
    assert.deepStrictEqual(KvWatch.select(state, { prefix: "b/" }, 5, 100, 1), {
      _tag: "Events",
      events: [{ revision: 6, key: "b/5", value: "v5" }],
      through: 7
    })
    assert.deepStrictEqual(KvWatch.select(state, { prefix: "" }, 4, 100), { _tag: "Compacted", oldest: 5 })
    assert.deepStrictEqual(KvWatch.select(state, { prefix: "" }, 11, 100), { _tag: "Events", events: [], through: 10 })
    assert.deepStrictEqual(KvWatch.select(state, { prefix: "" }, 50, 100), { _tag: "Events", events: [], through: 49 })
  })
})

describe("Kv restore", () => {
  const chunk = (
    id: string,
    index: number,
    entries: Array<[string, string, number]>,
    revision?: number
  ): Kv.Command => ({
    _tag: "Restore",
    id,
    index,
    entries,
    ...(revision === undefined ? {} : { done: { revision } })
  })

  it("stages chunks out of sight and installs them at once, at the backup's revision", () => {
    const { state, results } = run(Kv.machine, [
      chunk("r1", 0, [["a", "1", 3]]),
      { _tag: "Get", key: "a" },
      chunk("r1", 1, [["b", "2", 7]], 9)
    ])
    assert.deepStrictEqual(results[1], { _tag: "Value", value: null, version: 0 })
    assert.deepStrictEqual(results[2], { _tag: "Restored", ok: true, staged: 2, revision: 9 })
    assert.strictEqual(state.revision, 9)
    assert.isUndefined(state.restoring)
    assert.deepStrictEqual(Kv.apply(state, { _tag: "Get", key: "b" })[1], { _tag: "Value", value: "2", version: 7 })
    assert.deepStrictEqual(Kv.apply(state, { _tag: "Put", key: "c", value: "3" })[1], { _tag: "Written", version: 10 })
    // watches start after the restored revision
    assert.deepStrictEqual(KvWatch.select(state, { prefix: "" }, 9, 10), { _tag: "Compacted", oldest: 10 })
  })

  it("refuses a store that is not new, chunks out of order or of another restore, versions past the revision", () => {
    const refused = (commands: ReadonlyArray<Kv.Command>) => {
      const { state, results } = run(Kv.machine, commands)
      const last = results.at(-1)!
      assert.strictEqual(last._tag, "Restored")
      if (last._tag !== "Restored") return ""
      assert.isFalse(last.ok)
      assert.isUndefined(state.restoring)
      return last.reason ?? ""
    }
    assert.include(refused([{ _tag: "Put", key: "x", value: "1" }, chunk("r", 0, [], 5)]), "not new")
    // a write in the middle of a restore
    assert.include(
      refused([chunk("r", 0, [["a", "1", 1]]), { _tag: "Put", key: "x", value: "1" }, chunk("r", 1, [], 5)]),
      "not new"
    )
    assert.include(refused([chunk("r", 0, []), chunk("r", 2, [], 5)]), "expected chunk 1, got 2")
    assert.include(refused([chunk("r", 0, []), chunk("s", 1, [], 5)]), "restore r is")
    assert.include(refused([chunk("r", 1, [], 5)]), "no restore is under way")
    assert.include(refused([chunk("r", 0, [["a", "1", 6]], 5)]), 'key "a" has version 6')
    // and the store is still new: a restore can run again
    const { results } = run(Kv.machine, [chunk("r", 0, [["a", "1", 6]], 5), chunk("r", 0, [["a", "1", 5]], 5)])
    assert.deepStrictEqual(results[1], { _tag: "Restored", ok: true, staged: 1, revision: 5 })
  })

  it("a restore under way is part of the snapshot", () => {
    const codecs = StateMachine.codecs(Kv.machine)
    const { state } = run(Kv.machine, [chunk("r", 0, [["a", "1", 1]])])
    const copy = Result.getOrThrow(codecs.decodeState(JSON.parse(JSON.stringify(codecs.encodeState(state)))))
    const [done, r] = Kv.apply(copy, chunk("r", 1, [], 1))
    assert.deepStrictEqual(r, { _tag: "Restored", ok: true, staged: 1, revision: 1 })
    assert.deepStrictEqual(Kv.apply(done, { _tag: "Get", key: "a" })[1], { _tag: "Value", value: "1", version: 1 })
  })
})

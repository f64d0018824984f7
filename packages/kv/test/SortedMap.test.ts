/**
 * The store's persistent sorted map against a model (a `Map` and `<`): contents, order,
 * prefix pages, and that no operation changes a map already made (a replica keeps older
 * states while it applies commands to newer ones).
 */
import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { SortedMap } from "@synod/kv"
import { copies } from "@synod/kv/SortedMap"

type Op =
  | { readonly set: string; readonly value: number }
  | { readonly swap: string; readonly value: number }
  | { readonly remove: string }

// few distinct characters, so keys share prefixes and collide; "\u{1F600}" is a surrogate
// pair, "é" above ASCII: order is by UTF-16 code units
const key = fc.string({ unit: fc.constantFrom("a", "b", "c", "é", "\u{1F600}"), maxLength: 5 })
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ set: key, value: fc.integer() }),
  fc.record({ swap: key, value: fc.integer() }),
  fc.record({ remove: key })
)

const sortedEntries = (model: ReadonlyMap<string, number>): Array<[string, number]> =>
  [...model].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))

describe("SortedMap", () => {
  it("holds what a Map holds, in `<` order, and every earlier version stays as it was", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        let map = SortedMap.empty<number>()
        const model = new Map<string, number>()
        const versions: Array<{ map: SortedMap<number>; entries: Array<[string, number]> }> = []
        for (const o of ops) {
          if ("set" in o) {
            map = map.set(o.set, o.value)
            model.set(o.set, o.value)
          } else if ("swap" in o) {
            const [next, old] = map.swap(o.swap, o.value)
            assert.strictEqual(old, model.get(o.swap), `swap ${JSON.stringify(o.swap)}: the value it replaced`)
            map = next
            model.set(o.swap, o.value)
          } else {
            map = map.remove(o.remove)
            model.delete(o.remove)
          }
          versions.push({ map, entries: sortedEntries(model) })
        }
        assert.deepStrictEqual([...map], sortedEntries(model))
        assert.strictEqual(map.size, model.size)
        for (const k of ["", "a", "ab", "é", "\u{1F600}", "zz"]) {
          assert.strictEqual(map.get(k), model.get(k), `get ${JSON.stringify(k)}`)
          assert.strictEqual(map.has(k), model.has(k), `has ${JSON.stringify(k)}`)
        }
        for (const v of versions) {
          assert.deepStrictEqual([...v.map.entries()], v.entries)
          assert.strictEqual(v.map.size, v.entries.length)
        }
      })
    )
  })

  it("a draft holds what a Map holds while it changes in place; the map it came from and what it froze stay as they were", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.array(op, { maxLength: 300 }), (first, then) => {
        let map = SortedMap.empty<number>()
        const model = new Map<string, number>()
        for (const o of first) {
          if ("remove" in o) {
            map = map.remove(o.remove)
            model.delete(o.remove)
          } else {
            map = "set" in o ? map.set(o.set, o.value) : map.swap(o.swap, o.value)[0]
            model.set("set" in o ? o.set : o.swap, o.value)
          }
        }
        const original = { map, entries: sortedEntries(model) }
        const draft = map.edit()
        const frozen: Array<{ map: SortedMap<number>; entries: Array<[string, number]> }> = []
        then.forEach((o, i) => {
          let next: SortedMap<number>
          if ("set" in o) {
            next = draft.set(o.set, o.value)
            model.set(o.set, o.value)
          } else if ("swap" in o) {
            const [after, old] = draft.swap(o.swap, o.value)
            assert.strictEqual(old, model.get(o.swap), `swap ${JSON.stringify(o.swap)}: the value it replaced`)
            next = after
            model.set(o.swap, o.value)
          } else {
            next = draft.remove(o.remove)
            model.delete(o.remove)
          }
          assert.strictEqual(next, draft, "a draft's write changes it in place")
          if (i % 7 === 0) frozen.push({ map: draft.freeze(), entries: sortedEntries(model) })
        })
        assert.deepStrictEqual([...draft], sortedEntries(model))
        assert.strictEqual(draft.size, model.size)
        const last = draft.freeze()
        assert.deepStrictEqual([...last], sortedEntries(model))
        assert.strictEqual(last.freeze(), last, "a frozen map is no draft")
        // a frozen map's writes are persistent again
        assert.notStrictEqual(last.set("a", 1), last)
        for (const v of [original, ...frozen]) {
          assert.deepStrictEqual([...v.map], v.entries)
          assert.strictEqual(v.map.size, v.entries.length)
        }
      })
    )
  })

  it("every version holds what its model holds, whatever version each write or draft starts from", () => {
    // versions branch (a write to an older version, a draft of one) and drafts interleave:
    // the values' versions are rerooted back and forth, and read while others move on
    type Step =
      | { readonly write: number; readonly op: Op }
      | { readonly edit: number }
      | { readonly draftWrite: number; readonly op: Op }
      | { readonly freeze: number }
      | { readonly read: number; readonly key: string }
      | { readonly readAll: true }
    const step: fc.Arbitrary<Step> = fc.oneof(
      { arbitrary: fc.constant({ readAll: true as const }), weight: 1 },
      { arbitrary: fc.record({ write: fc.nat(), op }), weight: 4 },
      { arbitrary: fc.record({ edit: fc.nat() }), weight: 1 },
      { arbitrary: fc.record({ draftWrite: fc.nat(), op }), weight: 6 },
      { arbitrary: fc.record({ freeze: fc.nat() }), weight: 2 },
      { arbitrary: fc.record({ read: fc.nat(), key }), weight: 3 }
    )
    const applyOp = (map: SortedMap<number>, model: Map<string, number>, o: Op): SortedMap<number> => {
      if ("set" in o) {
        model.set(o.set, o.value)
        return map.set(o.set, o.value)
      }
      if ("swap" in o) {
        const [next, old] = map.swap(o.swap, o.value)
        assert.strictEqual(old, model.get(o.swap), `swap ${JSON.stringify(o.swap)}: the value it replaced`)
        model.set(o.swap, o.value)
        return next
      }
      model.delete(o.remove)
      return map.remove(o.remove)
    }
    fc.assert(
      fc.property(fc.array(step, { maxLength: 300 }), (steps) => {
        const versions: Array<{ map: SortedMap<number>; model: Map<string, number> }> = [
          { map: SortedMap.empty(), model: new Map() }
        ]
        const drafts: Array<{ map: SortedMap<number>; model: Map<string, number> }> = []
        // every key the steps name, present or not: a version must not see another's
        const keys = new Set<string>()
        for (const st of steps) {
          if ("key" in st) keys.add(st.key)
          if ("op" in st) keys.add("set" in st.op ? st.op.set : "swap" in st.op ? st.op.swap : st.op.remove)
        }
        const check = (v: { map: SortedMap<number>; model: Map<string, number> }, what: string) => {
          assert.deepStrictEqual([...v.map], sortedEntries(v.model), what)
          assert.strictEqual(v.map.size, v.model.size, what)
          for (const k of keys) assert.strictEqual(v.map.get(k), v.model.get(k), `${what}: get ${JSON.stringify(k)}`)
        }
        for (const st of steps) {
          if ("write" in st) {
            const v = versions[st.write % versions.length]!
            const model = new Map(v.model)
            versions.push({ map: applyOp(v.map, model, st.op), model })
          } else if ("edit" in st) {
            const v = versions[st.edit % versions.length]!
            drafts.push({ map: v.map.edit(), model: new Map(v.model) })
          } else if ("draftWrite" in st) {
            const d = drafts[st.draftWrite % Math.max(1, drafts.length)]
            if (d === undefined) continue
            assert.strictEqual(applyOp(d.map, d.model, st.op), d.map, "a draft's write changes it in place")
          } else if ("freeze" in st) {
            const d = drafts[st.freeze % Math.max(1, drafts.length)]
            if (d === undefined) continue
            versions.push({ map: d.map.freeze(), model: new Map(d.model) })
          } else if ("readAll" in st) {
            for (const [i, v] of versions.entries()) check(v, `version ${i}`)
          } else {
            const all = [...versions, ...drafts]
            const v = all[st.read % all.length]!
            assert.strictEqual(v.map.get(st.key), v.model.get(st.key), `get ${JSON.stringify(st.key)}`)
            assert.strictEqual(v.map.has(st.key), v.model.has(st.key), `has ${JSON.stringify(st.key)}`)
          }
        }
        for (const [i, v] of versions.entries()) check(v, `version ${i}`)
        for (const [i, d] of drafts.entries()) check(d, `draft ${i}`)
        // and again, in the other order: reading moves nothing a version holds
        for (let i = drafts.length - 1; i >= 0; i--) check(drafts[i]!, `draft ${i}, again`)
        for (let i = versions.length - 1; i >= 0; i--) check(versions[i]!, `version ${i}, again`)
      }),
      { numRuns: 300 }
    )
  })

  it("a version held while thousands of writes go on keeps what it held, as do those written meanwhile", () => {
    // past as many writes as it holds keys (at least 1,024), a store's next version goes
    // to a copy: the versions held must read the same across the copies
    let map = SortedMap.from([["a", -1]])
    const held: Array<{ map: SortedMap<number>; model: Map<string, number> }> = []
    const model = new Map<string, number>([["a", -1]])
    for (let batch = 0; batch < 120; batch++) {
      const draft = map.edit()
      for (let i = 0; i < 40; i++) {
        const key = `k${(batch * 7 + i * 13) % 97}`
        if (i % 11 === 10) {
          draft.remove(key)
          model.delete(key)
        } else {
          draft.set(key, batch * 100 + i)
          model.set(key, batch * 100 + i)
        }
      }
      map = draft.freeze()
      if (batch % 9 === 0) held.push({ map, model: new Map(model) })
      // and persistent writes, from the head and from a version held
      if (batch % 13 === 0)
        held.push({ map: held[0]!.map.set("b", batch), model: new Map(held[0]!.model).set("b", batch) })
    }
    assert.deepStrictEqual([...map], sortedEntries(model))
    for (const [i, h] of held.entries()) {
      assert.deepStrictEqual([...h.map], sortedEntries(h.model), `held ${i}`)
      assert.strictEqual(h.map.get("a"), h.model.get("a"), `held ${i}: get`)
    }
  })

  it("a store written at its head moves to stores of its own a few entries per write, never all at once", () => {
    // the yardstick's shape: one writer, drafts of a batch each, a version held throughout
    const size = 5000
    let map = SortedMap.from(Array.from({ length: size }, (_, i) => [`k${i}`, -i] as const))
    const initial = map
    const model = new Map<string, number>([...map])
    const before = { ...copies }
    for (let batch = 0; batch < 500; batch++) {
      const draft = map.edit()
      for (let i = 0; i < 40; i++) {
        const n = (batch * 40 + i) * 7919
        const key = `k${n % (size + 500)}`
        if (n % 17 === 0) {
          draft.remove(key)
          model.delete(key)
        } else {
          draft.set(key, batch)
          model.set(key, batch)
        }
      }
      map = draft.freeze()
    }
    // 20,000 writes on about 5,000 keys: a migration for each 5,000 or so
    assert.isAtLeast(copies.migrated - before.migrated, 2)
    assert.strictEqual(copies.copiedAtOnce, before.copiedAtOnce, "no store copied in one go")
    assert.deepStrictEqual([...map], sortedEntries(model))
    assert.strictEqual(initial.size, size)
    assert.strictEqual(initial.get("k4999"), -4999)
  })

  it("long histories through migrations: mostly at the head, now and then from a version held, every version reads right", () => {
    // past 1,024 writes a store migrates (the other properties stay below): writes at the
    // head move it on, a write from a held version gives it up or branches to a copy
    const before = copies.migrated
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            from: fc.oneof({ arbitrary: fc.constant(-1), weight: 30 }, { arbitrary: fc.nat(), weight: 1 }),
            draft: fc.boolean(),
            ops: fc.array(op, { minLength: 1, maxLength: 12 }),
            hold: fc.boolean()
          }),
          { minLength: 200, maxLength: 500 }
        ),
        (steps) => {
          let head = { map: SortedMap.empty<number>(), model: new Map<string, number>() }
          const held = [head]
          for (const st of steps) {
            const base = st.from === -1 ? head : held[st.from % held.length]!
            const model = new Map(base.model)
            let map = st.draft ? base.map.edit() : base.map
            for (const o of st.ops) {
              const k = "set" in o ? o.set : "swap" in o ? o.swap : o.remove
              if ("remove" in o) {
                model.delete(k)
                map = map.remove(k)
              } else {
                model.set(k, o.value)
                map = map.set(k, o.value)
              }
            }
            const next = { map: map.freeze(), model }
            if (st.from === -1) head = next
            if (st.hold) held.push(next)
          }
          for (const [i, v] of [...held, head].entries()) {
            assert.deepStrictEqual([...v.map], sortedEntries(v.model), `version ${i}`)
          }
        }
      ),
      { numRuns: 40, endOnFailure: true }
    )
    assert.isAbove(copies.migrated, before, "some migration ended")
  })

  it("a store whose migrations a reroot keeps undoing is copied at once when overdue, and reads right", () => {
    let head = SortedMap.from<number>(Array.from({ length: 100 }, (_, i) => [`k${i}`, 0] as const))
    const model = new Map([...head])
    const before = { ...copies }
    for (let i = 0; i < 3000; i++) {
      const previous = head
      head = head.set(`k${i % 100}`, i)
      model.set(`k${i % 100}`, i)
      // a write to the version before the head: the store's head moves back to it
      if (i % 3 === 0) assert.strictEqual(previous.set("other", i).get("other"), i)
    }
    assert.isAbove(copies.copiedAtOnce, before.copiedAtOnce)
    assert.deepStrictEqual([...head], sortedEntries(model))
  })

  it("pages a prefix from after a key as a filter of the whole would", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(key, fc.integer())),
        key,
        fc.option(key, { nil: undefined }),
        (entries, prefix, after) => {
          const map = SortedMap.from(entries)
          const expected = sortedEntries(new Map(entries)).filter(
            ([k]) => k.startsWith(prefix) && (after === undefined || k > after)
          )
          assert.deepStrictEqual([...map.entriesWithPrefix(prefix, after)], expected)
        }
      )
    )
  })

  it("removing an absent key gives the same map back", () => {
    const map = SortedMap.from([["a", 1]])
    assert.strictEqual(map.remove("b"), map)
    assert.notStrictEqual(map.remove("a"), map)
    assert.deepStrictEqual([...map], [["a", 1]])
  })
})

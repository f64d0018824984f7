/**
 * The store's persistent sorted map against a model (a `Map` and `<`): contents, order,
 * prefix pages, and that no operation changes a map already made (a replica keeps older
 * states while it applies commands to newer ones).
 */
import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { SortedMap } from "@synod/kv"

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

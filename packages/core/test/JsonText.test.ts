import { assert, describe, it } from "@effect/vitest"
import { Effect, type Schema } from "effect"
import * as fc from "fast-check"
import { JsonText } from "@synod/core"

const json: fc.Arbitrary<Schema.Json> = fc.jsonValue() as fc.Arbitrary<Schema.Json>

describe("JsonText", () => {
  it("stringifyGradually gives JSON.stringify's text, for any JSON value", () => {
    fc.assert(
      fc.property(json, (value) => {
        const gen = JsonText.stringifyGradually(value)
        let r = gen.next()
        while (!r.done) r = gen.next()
        assert.strictEqual(r.value, JSON.stringify(value))
      }),
      { numRuns: 500 }
    )
  })

  it("stringifyChunks gives JSON.stringify's text in chunks, none of which splits a surrogate pair", () => {
    const lone = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
    fc.assert(
      fc.property(
        fc.oneof(json, fc.array(fc.tuple(fc.string({ unit: "binary" }), fc.string({ unit: "binary" })))),
        (value) => {
          const gen = JsonText.stringifyChunks(value as Schema.Json)
          let r = gen.next()
          while (!r.done) r = gen.next()
          assert.strictEqual(r.value.join(""), JSON.stringify(value))
          for (const chunk of r.value) assert.notMatch(chunk, lone, "each chunk is whole UTF-16")
        }
      ),
      { numRuns: 500 }
    )
    // the slices of a long array are separate chunks: not joined into one string
    const gen = JsonText.stringifyChunks(Array.from({ length: 3 * JsonText.sliceElements }, (_, i) => i))
    let r = gen.next()
    while (!r.done) r = gen.next()
    assert.deepStrictEqual(
      r.value.map((c) => c.length > 1),
      [false, true, false, true, false, true, false]
    )
  })

  it("pieces regroups chunks into pieces of about sliceChars characters, cutting only chunks longer than that", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: "binary", maxLength: 12 }), { maxLength: 20 }),
        fc.integer({ min: 1, max: 9 }),
        (chunks, size) => {
          const out = [...JsonText.pieces(chunks, size)]
          assert.strictEqual(out.map((p) => p.join("")).join(""), chunks.join(""))
          for (const piece of out) {
            assert.isAbove(piece.length, 0)
            // a piece stops growing once it reaches the size: its last chunk took it there
            const before = piece.slice(0, -1).join("").length
            assert.isBelow(before, size)
            if (piece.length === 1 && piece[0]!.length > size) {
              // a slice of a long chunk: the size, or one more to keep a surrogate pair whole
              assert.isAtMost(piece[0]!.length, size + 1)
            }
          }
        }
      ),
      { numRuns: 500 }
    )
  })

  it.effect("a long array is stringified in slices, with the other fibers running in between", () =>
    Effect.gen(function* () {
      const n = JsonText.sliceElements * 3 + 7
      const value = { revision: n, entries: Array.from({ length: n }, (_, i) => [`k${i}`, 'é"\\', i]) }
      let turns = 0
      const counter = yield* Effect.forkChild(
        Effect.forever(
          Effect.andThen(
            Effect.sync(() => turns++),
            Effect.yieldNow
          )
        )
      )
      const text = yield* JsonText.runGradually(() => JsonText.stringifyGradually(value))
      assert.strictEqual(text, JSON.stringify(value))
      // four slices of at most 4096 entries: the counter ran between them
      assert.isAtLeast(turns, 2)
      void counter
    })
  )

  it("slices hold at most sliceElements entries and about sliceChars characters: large values make more, smaller slices", () => {
    const slices = (value: Schema.Json) => {
      const gen = JsonText.stringifyGradually(value)
      let n = 1
      let r = gen.next()
      while (!r.done) {
        n++
        r = gen.next()
      }
      assert.strictEqual(r.value, JSON.stringify(value))
      return n
    }
    const small = Array.from({ length: 2 * JsonText.sliceElements }, (_, i) => [`k${i}`, "v", i])
    assert.strictEqual(slices(small), 2)
    // 4 KB values: 64 of them reach 256 K characters, where 4,096 would have made 16 MB
    const large = Array.from({ length: 256 }, (_, i) => [`k${i}`, "x".repeat(4096), i])
    assert.strictEqual(slices(large), 4)
    assert.strictEqual(slices([]), 1)
    assert.strictEqual(slices(["x".repeat(JsonText.sliceChars * 2)]), 1, "an element is never split")
    const withToJson = { at: { toJSON: () => "then" }, list: [{ toJSON: () => [1, 2] }] }
    assert.strictEqual(slices(withToJson as unknown as Schema.Json), 1)
  })

  it.effect("textOf stringifies a value once for its users, until forget", () =>
    Effect.gen(function* () {
      const snapshot = { slotOut: 7, state: [["k", "v"]], clients: [] as Array<string> }
      const first = yield* JsonText.textOf(snapshot)
      assert.strictEqual(first.join(""), JSON.stringify(snapshot))
      // snapshots are immutable; a change here shows which text the next user gets
      snapshot.clients.push("c")
      assert.strictEqual(yield* JsonText.textOf(snapshot), first, "the text kept, not stringified again")
      JsonText.forget(snapshot)
      assert.strictEqual(
        (yield* JsonText.textOf(snapshot)).join(""),
        JSON.stringify(snapshot),
        "after forget: stringified anew"
      )
    })
  )
})

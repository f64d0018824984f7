import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Limits, Trusted } from "@synod/core"

/** JSON values: strings from `text`, the leaves given, booleans and null, in small arrays and objects keyed by `text`. */
const json = (text: fc.Arbitrary<string>, ...leaves: ReadonlyArray<fc.Arbitrary<unknown>>) =>
  fc.letrec((tie) => ({
    json: fc.oneof(
      { depthSize: "small" },
      text,
      ...leaves,
      fc.boolean(),
      fc.constant(null),
      fc.array(tie("json"), { maxLength: 4 }),
      fc.dictionary(text, tie("json"), { maxKeys: 4 })
    )
  })).json

describe("Limits.jsonLength", () => {
  it("is the length of the JSON for values of plain strings, booleans, null, arrays and objects", () => {
    const plain = fc.string({ unit: fc.constantFrom("a", "b", "z", "0", " ", "-", "é") })
    const value = json(plain)
    fc.assert(
      fc.property(value, (v) => {
        assert.strictEqual(Limits.jsonLength(v), JSON.stringify(v).length, JSON.stringify(v))
      })
    )
  })

  it("counts a number as 8, an escape as one character, and skips undefined properties", () => {
    assert.strictEqual(Limits.jsonLength({ n: 1, big: 123456789012 }), JSON.stringify({ n: 0, big: 0 }).length + 7 + 7)
    assert.strictEqual(Limits.jsonLength('a"b'), 5)
    assert.strictEqual(Limits.jsonLength({ a: undefined, b: "x" }), JSON.stringify({ b: "x" }).length)
    assert.strictEqual(Limits.jsonLength("x".repeat(4096)), 4098)
  })
})

describe("Limits.jsonBytesOrBound", () => {
  it("is the exact size above `small`, and never less than it", () => {
    const text = fc.string({ unit: fc.constantFrom("a", '"', "\\", "\u0000", "é", "\u{1F600}", "\ud800") })
    const value = json(text, fc.double(), fc.integer())
    fc.assert(
      fc.property(value, fc.integer({ min: 0, max: 400 }), (v, small) => {
        const bytes = Limits.jsonBytes(v)
        const counted = Limits.jsonBytesOrBound(v, small)
        assert.isAtLeast(counted, bytes, JSON.stringify(v))
        if (counted > small) assert.strictEqual(counted, bytes, JSON.stringify(v))
      }),
      { numRuns: 1000 }
    )
    // the longest numbers JSON writes: a decimal just above 1e-6 in size (25 characters, which
    // a random run found over a bound of 24) and an exponent form
    for (const n of ["-1.0000003791672072e-6", "-1.2345678901234567e-7", "-1.2345678901234567e-100"].map(Number)) {
      assert.isAtLeast(Limits.jsonBytesOrBound(n, 400), JSON.stringify(n).length, String(n))
    }
    // a 100-byte value's command counts as its bound under a 4 KB share, exactly over a tiny one
    const command = Trusted.command("client-1", 1, 1, { _tag: "Put", key: "k".repeat(16), value: "v".repeat(100) })
    assert.isAbove(Limits.jsonBytesOrBound(command, 4096), Limits.jsonBytes(command))
    assert.strictEqual(Limits.jsonBytesOrBound(command, 100), Limits.jsonBytes(command))
  })
})

describe("Limits.jsonFits", () => {
  it("says whether the JSON takes at most the limit, exactly, whatever the value holds", () => {
    // the worst cases of the bound: escapes (6 bytes), 3-byte and 4-byte UTF-8, long numbers
    const text = fc.string({
      unit: fc.oneof(
        fc.constantFrom("a", '"', "\\", "\u0000", "\u001f", "\n", "é", "€", "\u{1F600}", "\ud800"),
        fc.string({ maxLength: 1 })
      )
    })
    const number = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(-1.7976931348623157e308, 5e-324, -0))
    const value = json(text, number)
    fc.assert(
      fc.property(value, fc.integer({ min: -3, max: 3 }), (v, delta) => {
        const bytes = Limits.jsonBytes(v)
        // at, just below and just above the value's own size: where a wrong bound would show
        for (const limit of [bytes, bytes - 1, bytes + delta, 0])
          assert.strictEqual(Limits.jsonFits(v, limit), bytes <= limit, `${JSON.stringify(v)} in ${limit}`)
      }),
      { numRuns: 2000 }
    )
  })

  it("bounds any object without a toJSON by its own properties, and takes the rest through their encoding", () => {
    class Point {
      readonly x: number
      readonly label: string
      constructor(x: number, label: string) {
        this.x = x
        this.label = label
      }
      get norm(): number {
        return Math.abs(this.x)
      }
    }
    class WithHidden {
      readonly shown = "a".repeat(20)
      constructor() {
        Object.defineProperty(this, "hidden", { value: "b".repeat(100), enumerable: false })
      }
    }
    const values: ReadonlyArray<unknown> = [
      Trusted.command("client-1", 7, 5, { _tag: "Put", key: "k", value: 'v"\\é\u0000'.repeat(30) }),
      Trusted.batch([Trusted.command("c", 1, 1, { op: [1, 2.5, null] }), Trusted.command("c", 2, 1, "x")]),
      new Point(-123456.789, "p\n"),
      { nested: new Point(1, "q"), list: [new Point(2, "r")] },
      new WithHidden(),
      // boxed primitives encode as the primitive, not as their (absent) own properties
      new Number(123456789),
      new String("a string longer than its properties say"),
      new Boolean(false),
      { n: new Number(-1.5e300), s: new String("boxed") },
      new Date(0),
      new Map([["a", 1]]),
      new Uint8Array([1, 2, 255]),
      Object.assign(Object.create(null), { a: "null prototype" })
    ]
    for (const v of values) {
      const bytes = Limits.jsonBytes(v)
      for (const limit of [bytes, bytes - 1, 0]) {
        assert.strictEqual(Limits.jsonFits(v, limit), bytes <= limit, `${JSON.stringify(v)} in ${limit}`)
      }
    }
  })

  it("takes class instances through their own encoding", () => {
    class Wrapped {
      toJSON() {
        return "x".repeat(100)
      }
    }
    assert.isFalse(Limits.jsonFits({ a: new Wrapped() }, 50))
    assert.isTrue(Limits.jsonFits({ a: new Wrapped() }, 200))
  })
})

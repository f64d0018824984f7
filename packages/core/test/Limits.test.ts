import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Limits } from "@synod/core"

describe("Limits.jsonLength", () => {
  it("is the length of the JSON for values of plain strings, booleans, null, arrays and objects", () => {
    const plain = fc.string({ unit: fc.constantFrom("a", "b", "z", "0", " ", "-", "é") })
    const value = fc.letrec((tie) => ({
      json: fc.oneof(
        { depthSize: "small" },
        plain,
        fc.boolean(),
        fc.constant(null),
        fc.array(tie("json"), { maxLength: 4 }),
        fc.dictionary(plain, tie("json"), { maxKeys: 4 })
      )
    })).json
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

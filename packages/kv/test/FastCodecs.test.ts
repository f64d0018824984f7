/**
 * Kv's hand-written codecs (`FastCodecs.ts`) against the schemas they stand in front of:
 * whatever they answer, the schema's codec answers the same, fields in the same order,
 * and they answer for every plain write and read.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import * as fc from "fast-check"
import { Kv } from "@synod/kv"

// the machine's own: what replicas and clients use
const FastCodecs = Kv.machine.fast!

const commandJson = Schema.toCodecJson(Kv.Command)
const resultJson = Schema.toCodecJson(Kv.Result)
const decodeCommand = Schema.decodeUnknownResult(commandJson)
const decodeResult = Schema.decodeUnknownResult(resultJson)
const encodeCommand = Schema.encodeUnknownResult(commandJson)
const encodeResult = Schema.encodeUnknownResult(resultJson)

const big = "v".repeat(Kv.maxValueLength)
// the edges of every check, and wrong types
const key = fc.oneof(
  fc.string({ minLength: 1, maxLength: 8 }),
  fc.constantFrom("", ".", "..", "...", "k".repeat(Kv.maxKeyLength), "k".repeat(Kv.maxKeyLength + 1), 7, null)
)
const value = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(big, `${big}v`, 1, null))
const nullableValue = fc.oneof(value, fc.constant(null))
const version = fc.oneof(
  fc.integer({ min: 0, max: 1000 }),
  fc.constantFrom(-1, 1.5, 2 ** 53, Number.MAX_SAFE_INTEGER, Number.NaN, Number.POSITIVE_INFINITY, "1", null)
)
const lease = fc.constantFrom(1, 2, 0, -1, 1.5, 2 ** 53, undefined, "1")
const tag = (t: string) => fc.oneof({ weight: 9, arbitrary: fc.constant(t) }, fc.constantFrom("get", "Nope", 1))
const extra = fc.option(fc.dictionary(fc.constantFrom("x", "op", "_tag", "key"), fc.integer()), { nil: undefined })

/** An object with the fields given, some left out, and extra ones now and then. */
const shape = (fields: Record<string, fc.Arbitrary<unknown>>) =>
  fc
    .tuple(
      fc.record(fields, { requiredKeys: Object.keys(fields).filter((k) => k !== "lease") }),
      fc.record(fields, { requiredKeys: [] }),
      fc.boolean(),
      extra
    )
    .map(([full, partial, whole, more]) => ({ ...(more ?? {}), ...(whole ? full : partial) }))

const commands = fc.oneof(
  shape({ _tag: tag("Get"), key }),
  shape({ _tag: tag("Del"), key }),
  shape({ _tag: tag("Put"), key, value, lease }),
  shape({ _tag: tag("Cas"), key, version, value }),
  fc.constantFrom(null, [], "Put", 1, { _tag: "List", prefix: "", limit: 10 })
)
const results = fc.oneof(
  shape({ _tag: tag("Written"), version }),
  shape({ _tag: tag("Value"), value: nullableValue, version }),
  shape({ _tag: tag("Deleted"), existed: fc.oneof(fc.boolean(), fc.constantFrom(0, "true")) }),
  shape({ _tag: tag("Swapped"), ok: fc.oneof(fc.boolean(), fc.constant(1)), version, value: nullableValue }),
  fc.constantFrom(null, [], { _tag: "Listed", entries: [], more: false, revision: 1 })
)

/** `fast` answers only as `slow` does: the same JSON text, so the same fields in the same order. */
const agrees = (fast: unknown, slow: Result.Result<unknown, unknown>, input: unknown): boolean => {
  if (fast === undefined) return false
  assert.isTrue(Result.isSuccess(slow), `the schema refuses what the fast path took: ${JSON.stringify(input)}`)
  assert.strictEqual(JSON.stringify(fast), JSON.stringify(Result.getOrThrow(slow)), JSON.stringify(input))
  return true
}

/** Over `values`, the fast decoder and encoder agree with the schema's, and answer often. */
const holdsTo = (
  values: fc.Arbitrary<unknown>,
  fast: { readonly decode: (u: unknown) => unknown; readonly encode: (u: unknown) => unknown },
  slow: {
    readonly decode: (u: unknown) => Result.Result<unknown, unknown>
    readonly encode: (u: unknown) => Result.Result<unknown, unknown>
  }
) => {
  let answered = 0
  fc.assert(
    fc.property(values, (v) => {
      if (agrees(fast.decode(v), slow.decode(v), v)) answered++
      agrees(fast.encode(v), slow.encode(v), v)
    }),
    { numRuns: 3000 }
  )
  assert.isAbove(answered, 300, "the fast path answers for valid values")
}

describe("Kv's fast codecs", () => {
  it("decode and encode commands exactly as the schema does, when they answer", () =>
    holdsTo(
      commands,
      { decode: FastCodecs.decodeCommand!, encode: (c) => FastCodecs.encodeCommand!(c as Kv.Command) },
      { decode: decodeCommand, encode: encodeCommand }
    ))

  it("decode and encode results exactly as the schema does, when they answer", () =>
    holdsTo(
      results,
      { decode: FastCodecs.decodeResult!, encode: (r) => FastCodecs.encodeResult!(r as Kv.Result) },
      { decode: decodeResult, encode: encodeResult }
    ))

  it("answer for every valid write and read, and for what Kv.apply returns", () => {
    for (const c of [
      { _tag: "Get", key: "a" },
      { _tag: "Del", key: "a" },
      { _tag: "Put", key: "a", value: "" },
      { _tag: "Put", key: "a", value: "b", lease: 3 },
      { _tag: "Cas", key: "a", version: 0, value: "b" }
    ] as const) {
      assert.deepStrictEqual(FastCodecs.decodeCommand!(c), c)
      // (a put under a lease that does not exist is refused: not a result on the fast path)
      if (c._tag === "Put" && c.lease !== undefined) continue
      const [, r] = Kv.apply(Kv.machine.initial, c)
      assert.isDefined(FastCodecs.encodeResult!(r), JSON.stringify(r))
    }
  })
})

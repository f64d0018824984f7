import { assert, describe, it } from "@effect/vitest"
import { JsonText } from "@synod/core"
import * as Frame from "@synod/node/Frame"
import { Effect, type Schema } from "effect"
import * as fc from "fast-check"

const text = new TextEncoder()
const frames = (...payloads: Array<string>): Uint8Array => {
  const parts = payloads.map((p) => Frame.encode(text.encode(p)))
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    bytes.set(p, at)
    at += p.length
  }
  return bytes
}

describe("Frame.scan", () => {
  it.effect("splits well-formed frames and reports no damage", () =>
    Effect.sync(() => {
      const bytes = frames('{"a":1}', '{"b":22}', '{"c":333}')
      const scan = Frame.scan(bytes)
      assert.strictEqual(scan.damage, undefined)
      assert.strictEqual(scan.end, bytes.length)
      assert.deepStrictEqual(
        scan.frames.map((f) => new TextDecoder().decode(f.payload)),
        ['{"a":1}', '{"b":22}', '{"c":333}']
      )
      assert.deepStrictEqual(
        scan.frames.map((f) => f.offset),
        [0, 15, 31]
      )
    })
  )

  it.effect(
    "a zero-filled tail (a log's zeroed space, or size persisted and data not) ends the log: no damage, not a run of empty frames",
    () =>
      Effect.sync(() => {
        const good = frames('{"a":1}')
        const bytes = new Uint8Array(good.length + 4096)
        bytes.set(good)
        const scan = Frame.scan(bytes)
        assert.strictEqual(scan.damage, undefined)
        assert.strictEqual(scan.end, good.length)
        assert.strictEqual(scan.frames.length, 1)
        // one byte that is not zero makes it a torn tail again
        bytes[bytes.length - 1] = 1
        assert.strictEqual(Frame.scan(bytes).damage?._tag, "TornTail")
        assert.strictEqual(Frame.scan(bytes).end, good.length)
        // a single-value file is written whole: zeros after its frame are damage
        const single = new Uint8Array(good.length + 16)
        single.set(good)
        const refused = Frame.single(single)
        assert.isTrue("reason" in refused && refused.reason.includes("zeros after the frame"))
      })
  )

  it.effect("a damaged length in the middle is corruption even when it points past the end", () =>
    Effect.sync(() => {
      const bytes = frames('{"a":1}', '{"b":22}', '{"c":333}')
      bytes[15 + 2] = 0x7f // length of the second frame becomes ~8 MiB: "runs past the end"
      const scan = Frame.scan(bytes)
      assert.strictEqual(scan.damage?._tag, "Corrupt")
      assert.strictEqual(scan.damage?.offset, 15)
      assert.include(scan.damage?.reason, "valid frame follows at offset 31")
    })
  )

  it.effect("an absurd length is corruption in the middle and a torn tail at the end", () =>
    Effect.sync(() => {
      const middle = frames('{"a":1}', '{"b":22}', '{"c":333}')
      middle[15 + 3] = 0xff
      assert.strictEqual(Frame.scan(middle).damage?._tag, "Corrupt")
      assert.include(Frame.scan(middle).damage?.reason, "exceeds the maximum")
      const last = frames('{"a":1}', '{"b":22}', '{"c":333}')
      last[31 + 3] = 0xff
      const scan = Frame.scan(last)
      assert.strictEqual(scan.damage?._tag, "TornTail")
      assert.strictEqual(scan.end, 31)
    })
  )

  it.effect("a single-value file must be exactly one valid frame", () =>
    Effect.sync(() => {
      assert.isTrue("payload" in Frame.single(frames('{"round":3}')))
      assert.isTrue("reason" in Frame.single(new Uint8Array(0)))
      assert.isTrue("reason" in Frame.single(frames('{"round":3}', '{"round":4}')))
      const torn = frames('{"round":3}').subarray(0, 12)
      assert.isTrue("reason" in Frame.single(torn), "a torn single-value file is corrupt, not empty")
    })
  )

  it("a single-value file may hold more than MaxPayloadBytes (a large store's snapshot), and must still check out", () => {
    const payload = new Uint8Array(Frame.MaxPayloadBytes + 10).fill(0x61)
    const file = Frame.encode(payload)
    const read = Frame.single(file)
    assert.isTrue("payload" in read && read.payload.length === payload.length)
    file[file.length - 1] = 0x62
    assert.isTrue("reason" in Frame.single(file), "a changed byte fails the checksum")
  })
})

describe("Frame.encodeTextGradually", () => {
  it("its parts, in order, are encode's bytes of the text's UTF-8, surrogate pairs across slice ends included", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 50 }), fc.integer({ min: 1, max: 7 }), (s, slice) => {
        const gen = Frame.encodeTextGradually(s, slice)
        let r = gen.next()
        while (!r.done) r = gen.next()
        const joined = Buffer.concat(r.value)
        assert.deepStrictEqual(new Uint8Array(joined), Frame.encode(text.encode(s)))
      }),
      { numRuns: 500 }
    )
  })

  it("a text in chunks (JsonText.stringifyChunks) frames as the text it joins to", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 1, max: 40 }), (value, slice) => {
        const chunks = JsonText.stringifyChunks(value as Schema.Json)
        let c = chunks.next()
        while (!c.done) c = chunks.next()
        const gen = Frame.encodeTextGradually(c.value, slice)
        let r = gen.next()
        while (!r.done) r = gen.next()
        assert.deepStrictEqual(new Uint8Array(Buffer.concat(r.value)), Frame.encode(text.encode(JSON.stringify(value))))
      }),
      { numRuns: 500 }
    )
  })
})

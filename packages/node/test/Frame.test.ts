import { assert, describe, it } from "@effect/vitest"
import * as Frame from "@synod/node/Frame"
import { Effect } from "effect"

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

  it.effect("a zero-filled tail (size persisted, data not) is torn, not a run of empty frames", () =>
    Effect.sync(() => {
      const good = frames('{"a":1}')
      const bytes = new Uint8Array(good.length + 4096)
      bytes.set(good)
      const scan = Frame.scan(bytes)
      assert.strictEqual(scan.damage?._tag, "TornTail")
      assert.strictEqual(scan.end, good.length)
      assert.strictEqual(scan.frames.length, 1)
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
})

import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ClusterKey } from "@synod/transport-nats"

const k1 = "k1-".padEnd(40, "a")
const k2 = "k2-".padEnd(40, "b")
const subject = "synod.ck.replica.s2"
const bytes = (s: string) => new TextEncoder().encode(s)
const text = (r: Uint8Array | ClusterKey.Refusal) =>
  r instanceof Uint8Array ? new TextDecoder().decode(r) : `${r.kind}: ${r.reason}`

describe("ClusterKey", () => {
  it.effect("a sealed message opens to its body; a forged, tampered, re-targeted or replayed one does not", () =>
    Effect.sync(() => {
      const seal = ClusterKey.sealer({ current: k1 }, "s1")
      const open = ClusterKey.opener({ current: k1 })
      const first = seal.seal(subject, '{"a":1}')
      const second = seal.seal(subject, '{"a":2}')
      assert.strictEqual(text(open.open(subject, bytes(first), true)), '{"a":1}')
      // a replay of the first, once the second came: refused
      assert.strictEqual(text(open.open(subject, bytes(second), true)), '{"a":2}')
      assert.include(text(open.open(subject, bytes(first), true)), "replayed: counter")
      assert.include(text(open.open(subject, bytes(second), true)), "replayed")
      // no MAC: refused on a protocol subject, passed through elsewhere
      assert.include(text(open.open(subject, bytes('{"a":3}'), true)), "unauthenticated: no MAC")
      assert.strictEqual(text(open.open(subject, bytes('{"a":3}'), false)), '{"a":3}')
      // another key; one byte of the body changed; another subject
      const other = ClusterKey.sealer({ current: k2 }, "s1").seal(subject, '{"a":4}')
      assert.include(text(open.open(subject, bytes(other), true)), "does not hold")
      const third = seal.seal(subject, '{"a":5}')
      assert.include(text(open.open(subject, bytes(third.replace('"a":5', '"a":6')), true)), "wrong MAC")
      assert.include(text(open.open("synod.ck.replica.s3", bytes(third), true)), "wrong MAC")
      assert.include(text(open.open(subject, bytes("~m1 garbage\n{}"), true)), "malformed")
      // a receiver without keys strips the line
      assert.strictEqual(text(ClusterKey.strip(bytes(third))), '{"a":5}')
    })
  )

  it.effect(
    "a body given as bytes (a large message, encoded once) seals to the bytes of the text it would have sealed",
    () =>
      Effect.sync(() => {
        const at = () => 1_000
        const body = `{"a":"${"é".repeat(1000)}"}`
        const asText = ClusterKey.sealer({ current: k1 }, "s1", at).seal(subject, body)
        const asBytes = ClusterKey.sealer({ current: k1 }, "s1", at).seal(subject, bytes(body))
        assert.instanceOf(asBytes, Uint8Array)
        assert.deepStrictEqual(asBytes, bytes(asText))
        assert.strictEqual(text(ClusterKey.opener({ current: k1 }).open(subject, asBytes as Uint8Array, true)), body)
      })
  )

  it.effect("rotation: the current and the previous key are accepted; the counter outlives a restart", () =>
    Effect.sync(() => {
      const open = ClusterKey.opener({ current: k2, previous: k1 })
      const old = ClusterKey.sealer({ current: k1 }, "s1")
      const fresh = ClusterKey.sealer({ current: k2, previous: k1 }, "s3")
      assert.strictEqual(text(open.open(subject, bytes(old.seal(subject, "{}")), true)), "{}")
      assert.strictEqual(text(open.open(subject, bytes(fresh.seal(subject, "[]")), true)), "[]")
      // a restarted sender starts from its clock, above what it sent before
      let now = 1_000
      const before = ClusterKey.sealer({ current: k2 }, "s4", () => now)
      for (let i = 0; i < 5; i++)
        assert.strictEqual(text(open.open(subject, bytes(before.seal(subject, "{}")), true)), "{}")
      now += 1
      const after = ClusterKey.sealer({ current: k2 }, "s4", () => now)
      assert.strictEqual(text(open.open(subject, bytes(after.seal(subject, "{}")), true)), "{}")
    })
  )
})

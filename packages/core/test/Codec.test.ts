import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as fc from "fast-check"
import { Address, Codec, Command, Message, Trusted } from "@synod/core"
import { ballotArb, commandArb, envelopeArb } from "@synod/testing/Arbitraries"

describe("Codec", () => {
  it("every envelope round-trips through text and bytes", () => {
    fc.assert(
      fc.property(envelopeArb, (env) => {
        const text = Codec.encode(env)
        const back = Codec.decode(text)
        assert.isTrue(Result.isSuccess(back))
        assert.deepStrictEqual(Result.getOrThrow(back), env)
        assert.strictEqual(Codec.encode(Result.getOrThrow(back)), text)
        const fromBytes = Codec.decode(Codec.encodeBytes(env))
        assert.deepStrictEqual(Result.getOrThrow(fromBytes), env)
        // the bytes are the text's, also for a second receiver of the same message (its
        // bytes are kept from the first)
        const utf8 = new TextEncoder()
        assert.deepStrictEqual(Codec.encodeBytes(env), utf8.encode(text))
        const other = new Message.Envelope({ from: env.to, to: env.from, message: env.message })
        assert.deepStrictEqual(Codec.encodeBytes(other), utf8.encode(Codec.encode(other)))
      }),
      { numRuns: 300 }
    )
  })

  it("the fast encoder writes exactly what the schema encoder writes", () => {
    fc.assert(
      fc.property(envelopeArb, (env) => {
        assert.strictEqual(Codec.encode(env), Codec.encodeWithSchema(env))
      }),
      { numRuns: 500 }
    )
  })

  it("a batch whose commands a replica measured (Codec.commandJson) encodes as any other", () => {
    fc.assert(
      fc.property(
        fc.array(commandArb, { maxLength: 6 }),
        fc.array(fc.boolean(), { maxLength: 8 }),
        fc.nat({ max: 3 }),
        fc.boolean(),
        ballotArb,
        (commands, measured, repeated, trusted, ballot) => {
          // a command may sit in a batch twice (its text is reused once, then dropped)
          const list = [...commands, ...commands.slice(0, repeated)]
          const batch = trusted ? Trusted.batch(list) : new Command.Batch({ commands: list })
          commands.forEach((c, i) => {
            if (measured[i] === true) assert.strictEqual(Codec.commandJson(c), JSON.stringify(c))
          })
          const p2a = Trusted.envelope(Address.leader("l"), Address.acceptor("a"), Trusted.p2a(ballot, 1, batch))
          assert.strictEqual(Codec.encode(p2a), Codec.encodeWithSchema(p2a))
          assert.strictEqual(Codec.valueJson(batch), JSON.stringify(batch))
        }
      ),
      { numRuns: 300 }
    )
  })

  it("a P1b page whose text an acceptor built from its pvalues' encodes as any other", () => {
    fc.assert(
      fc.property(
        envelopeArb.filter((env) => env.message._tag === "P1b"),
        fc.array(fc.boolean(), { maxLength: 8 }),
        (env, known) => {
          const p1b = env.message as Message.P1b
          // some values' text this process made already (a leader's own proposals)
          p1b.accepted.forEach((pv, i) => {
            if (known[i] === true) Codec.valueJson(pv.value)
          })
          const texts = p1b.accepted.map(Codec.pvalueJson)
          p1b.accepted.forEach((pv, i) => {
            assert.strictEqual(texts[i], JSON.stringify(pv))
          })
          const page = Codec.p1bWithJson(Trusted.p1b({ ...p1b }), texts)
          const sent = Trusted.envelope(env.from, env.to, page)
          assert.strictEqual(Codec.encode(sent), Codec.encodeWithSchema(sent))
          assert.deepStrictEqual(Codec.encodeBytes(sent), new TextEncoder().encode(Codec.encodeWithSchema(sent)))
        }
      ),
      { numRuns: 300 }
    )
  })

  it("garbage bytes decode to a DecodeError with a reason", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const r = Codec.decode(bytes)
        assert.isTrue(Result.isFailure(r))
        if (Result.isFailure(r)) {
          assert.strictEqual(r.failure._tag, "DecodeError")
          assert.isAbove(r.failure.reason.length, 0)
        }
      })
    )
  })

  it("valid JSON of the wrong shape decodes to a DecodeError", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (json) => {
        const r = Codec.decode(JSON.stringify(json))
        assert.isTrue(Result.isFailure(r))
      })
    )
  })

  it("names what is wrong in a near-miss envelope", () => {
    const bad = {
      from: "leader/s1",
      to: "acceptor/s2",
      message: { _tag: "P2a", ballot: { round: -1, leader: "s1" }, slot: 1, value: { _tag: "Noop" } }
    }
    const r = Codec.decode(JSON.stringify(bad))
    assert.isTrue(Result.isFailure(r))
    if (Result.isFailure(r)) assert.include(r.failure.reason, "round")
    const badAddress = { ...bad, from: "nobody", message: { _tag: "P1a", ballot: { round: 1, leader: "s1" } } }
    const r2 = Codec.decode(JSON.stringify(badAddress))
    assert.isTrue(Result.isFailure(r2))
    if (Result.isFailure(r2)) assert.include(r2.failure.reason, "from")
    const unknownTag = { ...bad, message: { _tag: "P9z" } }
    assert.isTrue(Result.isFailure(Codec.decode(JSON.stringify(unknownTag))))
  })
})

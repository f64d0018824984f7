/**
 * The trusted builders make the same instances as the constructors: same prototype, own
 * keys in the same order, same values, equal and with the same hash and encoding. A
 * builder that dropped a field, misordered one, or wrote an absent optional key fails here.
 */
import { assert, describe, it } from "@effect/vitest"
import { Codec, type Command, Message, Trusted } from "@synod/core"
import { addressArb, ballotArb, messageArb, pvalueArb } from "@synod/testing/Arbitraries"
import { Equal, Hash, Schema } from "effect"
import * as fc from "fast-check"
import { assertSameShape } from "./Shape.ts"

const value = (v: Command.SlotValue): Command.SlotValue =>
  v._tag === "Noop"
    ? v
    : v._tag === "Reconfigure"
      ? Trusted.reconfigure(v.members)
      : Trusted.batch(v.commands.map((c) => Trusted.command(c.client, c.seq, c.acked, c.op)))

/** Rebuilds `m` with the builders, all the way down to ballots and commands. */
const rebuild = (m: Message.Message): Message.Message => {
  const b = (x: { readonly round: number; readonly leader: string }) => Trusted.ballot(x.round, x.leader)
  switch (m._tag) {
    case "P1a":
      return Trusted.p1a(b(m.ballot), m.from, m.before)
    case "P1b":
      return Trusted.p1b({
        ballot: b(m.ballot),
        request: b(m.request),
        accepted: m.accepted.map((p) => Trusted.pvalue(b(p.ballot), p.slot, value(p.value))),
        ...(m.watermark === undefined ? {} : { watermark: m.watermark }),
        ...(m.from === undefined ? {} : { from: m.from }),
        ...(m.before === undefined ? {} : { before: m.before }),
        ...(m.next === undefined ? {} : { next: m.next })
      })
    case "P2a":
      return Trusted.p2a(b(m.ballot), m.slot, value(m.value))
    case "P2b":
      return Trusted.p2b(b(m.ballot), b(m.request), m.slot, m.watermark)
    case "Propose":
      return Trusted.propose(m.slot, value(m.value))
    case "Decision":
      return Trusted.decision(m.slot, value(m.value), b(m.ballot))
    case "Chosen":
      return Trusted.chosen(m.slot, b(m.ballot))
    case "Request":
      return Trusted.request(Trusted.command(m.command.client, m.command.seq, m.command.acked, m.command.op))
    case "Response":
      return Trusted.response(m.seq, m.result, m.slot, m.error, m.leader)
    case "Heartbeat":
      return Trusted.heartbeat({ ...m, ballot: b(m.ballot) })
    case "Progress":
      return Trusted.progress(m.slotOut, m.history)
    case "History":
      return Trusted.history(m.history, m.slotOut)
    case "Read":
      return Trusted.read(m.client, m.id, m.op)
    case "ReadResponse":
      return Trusted.readResponse(m.id, m.result, m.slot, m.error, m.leader)
    case "ReadIndex":
      return Trusted.readIndex(m.id)
    case "ReadIndexReply":
      return Trusted.readIndexReply(m.id, m.slot, b(m.ballot))
    case "Confirm":
      return Trusted.confirm(b(m.ballot), m.round)
    case "Confirmed":
      return Trusted.confirmed(b(m.ballot), b(m.request), m.round)
    default:
      return m // state transfer messages are built rarely and keep their constructors
  }
}

const slotArb = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })
/** P1b pages, which `messageArb` leaves out. */
const pageArb = fc
  .record(
    {
      ballot: ballotArb,
      request: ballotArb,
      accepted: fc.array(pvalueArb, { maxLength: 3 }),
      watermark: slotArb,
      from: slotArb,
      next: slotArb
    },
    { requiredKeys: ["ballot", "request", "accepted"] }
  )
  .map((m) => new Message.P1b(m))

describe("Trusted", () => {
  it("builds what the constructors build", () => {
    fc.assert(
      fc.property(addressArb, addressArb, fc.oneof(messageArb, pageArb), (from, to, message) => {
        const made = new Message.Envelope({ from, to, message })
        const built = Trusted.envelope(from, to, rebuild(message))
        assertSameShape(built, made)
        assert.isTrue(Equal.equals(built, made))
        assert.strictEqual(Hash.hash(built), Hash.hash(made))
        assert.isTrue(Schema.is(Message.Envelope)(built))
        assert.strictEqual(String(built), String(made))
        assert.strictEqual(Codec.encode(built), Codec.encode(made))
      }),
      { numRuns: 500 }
    )
  })
})

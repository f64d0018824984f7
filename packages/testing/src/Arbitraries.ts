/**
 * fast-check arbitraries for the wire vocabulary of `@synod/core`: addresses, ballots,
 * commands, slot values, pvalues, every message and envelopes. For property tests of the
 * codec and of the roles' pure cores.
 *
 * @since 0.1.0
 */
import * as Address from "@synod/core/Address"
import * as Ballot from "@synod/core/Ballot"
import { Batch, Command, Noop, PValue, Reconfigure, type SlotValue } from "@synod/core/Command"
import type * as Configuration from "@synod/core/Configuration"
import * as M from "@synod/core/Message"
import * as fc from "fast-check"

const idArb = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/)
export const addressArb: fc.Arbitrary<Address.Address> = fc
  .tuple(fc.constantFrom("replica", "leader", "acceptor", "client") as fc.Arbitrary<Address.Role>, idArb)
  .map(([role, id]) => Address.make(role, id))
export const ballotArb: fc.Arbitrary<Ballot.Ballot> = fc
  .tuple(fc.integer({ min: 0, max: 1_000_000 }), fc.stringMatching(/^[a-z0-9]{0,4}$/))
  .map(([round, leader]) => Ballot.make(round, leader))
const jsonArb: fc.Arbitrary<any> = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)))
export const commandArb: fc.Arbitrary<Command> = fc
  .record({
    client: idArb,
    seq: fc.integer({ min: 1, max: 2 ** 40 }),
    acked: fc.integer({ min: 0, max: 2 ** 40 }),
    op: jsonArb
  })
  .map((c) => new Command(c))
const idsArb = fc.uniqueArray(idArb, { minLength: 1, maxLength: 4 })
export const membersArb: fc.Arbitrary<Configuration.Members> = fc.record({
  acceptors: idsArb,
  leaders: idsArb,
  replicas: idsArb
})
export const slotValueArb: fc.Arbitrary<SlotValue> = fc.oneof(
  fc.constant(new Noop({})),
  fc.array(commandArb, { maxLength: 4 }).map((commands) => new Batch({ commands })),
  membersArb.map((members) => new Reconfigure({ members }))
)
/** A valid history: entries with increasing `from` and `decidedAt`. */
export const historyArb: fc.Arbitrary<Configuration.History> = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 100 }), membersArb), {
    minLength: 1,
    maxLength: 3
  })
  .map((steps) => {
    let from = 0
    let decidedAt = -1
    return steps.map(([df, dd, members]) => {
      from += df
      decidedAt += dd
      return { from, decidedAt, members }
    })
  })
const slotArb = fc.integer({ min: 1, max: 2 ** 40 })
export const pvalueArb: fc.Arbitrary<PValue> = fc
  .record({ ballot: ballotArb, slot: slotArb, value: slotValueArb })
  .map((p) => new PValue(p))
const transferIdArb = fc.record({ slotOut: slotArb, checksum: fc.integer({ min: 0, max: 2 ** 32 - 1 }) })
export const messageArb: fc.Arbitrary<M.Message> = fc.oneof(
  ballotArb.map((ballot) => new M.P1a({ ballot })),
  fc.tuple(ballotArb, slotArb).map(([ballot, from]) => new M.P1a({ ballot, from })),
  fc.tuple(ballotArb, slotArb, slotArb).map(([ballot, from, before]) => new M.P1a({ ballot, from, before })),
  slotArb.map((slotOut) => new M.Progress({ slotOut })),
  fc.tuple(slotArb, historyArb).map(([slotOut, history]) => new M.Progress({ slotOut, history })),
  fc.tuple(slotArb, historyArb).map(([slotOut, history]) => new M.History({ slotOut, history })),
  fc
    .record(
      {
        ballot: ballotArb,
        request: ballotArb,
        accepted: fc.array(pvalueArb, { maxLength: 3 }),
        watermark: slotArb,
        from: slotArb,
        before: slotArb,
        next: slotArb
      },
      { requiredKeys: ["ballot", "request", "accepted"] }
    )
    .map((m) => new M.P1b(m)),
  fc.record({ ballot: ballotArb, slot: slotArb, value: slotValueArb }).map((m) => new M.P2a(m)),
  fc
    .record(
      { ballot: ballotArb, request: ballotArb, slot: slotArb, watermark: slotArb },
      { requiredKeys: ["ballot", "request", "slot"] }
    )
    .map((m) => new M.P2b(m)),
  fc.record({ slot: slotArb, value: slotValueArb }).map((m) => new M.Propose(m)),
  fc.record({ slot: slotArb, value: slotValueArb, ballot: ballotArb }).map((m) => new M.Decision(m)),
  fc.record({ slot: slotArb, ballot: ballotArb }).map((m) => new M.Chosen(m)),
  commandArb.map((command) => new M.Request({ command })),
  fc
    .record(
      { seq: fc.integer({ min: 1, max: 2 ** 40 }), result: jsonArb, error: fc.string(), slot: slotArb, leader: idArb },
      { requiredKeys: ["seq", "result", "slot"] }
    )
    .map((m) => new M.Response(m)),
  fc
    .record(
      {
        ballot: ballotArb,
        active: fc.boolean(),
        decided: fc.integer({ min: 0 }),
        slot: fc.integer({ min: 0 }),
        watermark: slotArb,
        to: idArb
      },
      { requiredKeys: ["ballot", "active", "decided", "slot", "watermark"] }
    )
    .map((m) => new M.Heartbeat(m)),
  fc
    .record(
      {
        slotOut: slotArb,
        transfer: transferIdArb,
        chunks: fc.array(fc.integer({ min: 0, max: 2 ** 20 }), { maxLength: 8 })
      },
      { requiredKeys: ["slotOut", "chunks"] }
    )
    .map((m) => new M.StateRequest(m)),
  fc
    .record({
      transfer: transferIdArb,
      index: fc.integer({ min: 0, max: 2 ** 20 }),
      count: fc.integer({ min: 1, max: 2 ** 20 }),
      data: fc.string({ unit: "binary", maxLength: 64 })
    })
    .map((m) => new M.StateChunk(m)),
  fc.record({ client: fc.stringMatching(/^[A-Za-z0-9_-]{1,8}$/), id: slotArb, op: jsonArb }).map((m) => new M.Read(m)),
  fc
    .record(
      {
        id: slotArb,
        result: jsonArb,
        error: fc.string(),
        slot: fc.integer({ min: 0, max: 2 ** 40 }),
        leader: idArb
      },
      { requiredKeys: ["id", "result", "slot"] }
    )
    .map((m) => new M.ReadResponse(m)),
  slotArb.map((id) => new M.ReadIndex({ id })),
  fc.record({ id: slotArb, slot: slotArb, ballot: ballotArb }).map((m) => new M.ReadIndexReply(m)),
  fc.record({ ballot: ballotArb, round: slotArb }).map((m) => new M.Confirm(m)),
  fc.record({ ballot: ballotArb, request: ballotArb, round: slotArb }).map((m) => new M.Confirmed(m)),
  fc
    .record({
      slot: slotArb,
      digest: fc.stringMatching(/^[0-9a-f]{64}$/),
      heard: fc.boolean()
    })
    .map((m) => new M.Digest(m))
)
export const envelopeArb: fc.Arbitrary<M.Envelope> = fc
  .record({ from: addressArb, to: addressArb, message: messageArb })
  .map((e) => new M.Envelope(e))

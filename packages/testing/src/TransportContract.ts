/**
 * Test kit for other packages: the Transport conformance suite, which every transport
 * must pass, and fast-check arbitraries for the wire vocabulary.
 *
 * Import from `@synod/core/testing` in test files only: it depends on `@effect/vitest`.
 *
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, type Layer, Option, Queue, Scope } from "effect"
import * as fc from "fast-check"
import * as Address from "./Address.ts"
import * as Ballot from "./Ballot.ts"
import { Batch, Command, Noop, PValue, type SlotValue } from "./Command.ts"
import * as M from "./Message.ts"
import { Transport } from "./Transport.ts"

// ---------------------------------------------------------------- arbitraries

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
export const slotValueArb: fc.Arbitrary<SlotValue> = fc.oneof(
  fc.constant(new Noop({})),
  fc.array(commandArb, { maxLength: 4 }).map((commands) => new Batch({ commands }))
)
const slotArb = fc.integer({ min: 1, max: 2 ** 40 })
export const pvalueArb: fc.Arbitrary<PValue> = fc
  .record({ ballot: ballotArb, slot: slotArb, value: slotValueArb })
  .map((p) => new PValue(p))
const transferIdArb = fc.record({ slotOut: slotArb, checksum: fc.integer({ min: 0, max: 2 ** 32 - 1 }) })
export const messageArb: fc.Arbitrary<M.Message> = fc.oneof(
  ballotArb.map((ballot) => new M.P1a({ ballot })),
  fc.tuple(ballotArb, slotArb).map(([ballot, from]) => new M.P1a({ ballot, from })),
  slotArb.map((slotOut) => new M.Progress({ slotOut })),
  fc
    .record(
      { ballot: ballotArb, request: ballotArb, accepted: fc.array(pvalueArb, { maxLength: 3 }), watermark: slotArb },
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
  commandArb.map((command) => new M.Request({ command })),
  fc
    .record(
      { seq: fc.integer({ min: 1, max: 2 ** 40 }), result: jsonArb, error: fc.string(), slot: slotArb },
      { requiredKeys: ["seq", "result", "slot"] }
    )
    .map((m) => new M.Response(m)),
  fc
    .record({
      ballot: ballotArb,
      active: fc.boolean(),
      decided: fc.integer({ min: 0 }),
      slot: fc.integer({ min: 0 }),
      watermark: slotArb
    })
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
    .map((m) => new M.StateChunk(m))
)
export const envelopeArb: fc.Arbitrary<M.Envelope> = fc
  .record({ from: addressArb, to: addressArb, message: messageArb })
  .map((e) => new M.Envelope(e))

// ---------------------------------------------------------------- conformance suite

const ping = (from: Address.Address, to: Address.Address, seq: number, op: unknown = null) =>
  new M.Envelope({
    from,
    to,
    message: new M.Request({ command: new Command({ client: "contract", seq, acked: 0, op: op as never }) })
  })

const seqOf = (e: M.Envelope) => (e.message._tag === "Request" ? e.message.command.seq : -1)

const takeWithin = (mailbox: Queue.Dequeue<M.Envelope>, ms = 5000) =>
  Queue.take(mailbox).pipe(Effect.timeoutOption(ms), Effect.map(Option.getOrUndefined))

/**
 * The Transport contract. `layer` provides a fresh transport (it may start servers);
 * tests run against real time. Addresses are prefixed with `prefix` so suites can share
 * a server.
 */
export const transportContract = <E>(name: string, layer: Layer.Layer<Transport, E>, prefix = "tc") => {
  const a = (n: string) => Address.replica(`${prefix}-${n}`)
  describe(`Transport contract: ${name}`, () => {
    it.live("delivers to the addressed listener only", () =>
      Effect.gen(function* () {
        const t = yield* Transport
        const ma = yield* t.listen(a("a1"))
        const mb = yield* t.listen(a("b1"))
        yield* t.send(a("a1"), ping(a("x"), a("a1"), 1))
        const got = yield* takeWithin(ma)
        assert.strictEqual(got === undefined ? -1 : seqOf(got), 1)
        assert.strictEqual(got?.from, a("x"))
        // a barrier message to b proves b is live and received nothing else
        yield* t.send(a("b1"), ping(a("x"), a("b1"), 2))
        const gotB = yield* takeWithin(mb)
        assert.strictEqual(gotB === undefined ? -1 : seqOf(gotB), 2)
        assert.strictEqual(Queue.sizeUnsafe(ma), 0)
      }).pipe(Effect.provide(layer))
    )

    it.live("delivers nothing after the listener's scope closes", () =>
      Effect.gen(function* () {
        const t = yield* Transport
        const scope = yield* Scope.make()
        yield* t.listen(a("c1")).pipe(Scope.provide(scope))
        yield* Scope.close(scope, Exit.void)
        yield* t.send(a("c1"), ping(a("x"), a("c1"), 1))
        const barrier = yield* t.listen(a("c2"))
        yield* t.send(a("c2"), ping(a("x"), a("c2"), 2))
        assert.isDefined(yield* takeWithin(barrier))
        const again = yield* t.listen(a("c1"))
        yield* t.send(a("c1"), ping(a("x"), a("c1"), 3))
        const first = yield* takeWithin(again)
        assert.strictEqual(first === undefined ? -1 : seqOf(first), 3)
      }).pipe(Effect.provide(layer))
    )

    it.live("serves many listeners at once, including several on one address", () =>
      Effect.gen(function* () {
        const t = yield* Transport
        const n = 20
        const boxes = yield* Effect.forEach(
          Array.from({ length: n }, (_, i) => i),
          (i) => t.listen(a(`m${i}`))
        )
        const twin = yield* t.listen(a("m0"))
        for (let round = 1; round <= 5; round++) {
          for (let i = 0; i < n; i++) yield* t.send(a(`m${i}`), ping(a("x"), a(`m${i}`), round * 100 + i))
        }
        for (let i = 0; i < n; i++) {
          const seen: Array<number> = []
          for (let k = 0; k < 5; k++) {
            const e = yield* takeWithin(boxes[i]!)
            seen.push(e === undefined ? -1 : seqOf(e))
          }
          assert.deepStrictEqual(
            seen.sort((x, y) => x - y),
            [100 + i, 200 + i, 300 + i, 400 + i, 500 + i]
          )
        }
        const twinSeen: Array<number> = []
        for (let k = 0; k < 5; k++) {
          const e = yield* takeWithin(twin)
          twinSeen.push(e === undefined ? -1 : seqOf(e))
        }
        assert.deepStrictEqual(
          twinSeen.sort((x, y) => x - y),
          [100, 200, 300, 400, 500]
        )
      }).pipe(Effect.provide(layer))
    )

    it.live("carries large messages intact", () =>
      Effect.gen(function* () {
        const t = yield* Transport
        const mailbox = yield* t.listen(a("big"))
        const payload = "x".repeat(256 * 1024) + "é✓"
        yield* t.send(a("big"), ping(a("x"), a("big"), 7, { payload }))
        const got = yield* takeWithin(mailbox)
        assert.isDefined(got)
        const op = got!.message._tag === "Request" ? got!.message.command.op : undefined
        assert.deepStrictEqual(op, { payload })
      }).pipe(Effect.provide(layer))
    )

    it.live("sending to an address nobody listens on neither fails nor blocks", () =>
      Effect.gen(function* () {
        const t = yield* Transport
        for (let i = 0; i < 100; i++) yield* t.send(a("nobody"), ping(a("x"), a("nobody"), i + 1))
        const mailbox = yield* t.listen(a("after"))
        yield* t.send(a("after"), ping(a("x"), a("after"), 1))
        assert.isDefined(yield* takeWithin(mailbox))
      }).pipe(Effect.provide(layer))
    )
  })
}

/**
 * The Transport conformance suite, which every transport must pass: delivery to the
 * addressed listener only, nothing after a listener's scope closes, many listeners at
 * once, large messages intact, sends to nobody neither failing nor blocking.
 *
 * Call it from a test file: it defines vitest suites (`@effect/vitest`).
 *
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import * as Address from "@synod/core/Address"
import { Command } from "@synod/core/Command"
import * as M from "@synod/core/Message"
import { Transport } from "@synod/core/Transport"
import { Effect, Exit, type Layer, Option, Queue, Scope } from "effect"

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

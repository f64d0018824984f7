/**
 * Where a client resends a command: to the replica it went to while that replica answers
 * (it holds the command; a copy at every replica would be proposed by each), to every
 * replica once the one it went to answered nothing since (it may be gone).
 * The replicas here are the test's own mailboxes on the in-memory bus, answering by hand.
 */
import { assert, describe, it } from "@effect/vitest"
import { Address, ClusterConfig, InMemoryBus, type Message, Transport, Trusted } from "@synod/core"
import { Kv } from "@synod/kv"
import { Effect, Fiber, Queue } from "effect"
import { TestClock } from "effect/testing"
import { Client } from "@synod/actors"

const config = ClusterConfig.make({
  acceptors: ["s1", "s2", "s3"],
  leaders: ["s1", "s2", "s3"],
  replicas: ["s1", "s2", "s3"],
  timeouts: { retransmitMs: 100, clientTimeoutMs: 10_000 }
})

/**
 * The replicas' mailboxes, and what reads them: the requests each got since the last
 * read, sorted (`s1:1` is seq 1 at s1).
 */
const replicas = Effect.gen(function* () {
  const transport = yield* Transport.Transport
  const boxes = new Map<string, Queue.Dequeue<Message.Envelope>>()
  for (const r of config.replicas) boxes.set(r, yield* transport.listen(Address.replica(r)))
  return Effect.gen(function* () {
    const seen: Array<string> = []
    for (const [r, box] of boxes) {
      for (const env of yield* Queue.clear(box)) {
        if (env.message._tag === "Request") seen.push(`${r}:${env.message.command.seq}`)
      }
    }
    return seen.sort()
  })
})

describe("a client's resends", () => {
  it.effect("go to the replica that is answering, and to every replica once it is silent", () =>
    Effect.gen(function* () {
      const transport = yield* Transport.Transport
      const got = yield* replicas
      const answer = (replica: string, client: string, seq: number) =>
        transport.send(
          Address.client(client),
          Trusted.envelope(
            Address.replica(replica),
            Address.client(client),
            Trusted.response(seq, { _tag: "Written", version: seq }, seq, undefined, replica)
          )
        )
      const client = yield* Client.make(Kv.machine, config)
      const first = yield* Effect.forkChild(client.submit({ _tag: "Put", key: "a", value: "1" }))
      yield* TestClock.adjust(20)
      assert.deepStrictEqual(yield* got, ["s1:1"], "a first send goes to one replica")
      // s1 answers another command sent after the first: it is working
      const second = yield* Effect.forkChild(client.submit({ _tag: "Put", key: "b", value: "2" }))
      yield* TestClock.adjust(20)
      assert.deepStrictEqual(yield* got, ["s1:2"])
      yield* answer("s1", client.id, 2)
      yield* Fiber.join(second)
      // the first command's resend (due 100 ms after it was sent) goes to s1 alone
      yield* TestClock.adjust(120)
      assert.deepStrictEqual(yield* got, ["s1:1"], "resent to the replica that answered since")
      // s1 answers nothing more: the next resend (200 ms later) goes to every replica
      yield* TestClock.adjust(250)
      assert.deepStrictEqual(yield* got, ["s1:1", "s2:1", "s3:1"], "resent to every replica")
      yield* answer("s2", client.id, 1)
      yield* Fiber.join(first)
    }).pipe(Effect.scoped, Effect.provide(InMemoryBus.layer()))
  )

  it.effect("go to every replica at once when the replica it went to answered nothing since", () =>
    Effect.gen(function* () {
      const got = yield* replicas
      const client = yield* Client.make(Kv.machine, config)
      const fiber = yield* Effect.forkChild(client.submit({ _tag: "Put", key: "a", value: "1" }))
      yield* TestClock.adjust(140)
      // (a fail-over: the command's replica is gone; its first resend reaches the others)
      assert.deepStrictEqual(yield* got, ["s1:1", "s1:1", "s2:1", "s3:1"])
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.scoped, Effect.provide(InMemoryBus.layer()))
  )
})

/**
 * The main job. Until the roles exist (packages/actors), this is a short demo of the core
 * pieces: three nodes on the in-memory bus, under 20% message loss and random delays,
 * pass a token around; the bus's counters show what the faults did.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Address, Command, InMemoryBus, Message, Transport } from "@synod/core"
import { Console, Effect, Queue } from "effect"

const nodes = ["s1", "s2", "s3"].map(Address.replica)

const token = (from: Address.Address, to: Address.Address, seq: number) =>
  new Message.Envelope({
    from,
    to,
    message: new Message.Request({ command: new Command.Command({ client: "demo", seq, acked: 0, op: { hop: seq } }) })
  })

const program = Effect.gen(function* () {
  const transport = yield* Transport.Transport
  const bus = yield* InMemoryBus.InMemoryBus
  const mailboxes = yield* Effect.forEach(nodes, (n) => transport.listen(n))
  yield* Console.log("synod demo: 3 nodes on the in-memory bus, 20% loss, 0-5 ms delay")
  let hops = 0
  for (let seq = 1; seq <= 300; seq++) {
    const from = nodes[seq % 3]!
    const to = nodes[(seq + 1) % 3]!
    // fair-loss link: resend until the message arrives, as every synod sender does
    for (;;) {
      yield* transport.send(to, token(from, to, seq))
      const got = yield* Queue.take(mailboxes[(seq + 1) % 3]!).pipe(Effect.timeoutOption("20 millis"))
      if (got._tag === "Some") break
    }
    hops++
  }
  const stats = yield* bus.stats
  yield* Console.log(
    `token passed ${hops} times: ${stats.sent} sends, ${stats.delivered} delivered, ${stats.dropped} dropped`
  )
})

program.pipe(
  Effect.scoped,
  Effect.provide(InMemoryBus.layer({ faults: { lossRate: 0.2, minDelay: 0, maxDelay: 5 } })),
  NodeRuntime.runMain
)

/**
 * Test kit shared by the NATS suites: envelopes to send, building a transport into its
 * own context (so one test can hold several), raw client connections, and delivery with
 * retries for the cases where NATS may lose messages (reconnects, cluster interest
 * propagation).
 */
import { connect, type NatsConnection as Client } from "@nats-io/transport-node"
import { type Address, Command, Message, Transport } from "@synod/core"
import { Clock, Context, Effect, Layer, Option, Queue } from "effect"
import { NatsConnection, NatsStats, NatsTransport } from "@synod/transport-nats"

/**
 * A protocol message (a `Propose` for slot `seq`) from `from` to `to`: protocol subjects
 * carry it to any role (a client's `Request` would be refused there: `Subjects.refusal`).
 */
export const ping = (from: Address.Address, to: Address.Address, seq: number, op: unknown = null) =>
  new Message.Envelope({
    from,
    to,
    message: new Message.Propose({
      slot: seq,
      value: new Command.Batch({
        commands: [new Command.Command({ client: "kit", seq, acked: 0, op: op as never })]
      })
    })
  })

/** A client's `Request` (seq `seq`) from client `client` to `to`. */
export const request = (client: string, to: Address.Address, seq: number) =>
  new Message.Envelope({
    from: `client/${client}`,
    to,
    message: new Message.Request({ command: new Command.Command({ client, seq, acked: 0, op: null }) })
  })

/** A replica's `Response` (seq `seq`) to `to`. */
export const response = (to: Address.Address, seq: number) =>
  new Message.Envelope({ from: "replica/r0", to, message: new Message.Response({ seq, result: null, slot: 1 }) })

export const seqOf = (e: Message.Envelope | undefined): number => {
  if (e === undefined) return -1
  const m = e.message
  return m._tag === "Propose" ? m.slot : m._tag === "Request" ? m.command.seq : m._tag === "Response" ? m.seq : -1
}

export const takeWithin = (mailbox: Transport.Mailbox, ms = 5000) =>
  Queue.take(mailbox).pipe(Effect.timeoutOption(ms), Effect.map(Option.getOrUndefined))

/** A transport built into the current scope: its service, its counters and its connection. */
export const build = Effect.fnUntraced(function* (options: NatsTransport.Options) {
  const ctx = yield* Layer.build(NatsTransport.layer(options))
  return {
    transport: Context.get(ctx, Transport.Transport),
    stats: Context.get(ctx, NatsStats.NatsStats),
    connection: Context.get(ctx, NatsConnection.NatsConnection)
  }
})

/** A plain client connection (no synod code in the way), closed with the scope. */
export const rawClient = (servers: string, extra: { readonly user?: string; readonly pass?: string } = {}) =>
  Effect.acquireRelease(
    Effect.promise(() => connect({ servers, ...extra })),
    (c: Client) => Effect.promise(() => c.close())
  )

/**
 * Sends `seq` from `from` to `to` again and again until `mailbox` receives it (other
 * seqs, late copies of earlier attempts, are skipped). Fails after `within` ms.
 */
export const deliver = Effect.fnUntraced(function* (
  transport: Transport.Transport["Service"],
  from: Address.Address,
  to: Address.Address,
  mailbox: Transport.Mailbox,
  seq: number,
  within = 10_000
) {
  const deadline = (yield* Clock.currentTimeMillis) + within
  let attempts = 0
  while ((yield* Clock.currentTimeMillis) < deadline) {
    attempts++
    yield* transport.send(to, ping(from, to, seq))
    const until = (yield* Clock.currentTimeMillis) + 200
    while ((yield* Clock.currentTimeMillis) < until) {
      const got = yield* takeWithin(mailbox, 200)
      if (seqOf(got) === seq) return attempts
    }
  }
  return yield* Effect.fail(new Error(`seq ${seq} from ${from} never reached ${to} (${attempts} attempts)`))
})

/** Polls `check` every 20 ms until it holds; fails after `within` ms. */
export const eventually = Effect.fnUntraced(function* (what: string, check: Effect.Effect<boolean>, within = 10_000) {
  const deadline = (yield* Clock.currentTimeMillis) + within
  while ((yield* Clock.currentTimeMillis) < deadline) {
    if (yield* check) return
    yield* Effect.sleep("20 millis")
  }
  return yield* Effect.fail(new Error(`timed out waiting for: ${what}`))
})

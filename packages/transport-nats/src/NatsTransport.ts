/**
 * The core `Transport` over NATS: swap `InMemoryBus.layer()` for `NatsTransport.layer(…)`
 * and a cluster talks through a NATS server instead of in-process queues.
 *
 * - `send` publishes the encoded envelope on the subject of its address
 *   (`Subjects.subject`), fire-and-forget. A publish the client refuses (too large, closed
 *   connection) or one attempted while NATS is unreachable is counted and dropped, never
 *   failed: Paxos retransmits, so a lost message is only a delay. Nothing is flushed per
 *   message; the client batches writes.
 * - `listen` makes one callback subscription per call. The callback runs in the socket's
 *   read path, so it only puts the raw message into a bounded inbox; a fiber per listener
 *   checks the size, decodes and validates (`Codec.decode`), and offers envelopes to the
 *   mailbox. Oversized and undecodable messages are counted, logged with their subject and
 *   the reason, and dropped; the listener keeps going. The subscription ends with the
 *   listener's scope.
 * - `listen` returns once the server has seen the subscription (one round trip), so a
 *   message sent after it returns is delivered; a subscription the server refuses (no
 *   permission) fails `listen` with a `TransportError`. When NATS is unreachable `listen`
 *   waits at most `subscribeTimeout` and the client subscribes on reconnect.
 *
 * @since 0.1.0
 */
import { headers, type Msg } from "@nats-io/transport-node"
import { type Address, Codec, Limits, type Message, Transport } from "@synod/core"
import { Cause, type Duration, Effect, Layer, Option, Queue, Result } from "effect"
import * as NatsConnection from "./NatsConnection.ts"
import { NatsStats } from "./NatsStats.ts"
import * as Subjects from "./Subjects.ts"
import * as Trace from "./Trace.ts"

export interface TransportOptions {
  /** The cluster's name: the second subject token, so several clusters can share one NATS. */
  readonly cluster: string
  /**
   * The largest message sent or received (default and upper bound: the server's
   * `max_payload`, from its INFO). Larger received messages are dropped undecoded; roles
   * size what they send to fit it (`Transport.maxMessageBytes`).
   */
  readonly maxMessageBytes?: number
  /** Per-listener capacity of the raw inbox and of the mailbox (default 4096); overflow is dropped and counted. */
  readonly inboxCapacity?: number
  /** How long `listen` waits for the server to confirm the subscription (default 5 seconds). */
  readonly subscribeTimeout?: Duration.Input
  /** Put a `synod-trace` header on every publish (default false: nothing reads it yet, and a header costs an allocation per message). */
  readonly traceHeader?: boolean
}

export interface Options extends NatsConnection.Options, TransportOptions {}

const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e))

const invalidCluster = (cluster: string) =>
  new Transport.TransportError({
    reason: `invalid cluster name ${JSON.stringify(cluster)}: use 1-64 letters, digits, '_' or '-'`
  })

/** The transport on the connection in context. */
export const make = Effect.fnUntraced(function* (options: TransportOptions) {
  if (!Subjects.isClusterName(options.cluster)) return yield* invalidCluster(options.cluster)
  const cluster = options.cluster
  const capacity = options.inboxCapacity ?? 4096
  const subscribeTimeout = options.subscribeTimeout ?? "5 seconds"
  const withTrace = options.traceHeader ?? false
  const { client, isConnectedUnsafe } = yield* NatsConnection.NatsConnection
  const serverMax = client.info?.max_payload ?? Limits.defaultMaxMessageBytes
  const maxBytes = Math.min(options.maxMessageBytes ?? serverMax, serverMax)
  if (maxBytes < Limits.minMaxMessageBytes) {
    return yield* new Transport.TransportError({
      reason: `the NATS max_payload of ${maxBytes} bytes is below synod's minimum of ${Limits.minMaxMessageBytes}`
    })
  }
  const stats = yield* NatsStats
  let sendSeq = 0

  const dropSend = (reason: string, to: Address.Address) =>
    Effect.andThen(
      stats.count("publishErrors"),
      // while NATS is down every send fails the same way: keep that at debug level
      reason === "NATS unreachable"
        ? Effect.logDebug("dropping a send", { reason, to })
        : Effect.logWarning("dropping a send", { reason, to })
    )

  const send = (to: Address.Address, envelope: Message.Envelope): Effect.Effect<void> =>
    Effect.withFiber((fiber) => {
      const subject = Subjects.subject(cluster, to)
      if (Option.isNone(subject)) return dropSend("not an address", to)
      if (!isConnectedUnsafe()) return dropSend("NATS unreachable", to)
      const data = Codec.encodeBytes(envelope)
      try {
        if (withTrace) {
          const h = headers()
          h.set(Trace.header, Trace.outgoing(fiber, envelope, ++sendSeq))
          client.publish(subject.value, data, { headers: h })
        } else {
          client.publish(subject.value, data)
        }
      } catch (cause) {
        return dropSend(`publish refused: ${errorMessage(cause)}`, to)
      }
      stats.countUnsafe("published")
      return Effect.void
    })

  /** Size check, decode, hand over; everything off the socket's read path. */
  const pump = (
    subject: string,
    inbox: Queue.Dequeue<Msg | Error>,
    mailbox: Queue.Queue<Message.Envelope>,
    overflow: { count: number }
  ) =>
    Effect.gen(function* () {
      while (true) {
        const batch = yield* Queue.takeAll(inbox)
        const out: Array<Message.Envelope> = []
        for (const item of batch) {
          if (item instanceof Error) {
            yield* stats.count("subscriptionErrors")
            yield* Effect.logError("NATS ended a subscription", { subject, error: item.message })
            continue
          }
          stats.countUnsafe("received")
          const size = item.data.length
          if (size > maxBytes) {
            yield* stats.count("oversized")
            yield* Effect.logWarning("dropping an oversized message", {
              subject: item.subject,
              reason: `${size} bytes exceeds the limit of ${maxBytes}`
            })
            continue
          }
          const decoded = Codec.decode(item.data)
          if (Result.isFailure(decoded)) {
            yield* stats.count("decodeErrors")
            yield* Effect.logWarning("dropping an undecodable message", {
              subject: item.subject,
              reason: decoded.failure.reason
            })
            continue
          }
          const trace = item.headers?.get(Trace.header)
          if (trace !== undefined) Trace.remember(decoded.success, trace)
          out.push(decoded.success)
        }
        if (overflow.count > 0) {
          const n = overflow.count
          overflow.count = 0
          yield* stats.count("inboxOverflow", n)
          yield* Effect.logWarning("listener inbox full; dropped messages", { subject, dropped: n })
        }
        if (out.length > 0) {
          yield* Queue.offerAll(mailbox, out)
          stats.countUnsafe("delivered", out.length)
        }
      }
    })

  const listen = (address: Address.Address) =>
    Effect.gen(function* () {
      const found = Subjects.subject(cluster, address)
      if (Option.isNone(found)) {
        return yield* new Transport.TransportError({
          reason: `cannot listen on ${JSON.stringify(address)}: not an address`
        })
      }
      const subject = found.value
      const inbox = yield* Queue.dropping<Msg | Error>(capacity)
      const mailbox = yield* Queue.bounded<Message.Envelope>(capacity)
      yield* Effect.addFinalizer(() => Effect.andThen(Queue.shutdown(inbox), Queue.shutdown(mailbox)))
      const overflow = { count: 0 }
      let refused: Error | undefined
      yield* Effect.acquireRelease(
        Effect.try({
          try: () =>
            client.subscribe(subject, {
              // the socket's read path: no decoding, no allocation beyond the queue's
              callback: (err, msg) => {
                if (err !== null) {
                  refused = err
                  Queue.offerUnsafe(inbox, err)
                } else if (!Queue.offerUnsafe(inbox, msg)) {
                  overflow.count++
                }
              }
            }),
          catch: (cause) =>
            new Transport.TransportError({ reason: `cannot subscribe to ${subject}: ${errorMessage(cause)}`, cause })
        }),
        (sub) => Effect.sync(() => sub.unsubscribe())
      )
      // one round trip: the server has the subscription, or has refused it, once the PONG is back
      yield* Effect.tryPromise(() => client.flush()).pipe(Effect.timeoutOption(subscribeTimeout), Effect.ignore)
      if (refused !== undefined) {
        yield* stats.count("subscriptionErrors")
        return yield* new Transport.TransportError({
          reason: `NATS refused the subscription to ${subject}: ${refused.message}`,
          cause: refused
        })
      }
      yield* pump(subject, inbox, mailbox, overflow).pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.logError("listener stopped", { subject }, cause)
        ),
        Effect.forkScoped
      )
      return mailbox as Transport.Mailbox
    })

  return Transport.Transport.of({ send, listen, maxMessageBytes: maxBytes })
})

/** The transport, on a `NatsConnection` (and its `NatsStats`) provided from outside. */
export const layerNoDeps = (
  options: TransportOptions
): Layer.Layer<Transport.Transport, Transport.TransportError, NatsConnection.NatsConnection | NatsStats> =>
  Layer.effect(Transport.Transport, make(options))

/**
 * The transport with its own connection: the one layer a node needs. The connection and
 * its counters stay visible (`NatsConnection`, `NatsStats`) for health checks and tests.
 */
export const layer = (
  options: Options
): Layer.Layer<Transport.Transport | NatsConnection.NatsConnection | NatsStats, Transport.TransportError> =>
  // a bad cluster name is a configuration error: report it before connecting anywhere
  Subjects.isClusterName(options.cluster)
    ? layerNoDeps(options).pipe(Layer.provideMerge(NatsConnection.layer(options)))
    : Layer.effectContext(Effect.fail(invalidCluster(options.cluster)))

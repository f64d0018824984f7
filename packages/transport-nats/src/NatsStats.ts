/**
 * Counters of one NATS connection and the transport on top of it: what was sent and
 * received, and every way a message or the connection went wrong. Two views of the same
 * numbers:
 *
 * - `NatsStats`, a service per connection whose `snapshot` tests and health checks read
 *   (the global metric registry is shared by everything in a process, so a test could
 *   not tell its own connection's counts apart);
 * - effect `Metric` counters named `synod_nats_*_total`, tagged with the connection name,
 *   for export. Per-message counts (published, received, delivered) stay out of the
 *   metric registry: a metric update per message costs more than the message.
 *
 * @since 0.1.0
 */
import { Context, Effect, Metric } from "effect"

export interface Snapshot {
  /** Envelopes handed to the client for publishing. */
  readonly published: number
  /** Sends dropped: the client refused the publish (too large, closed, draining) or the connection was down. */
  readonly publishErrors: number
  /** Raw messages taken off this connection's listener subscriptions. */
  readonly received: number
  /** Decoded envelopes handed to mailboxes. */
  readonly delivered: number
  /** Envelopes sent to a listener in this same process: handed over in memory, never published. */
  readonly local: number
  /** Messages dropped because they were not a valid envelope. */
  readonly decodeErrors: number
  /**
   * Messages dropped because their subject may not carry them: a protocol message on a
   * client subject, a request on a protocol subject, a request outside its client's scope.
   */
  readonly refused: number
  /** Messages dropped for a missing or wrong MAC (`ClusterKey`). */
  readonly unauthenticated: number
  /** Authenticated messages dropped as replays: a counter not above the sender's last. */
  readonly replayed: number
  /** Messages dropped, undecoded, because they exceeded the size limit. */
  readonly oversized: number
  /** Messages dropped because a listener's inbox was full (its consumer is too slow). */
  readonly inboxOverflow: number
  /** Subscriptions the server ended with an error (usually a permission violation). */
  readonly subscriptionErrors: number
  /** Permission violations the server reported, for publishes and subscriptions. */
  readonly permissionErrors: number
  /** Every asynchronous error the server reported (permission violations included). */
  readonly errors: number
  readonly disconnects: number
  readonly reconnects: number
  readonly slowConsumers: number
  readonly staleConnections: number
  /** Lame-duck notices: the server is shutting down and asked clients to move. */
  readonly lameDuck: number
}

export type Counter = keyof Snapshot

const zero: Snapshot = {
  published: 0,
  publishErrors: 0,
  received: 0,
  delivered: 0,
  local: 0,
  decodeErrors: 0,
  refused: 0,
  unauthenticated: 0,
  replayed: 0,
  oversized: 0,
  inboxOverflow: 0,
  subscriptionErrors: 0,
  permissionErrors: 0,
  errors: 0,
  disconnects: 0,
  reconnects: 0,
  slowConsumers: 0,
  staleConnections: 0,
  lameDuck: 0
}

const counter = (name: string, description: string) =>
  Metric.counter(`synod_nats_${name}_total`, { description, incremental: true })

/** The exported metrics, one per rare event; each update carries a `connection` attribute. */
export const metrics = {
  publishErrors: counter("publish_errors", "sends dropped because the publish failed or NATS was unreachable"),
  decodeErrors: counter("decode_errors", "received messages that were not valid envelopes"),
  refused: counter("refused", "received messages their subject may not carry (wrong channel or client scope)"),
  unauthenticated: counter("unauthenticated", "received messages dropped for a missing or wrong MAC"),
  replayed: counter("replayed", "authenticated messages dropped as replays"),
  oversized: counter("oversized", "received messages over the size limit"),
  inboxOverflow: counter("inbox_overflow", "received messages dropped because a listener's inbox was full"),
  subscriptionErrors: counter("subscription_errors", "subscriptions ended by the server"),
  permissionErrors: counter("permission_errors", "permission violations reported by the server"),
  errors: counter("errors", "asynchronous errors reported by the server"),
  disconnects: counter("disconnects", "connection losses"),
  reconnects: counter("reconnects", "successful reconnects"),
  slowConsumers: counter("slow_consumers", "slow consumer notices"),
  staleConnections: counter("stale_connections", "connections declared stale after missed pings"),
  lameDuck: counter("lame_duck", "lame duck notices from the server")
} satisfies Partial<Record<Counter, Metric.Counter<number>>>

/** Counters that also have a metric (the rare events). */
export type Event = keyof typeof metrics

export class NatsStats extends Context.Service<
  NatsStats,
  {
    readonly snapshot: Effect.Effect<Snapshot>
    /** Counts `n` (default 1) rare events, in the snapshot and in their metric. */
    count(event: Event, n?: number): Effect.Effect<void>
    /** Counts a per-message event in the snapshot only (no Effect, for hot paths). */
    countUnsafe(counter: Counter, n?: number): void
  }
>()("@synod/transport-nats/NatsStats") {}

/** Fresh counters for the connection called `connection` (the metric attribute). */
export const make = (connection: string): Effect.Effect<NatsStats["Service"]> =>
  Effect.sync(() => {
    const counts: Record<Counter, number> = { ...zero }
    const tagged = {} as Record<Event, Metric.Counter<number>>
    for (const key of Object.keys(metrics) as Array<Event>) {
      tagged[key] = Metric.withAttributes(metrics[key], { connection })
    }
    return NatsStats.of({
      snapshot: Effect.sync(() => ({ ...counts })),
      count: (event, n = 1) =>
        Effect.suspend(() => {
          counts[event] += n
          return Metric.update(tagged[event], n)
        }),
      countUnsafe: (counter, n = 1) => {
        counts[counter] += n
      }
    })
  })

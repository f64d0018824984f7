/**
 * The `Transport` service: how roles reach each other. Both transports (the in-memory bus
 * here, NATS in `@synod/transport-nats`) offer the same contract and pass the same
 * conformance suite (`@synod/testing/TransportContract`):
 *
 * - `send` is fire-and-forget: a message may be lost, duplicated, delayed or reordered.
 *   The protocol tolerates all four, so the transport adds no acknowledgement.
 * - `listen(address)` is scoped: closing the scope stops delivery to that mailbox.
 *   Several listeners on one address each get every message.
 * - `maxMessageBytes` is the largest encoded message it carries; it drops larger ones
 *   (counted), so roles size what they send to fit (`Limits`).
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Queue, Schema, type Scope } from "effect"
import type { Address } from "./Address.ts"
import type { Envelope } from "./Message.ts"

export class TransportError extends Schema.TaggedError<TransportError>()("TransportError", {
  reason: Schema.String,
  cause: Schema.optionalKey(Schema.Defect())
}) {}

/** A mailbox: decoded envelopes addressed to one listener, in arrival order. */
export type Mailbox = Queue.Dequeue<Envelope>

export class Transport extends Context.Service<
  Transport,
  {
    /** Sends `envelope` to `to`; never fails and never waits for the receiver. */
    send(to: Address, envelope: Envelope): Effect.Effect<void>
    /**
     * As `send`, from code that is not running in a fiber (`Client`'s `submitPromise`):
     * the envelope is handed over at once, and what `send` would do after that (count and
     * log a send it had to drop) comes back as an effect to run, or `undefined` when there
     * is nothing to do. Absent: such callers run `send` in a fiber of their own.
     */
    readonly sendUnsafe?: (to: Address, envelope: Envelope) => Effect.Effect<void> | undefined
    /** Receives what is sent to `address` until the scope closes. */
    listen(address: Address): Effect.Effect<Mailbox, TransportError, Scope.Scope>
    /** The largest encoded message (UTF-8 bytes) it delivers; larger ones are dropped. */
    readonly maxMessageBytes: number
    /**
     * Hands what `send` has queued in this process to the network now, instead of at the
     * end of the current task. A role calls it before it blocks the event loop (an
     * acceptor's fsync done in place), so that messages ready to leave do not wait for the
     * disk, and after sending what such a write released. Absent: sends leave on their own.
     */
    readonly flush?: () => void
  }
>()("@synod/core/Transport") {}

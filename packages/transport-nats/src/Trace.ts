/**
 * A minimal trace context across NATS: every publish carries a `synod-trace` header and
 * every received envelope remembers it, so a later tracing layer can link a receiver's
 * work to the sender's without changing the `Transport` contract or the wire format of
 * envelopes.
 *
 * The value is `<traceId>/<spanId>` of the sender's current span when there is one (cheap:
 * two strings already in memory), else `<from>#<n>` with `n` counting the transport's sends,
 * which still tells one send from another in logs. Receivers look it up with `of(envelope)`;
 * the table is weak, so it holds no envelope alive.
 *
 * @since 0.1.0
 */
import type { Message } from "@synod/core"
import { Context, type Fiber, Tracer } from "effect"

/** The header name; lowercase, because the client's header lookups are exact-match (STYLE.md §4). */
export const header = "synod-trace"

const received = new WeakMap<Message.Envelope, string>()

/** The trace value to send `envelope` with, from the sending fiber's span or `from#seq`. */
export const outgoing = (fiber: Fiber.Fiber<unknown, unknown>, envelope: Message.Envelope, seq: number): string => {
  const span = Context.getOrUndefined(fiber.context, Tracer.ParentSpan)
  return span === undefined ? `${envelope.from}#${seq}` : `${span.traceId}/${span.spanId}`
}

/** Remembers the trace a received envelope came with (empty values are not stored). */
export const remember = (envelope: Message.Envelope, value: string): void => {
  if (value !== "") received.set(envelope, value)
}

/** The trace `envelope` arrived with, if it came over NATS with a `synod-trace` header. */
export const of = (envelope: Message.Envelope): string | undefined => received.get(envelope)

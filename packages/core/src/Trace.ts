/**
 * Trace context across the roles' messages (OpenTelemetry, W3C `traceparent`).
 *
 * Tracing is off unless something provides `Enabled` (the CLI does when an OTLP endpoint
 * is configured). Every role, client and transport reads it once when it starts, and
 * when it is off does nothing per message: no span, no header, no lookup.
 *
 * When it is on, a sender that wants its receiver's work in its trace attaches its span
 * to the envelope it sends (`attach`); a transport carries it across processes as a
 * `traceparent` header and attaches what it parses to the envelope it delivers, and a
 * transport that hands envelopes over in memory (to a role in the same process) hands the
 * attachment over with them, since the envelope is the same object. Receivers read it with
 * `of`. The table is weak: it holds no envelope alive. Envelopes without an attachment
 * carry no header.
 *
 * @since 0.2.0
 */
import { Clock, Context, Effect, Exit, Option, Tracer } from "effect"
import type { Envelope } from "./Message.ts"

/** Whether this process traces the protocol (default false). */
export const Enabled = Context.Reference<boolean>("@synod/core/Trace/Enabled", { defaultValue: () => false })

/** The W3C trace-context header name (lowercase: header lookups in the NATS client are exact). */
export const header = "traceparent"

const attached = new WeakMap<Envelope, Tracer.AnySpan>()

/** Sends `envelope` as part of `span`'s trace: its receiver's span becomes a child of `span`. */
export const attach = (envelope: Envelope, span: Tracer.AnySpan): void => {
  attached.set(envelope, span)
}

/** The span `envelope` was sent from, if its sender attached one (or it came with a `traceparent`). */
export const of = (envelope: Envelope): Tracer.AnySpan | undefined => attached.get(envelope)

/** `span` as a W3C `traceparent` value (version 00). */
export const format = (span: Tracer.AnySpan): string =>
  `00-${span.traceId.padStart(32, "0")}-${span.spanId.padStart(16, "0")}-${span.sampled ? "01" : "00"}`

const traceparent = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/
const zeros = /^0+$/

/**
 * A `traceparent` value as the remote span it names, or `undefined` when it is not one
 * (wrong shape, version ff, an all-zero id, or a version-00 value with extra fields).
 */
export const parse = (value: string): Tracer.ExternalSpan | undefined => {
  if (value.length > 256) return undefined
  const m = traceparent.exec(value.trim().toLowerCase())
  if (m === null) return undefined
  const [, version, traceId, spanId, flags, rest] = m
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined
  if (zeros.test(traceId!) || zeros.test(spanId!)) return undefined
  return Tracer.externalSpan({ traceId: traceId!, spanId: spanId!, sampled: (parseInt(flags!, 16) & 1) === 1 })
}

/** Starting and ending spans from synchronous code (a role's host between its steps). */
export interface Spans {
  /** A span named `name`, child of `parent`, with `links` to other traces. */
  start(
    name: string,
    parent: Tracer.AnySpan,
    attributes: Record<string, unknown>,
    links?: ReadonlyArray<Tracer.AnySpan>
  ): Tracer.Span
  end(span: Tracer.Span): void
}

/** Spans on the current tracer and clock. */
export const spans: Effect.Effect<Spans> = Effect.gen(function* () {
  const tracer = yield* Tracer.Tracer
  const clock = yield* Clock.Clock
  return {
    start: (name, parent, attributes, links = []) => {
      const span = tracer.span({
        name,
        parent: Option.some(parent),
        annotations: Context.empty(),
        links: links.map((span) => ({ span, attributes: {} })),
        startTime: clock.currentTimeNanosUnsafe(),
        kind: "internal",
        root: false,
        sampled: parent.sampled
      })
      for (const key in attributes) span.attribute(key, attributes[key])
      return span
    },
    end: (span) => span.end(clock.currentTimeNanosUnsafe(), Exit.void)
  }
})

/**
 * A map that forgets its oldest entries beyond `capacity`: what a role remembers of the
 * traces of commands and slots it saw, so tracing never grows memory without bound.
 */
export class Recent<K, V> {
  private readonly map = new Map<K, V>()
  private readonly capacity: number
  private readonly evicted: ((value: V) => void) | undefined
  constructor(capacity: number, evicted?: (value: V) => void) {
    this.capacity = capacity
    this.evicted = evicted
  }
  get(key: K): V | undefined {
    return this.map.get(key)
  }
  set(key: K, value: V): void {
    this.map.delete(key)
    this.map.set(key, value)
    if (this.map.size > this.capacity) {
      const [oldest, v] = this.map.entries().next().value!
      this.map.delete(oldest)
      this.evicted?.(v)
    }
  }
  get size(): number {
    return this.map.size
  }
  /** A copy of the entries, oldest first. */
  entries(): Array<[K, V]> {
    return [...this.map.entries()]
  }
  take(key: K): V | undefined {
    const v = this.map.get(key)
    if (v !== undefined) this.map.delete(key)
    return v
  }
}

/**
 * What scouts and commanders share: send a message to every acceptor, then resend it on a
 * schedule to those that have not answered yet, until the calling fiber ends.
 *
 * Internal: not exported from the package.
 */
import { Address, type Message, type Quorum, Trace, Transport, Trusted } from "@synod/core"
import { Effect, Metric, type Tracer } from "effect"
import * as Metrics from "../Metrics.ts"

/** Resends back off to at most this many times `retransmitMs`. */
export const maxBackoff = 8

/**
 * Sends `message(acceptor)` to all `acceptors` now, and to `tally.missing()` every
 * `retransmitMs` (with `backoff`: after `retransmitMs`, then after twice as long each time
 * up to `maxBackoff` × `retransmitMs`), in a child fiber (it stops when the caller's fiber
 * ends). `message` is re-evaluated at each send. Answers the send, for the caller's own
 * follow-ups.
 */
export const broadcast = Effect.fnUntraced(function* (options: {
  readonly leader: Address.Address
  readonly acceptors: ReadonlyArray<string>
  readonly tally: Quorum.Tally
  readonly retransmitMs: number
  /**
   * Resend after `retransmitMs`, then twice as long each time up to `maxBackoff` ×
   * `retransmitMs` (a commander's P2a); else every `retransmitMs` (a scout's P1a, which
   * acceptors holding a lease refuse until it ends: a new leader must hear them soon after).
   */
  readonly backoff?: boolean
  readonly message: (acceptor: string) => Message.Message
  /**
   * Whom each resend goes to (default: `tally.missing()`, every acceptor that has not
   * answered). A scout leaves out an acceptor that sent it a page since the last resend:
   * that acceptor is answering, and its next page is on the way.
   */
  readonly resendTo?: () => ReadonlyArray<string>
  /** Tracing: the span every message continues (the acceptors' spans become its children). */
  readonly span?: Tracer.AnySpan | undefined
}) {
  const transport = yield* Transport.Transport
  const { leader } = options
  const sendTo = (ids: ReadonlyArray<string>) =>
    Effect.forEach(
      ids,
      (a) =>
        Effect.suspend(() => {
          const to = Address.acceptor(a)
          const envelope = Trusted.envelope(leader, to, options.message(a))
          if (options.span !== undefined) Trace.attach(envelope, options.span)
          return transport.send(to, envelope)
        }),
      { discard: true }
    )
  yield* sendTo(options.acceptors)
  const resent = Metrics.of(Metrics.retransmissions, Address.id(leader), { role: "leader" })
  // A commander's resends back off, doubling up to `maxBackoff` × `retransmitMs`, as the
  // replicas' and clients' do: an overloaded acceptor answers late, not never, and a P2a
  // may carry a megabyte; resending every `retransmitMs` while the answers queue behind
  // the work multiplied the work (4 KB values at 256 clients collapsed to a few hundred
  // writes a second, their p99 seconds). A lost message still goes again within
  // `retransmitMs`. A scout's do not: with backoff a new leader heard the acceptors
  // whose lease had held it off only at its next resend, up to 800 ms later (a paused
  // leader's fail-over went from 0.66 to 1.86 s at p99).
  const resend = (wait: number): Effect.Effect<void> =>
    Effect.andThen(
      Effect.sleep(wait),
      Effect.suspend(() => {
        const missing = options.resendTo === undefined ? options.tally.missing() : options.resendTo()
        return Effect.andThen(
          missing.length === 0 ? Effect.void : Effect.andThen(Metric.update(resent, 1), sendTo(missing)),
          resend(options.backoff === true ? Math.min(wait * 2, maxBackoff * options.retransmitMs) : wait)
        )
      })
    )
  yield* Effect.forkChild(resend(options.retransmitMs))
  return sendTo
})

/**
 * What scouts and commanders share: send a message to every acceptor, then resend it on a
 * schedule to those that have not answered yet, until the calling fiber ends.
 *
 * Internal: not exported from the package.
 */
import { Address, type Message, type Quorum, Trace, Transport, Trusted } from "@synod/core"
import { Effect, Metric, Schedule, type Tracer } from "effect"
import * as Metrics from "../Metrics.ts"

/**
 * Sends `message(acceptor)` to all `acceptors` now, and to `tally.missing()` every
 * `retransmitMs` in a child fiber (it stops when the caller's fiber ends). `message` is
 * re-evaluated at each send. Answers the send, for the caller's own follow-ups.
 */
export const broadcast = Effect.fnUntraced(function* (options: {
  readonly leader: Address.Address
  readonly acceptors: ReadonlyArray<string>
  readonly tally: Quorum.Tally
  readonly retransmitMs: number
  readonly message: (acceptor: string) => Message.Message
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
  yield* Effect.suspend(() => Effect.andThen(Metric.update(resent, 1), sendTo(options.tally.missing()))).pipe(
    Effect.delay(options.retransmitMs),
    Effect.repeat(Schedule.spaced(options.retransmitMs)),
    Effect.forkChild
  )
  return sendTo
})

/**
 * The client: submits commands to the replicated state machine and waits for their
 * results.
 *
 * Each command gets the next sequence number of this client; retries reuse it, so the
 * replicas' client tables make a retry harmless (B9). The first attempt goes to one
 * replica (the last one that answered, so one replica does the proposing and replicas do
 * not compete for slots); every retry goes to all of them. Several commands may be in
 * flight at once; each carries `acked`, the lowest seq still unanswered, so replicas can
 * forget older results.
 *
 * A command too large for one message fails with `CommandTooLarge` before anything is sent.
 * A command that gets no answer within `clientTimeoutMs` fails with `OutcomeUnknown`: it
 * may still take effect later (B16), so callers must not read a timeout as "not applied".
 *
 * @since 0.1.0
 */
import { Address, type ClusterConfig, Limits, type Message, StateMachine, Trace, Transport, Trusted } from "@synod/core"
import { Clock, Context, Effect, Latch, Metric, Queue, Random, Result, Schema, type Scope, Tracer } from "effect"
import * as Metrics from "./Metrics.ts"

/** The command may or may not have been applied: no replica answered in time. */
export class OutcomeUnknown extends Schema.TaggedError<OutcomeUnknown>()("OutcomeUnknown", {
  client: Schema.String,
  seq: Schema.Int,
  waitedMs: Schema.Int
}) {
  override get message(): string {
    return `no answer for command ${this.seq} of client ${this.client} after ${this.waitedMs} ms: it may or may not have been applied`
  }
}

/** The command was decided but the state machine could not decode it; nothing changed. */
export class CommandRejected extends Schema.TaggedError<CommandRejected>()("CommandRejected", {
  reason: Schema.String
}) {}

/**
 * The command is too large for one message of the transport (with what a batch carries
 * around it): it was not sent, and nothing was proposed.
 */
export class CommandTooLarge extends Schema.TaggedError<CommandTooLarge>()("CommandTooLarge", {
  /** Its encoded size, and the largest command the transport allows (UTF-8 bytes of JSON). */
  bytes: Schema.Int,
  limit: Schema.Int
}) {
  override get message(): string {
    return `the command is ${this.bytes} bytes encoded; the largest command this cluster carries is ${this.limit} bytes`
  }
}

export type SubmitError = OutcomeUnknown | CommandRejected | CommandTooLarge

/** No replica answered a read in time (a read changes nothing: asking again is safe). */
export class ReadTimedOut extends Schema.TaggedError<ReadTimedOut>()("ReadTimedOut", {
  client: Schema.String,
  id: Schema.Int,
  waitedMs: Schema.Int
}) {
  override get message(): string {
    return `no answer for read ${this.id} of client ${this.client} after ${this.waitedMs} ms (no active leader confirmed, or no replica reachable); a read changes nothing, so it may be asked again`
  }
}

export type ReadError = ReadTimedOut | CommandRejected | CommandTooLarge

export interface Client<C, R> {
  readonly id: string
  submit(command: C): Effect.Effect<R, SubmitError>
  /**
   * A linearizable read without a slot (docs/protocol.md#reads): a replica answers `query`
   * from its state once it has applied everything decided before the read arrived, as an
   * active leader confirmed with a majority of acceptors. Only the machine's read-only
   * queries (`StateMachine.query`) are answered; any other command fails with
   * `CommandRejected`.
   */
  read(query: C): Effect.Effect<R, ReadError>
  /**
   * `submit`, for a caller that is not an Effect fiber: the promise resolves with the result
   * or rejects with the `SubmitError`, as `Effect.runPromise(submit(command))` would, without
   * a fiber per command where the transport can send from outside one (`Transport.sendUnsafe`:
   * NATS and the in-memory bus). It cannot be interrupted: a command with no answer rejects with `OutcomeUnknown`
   * after `clientTimeoutMs`, as does every command still waiting when the client's scope closes.
   */
  submitPromise(command: C): Promise<R>
  /** `read`, for a caller that is not an Effect fiber, as `submitPromise` is `submit`'s (no answer: `ReadTimedOut`). */
  readPromise(query: C): Promise<R>
}

export interface Options {
  /**
   * The client id (default: random, from the `Random` service): an id, or `scope.name`
   * (`Address.ClientId`). Never reuse one across runs: sequence numbers restart at 1.
   */
  readonly id?: string
  /**
   * Who the client acts for: with it, the default id is `<scope>.c<random>`. Over NATS a
   * client user may be allowed only its own scope (`synod nats-config`): requests on
   * `synod.<c>.req.*.<scope>`, responses on `synod.<c>.client.<scope>.*`.
   */
  readonly scope?: string
  /**
   * The replicas to send to, asked at every send (default: `config.replicas`): a server's
   * own API client follows its replica's configuration history (docs/reconfiguration.md),
   * so its requests reach the replicas of the latest configuration. Answer the same array
   * while they stay the same (an array is never changed in place): the client turns a new
   * one into addresses again.
   */
  readonly replicas?: () => ReadonlyArray<string>
}

type Reply = { readonly result: Schema.Json; readonly error?: string }

/**
 * A command (or read) waiting for its answer, in `waiting` (or `reading`) until `dispatch`
 * takes it out with its answer or the timer with `undefined` (timed out): whichever takes
 * it settles it, so it is settled once. A fiber interrupted while waiting takes it out
 * unsettled.
 */
interface Waiting {
  settle: (this: Waiting, reply: Reply | undefined) => void
  /** The answer, when it came before the command's fiber waited for it (`keepEarly`). */
  early?: { readonly reply: Reply | undefined }
  /** What is resent: a command's `Request`, or a `Read`. */
  readonly request: Message.Request | Message.Read
  readonly started: number
  resendAt: number
  wait: number
  /** Where its last send went (at `resendAt − wait`): one replica, or `undefined` for every replica. */
  to: Address.Address | undefined
  /** Resent at least once: its answer time says nothing about the cluster's (Karn's rule). */
  resent: boolean
  /** Tracing: the command's span, which its requests (resends too) carry. */
  readonly span: Tracer.AnySpan | undefined
}

/** The most repliers a client remembers the last answer of (a configuration has far fewer replicas). */
const maxAnswering = 256

/** A transport's send from outside a fiber (`Transport.sendUnsafe`), where it has one. */
type SendUnsafe = NonNullable<Transport.Transport["Service"]["sendUnsafe"]>

/** A waiting command's `settle` until its fiber waits: the answer is kept for it. */
const keepEarly = function (this: Waiting, reply: Reply | undefined): void {
  this.early = { reply }
}

/**
 * Waits for `w`'s answer, then continues with `then`. The fiber waits on one callback that
 * `w.settle` resumes: no `Deferred` and no finalizer per command. An answer that came
 * before the fiber got here (its send may yield) was kept, and is taken at once.
 * Interrupted while waiting, the command leaves `map` (at `key`): nothing will take its
 * answer any more. Interrupted during its send, it stays until it times out, resent
 * meanwhile like any command whose outcome is unknown: harmless, replicas perform a
 * command once.
 *
 * Measured against a `Deferred` per command (`pnpm bench inmemory`, the yardstick's
 * workload, two sets of six interleaved rounds): medians of 32.5 and 39.6 µs of CPU per
 * write against 33.6 and 40.5, a small gain within this machine's noise round by round.
 */
const awaitReply = <A, E>(
  w: Waiting,
  map: Map<number, Waiting>,
  key: number,
  then: (reply: Reply | undefined) => Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  Effect.suspend(() => {
    if (w.early !== undefined) return then(w.early.reply)
    return Effect.callback<A, E>((resume) => {
      // `then` runs on the waiting fiber, not on whichever settles it (the answers' dispatch)
      w.settle = (reply) => resume(Effect.suspend(() => then(reply)))
      return Effect.sync(() => {
        if (map.get(key) === w) map.delete(key)
      })
    })
  })

/** A client of `machine` on `config`'s replicas, until the scope closes. Requires `Transport`. */
export const make = Effect.fn("Client.make")(function* <S, C, R>(
  machine: StateMachine.StateMachine<S, C, R>,
  config: ClusterConfig.ClusterConfig,
  options: Options = {}
): Effect.fn.Return<Client<C, R>, Transport.TransportError, Transport.Transport | Scope.Scope> {
  const transport = yield* Transport.Transport
  const clock = yield* Clock.Clock
  // what runs effects for `submitPromise`'s callers, who are not in a fiber
  const services = yield* Effect.context<never>()
  const runPromise = Effect.runPromiseWith(services)
  const runFork = Effect.runForkWith(services)
  const random = options.id === undefined ? `c${(yield* Random.nextIntBetween(0, 2 ** 48)).toString(36)}` : ""
  const id = options.id ?? (options.scope === undefined ? random : `${options.scope}.${random}`)
  const self = Address.client(id)
  const codecs = StateMachine.codecs(machine)
  const limit = Limits.fromMessageBytes(transport.maxMessageBytes).commandBytes
  const configured = config.replicas.map(Address.replica)
  const current = options.replicas
  // the addresses of the ids `current` last answered, made again only when it answers
  // another list (it is read on every send)
  let lastIds: ReadonlyArray<string> | undefined
  let lastAddresses: ReadonlyArray<Address.Address> = configured
  const replicasNow = (): ReadonlyArray<Address.Address> => {
    const ids = current?.()
    if (ids === undefined || ids.length === 0) return configured
    if (ids !== lastIds) {
      lastIds = ids
      lastAddresses = ids.map(Address.replica)
    }
    return lastAddresses
  }
  const { retransmitMs, clientTimeoutMs } = config.timeouts
  const waiting = new Map<number, Waiting>()
  /** Reads in flight, by read id (their own counter: reads take no command seq). */
  const reading = new Map<number, Waiting>()
  const resent = Metrics.of(Metrics.retransmissions, id, { role: "client" })
  yield* Metrics.start([resent])
  let nextSeq = 1
  let nextRead = 1
  /**
   * Where a new command goes: one replica (the first configured at first, then the one the
   * last answer pointed to), or every replica (`undefined`) once a command had to be resent
   * — that replica may be gone (a leader's server killed takes the replica next to it) —
   * until an answer names one again.
   */
  let preferred: Address.Address | undefined = replicasNow()[0]!
  // tracing: each command a span `synod.client` (its requests carry it); off, no span at all
  const traced = yield* Trace.Enabled

  // where the next request goes: the replica next to the leader when the answer names one
  // of the configured replicas (a hint, docs/protocol.md#clients), else the one that answered
  const next = (from: Address.Address, leader: string | undefined): Address.Address => {
    if (leader !== undefined) {
      const replica = Address.replica(leader)
      if (replicasNow().includes(replica)) return replica
    }
    return from
  }

  // The wait before a resend adapts to how long answers take, as TCP's retransmission
  // timeout does (RFC 6298): a smoothed answer time and its mean deviation, from commands
  // and reads answered at their first send; the wait is the smoothed time plus four
  // deviations, between `retransmitMs` and 8 × `retransmitMs`. A fixed wait resends, under
  // load, commands that are only queued — each to every replica, which all propose it —
  // adding load exactly when there is too much of it.
  // Until an answer to a first send gives a sample, a resend's longer wait carries over to
  // new commands (as TCP keeps its backed-off timeout), else answers slower than
  // `retransmitMs` would make every command a resend and never give a sample.
  let smoothed: number | undefined
  let deviation = 0
  let backedOff = retransmitMs
  const firstWait = (): number =>
    Math.min(
      8 * retransmitMs,
      Math.max(backedOff, smoothed === undefined ? retransmitMs : Math.ceil(smoothed + 4 * deviation))
    )
  const answered = (w: Waiting): void => {
    if (w.resent) return
    backedOff = retransmitMs
    const ms = clock.currentTimeMillisUnsafe() - w.started
    if (smoothed === undefined) {
      smoothed = ms
      deviation = ms / 2
    } else {
      deviation = 0.75 * deviation + 0.25 * Math.abs(smoothed - ms)
      smoothed = 0.875 * smoothed + 0.125 * ms
    }
  }

  /**
   * When each replica last answered this client (anything): is the one a command went to
   * working? At most `maxAnswering` senders are remembered (answers name their sender, and
   * one that forged many names must not grow it).
   */
  const answeredAt = new Map<Address.Address, number>()

  const dispatch = (batch: ReadonlyArray<Message.Envelope>): void => {
    const now = clock.currentTimeMillisUnsafe()
    for (const env of batch) {
      if (answeredAt.size < maxAnswering || answeredAt.has(env.from)) answeredAt.set(env.from, now)
      if (env.message._tag === "ReadResponse") {
        const w = reading.get(env.message.id)
        if (w === undefined) continue
        reading.delete(env.message.id)
        answered(w)
        preferred = next(env.from, env.message.leader)
        const { result, error } = env.message
        w.settle(error === undefined ? { result } : { result, error })
        continue
      }
      if (env.message._tag !== "Response") continue
      const w = waiting.get(env.message.seq)
      if (w === undefined) continue
      waiting.delete(env.message.seq)
      answered(w)
      preferred = next(env.from, env.message.leader)
      const { result, error } = env.message
      w.settle(error === undefined ? { result } : { result, error })
    }
  }
  const mailbox = yield* transport.listen(self)
  yield* Queue.takeAll(mailbox).pipe(Effect.map(dispatch), Effect.forever, Effect.forkScoped)

  const sendTo = (to: Address.Address, request: Message.Request | Message.Read, span: Tracer.AnySpan | undefined) => {
    const envelope = Trusted.envelope(self, to, request)
    if (span !== undefined) Trace.attach(envelope, span)
    return transport.send(to, envelope)
  }

  /**
   * Where a command's first send goes, among `now` (the replicas in force): the preferred
   * replica (the first of the configuration in force if the configuration left it out), or
   * `undefined` for every replica while none is preferred.
   */
  const firstTarget = (now: ReadonlyArray<Address.Address>): Address.Address | undefined =>
    preferred === undefined ? undefined : current === undefined || now.includes(preferred) ? preferred : now[0]!

  /** A command's first send, to `firstTarget`. */
  const sendFirst = (w: Waiting) => {
    const now = replicasNow()
    const to = firstTarget(now)
    w.to = to
    if (to === undefined) return Effect.forEach(now, (r) => sendTo(r, w.request, w.span), { discard: true })
    return sendTo(to, w.request, w.span)
  }

  /** A command or read in flight from now, first due for a resend after the current first wait. */
  const waitingFor = (request: Message.Request | Message.Read, span: Tracer.AnySpan | undefined): Waiting => {
    const started = clock.currentTimeMillisUnsafe()
    const wait = firstWait()
    busy.openUnsafe()
    return {
      settle: keepEarly,
      request,
      started,
      resendAt: started + wait,
      wait,
      to: undefined,
      resent: false,
      span
    }
  }

  // One timer for every command in flight, not one per command: a timeout raced against
  // each answer cost more CPU than the rest of the client's work for a command. It sleeps
  // until the earliest resend or timeout due, at least a quarter retransmission period (so
  // one is at most that late) and at most a whole one (a command sent meanwhile is first
  // due at least a whole period after it was sent, so it is never overslept); with nothing waiting
  // it sleeps on `busy`.
  const busy = Latch.makeUnsafe(false)
  const every = Math.max(1, Math.floor(retransmitMs / 4))
  yield* Effect.gen(function* () {
    for (;;) {
      if (waiting.size === 0 && reading.size === 0) {
        busy.closeUnsafe()
        yield* busy.await
      }
      const now = clock.currentTimeMillisUnsafe()
      let next = now + retransmitMs
      let resends = 0
      for (const inFlight of [waiting, reading]) {
        for (const [key, w] of inFlight) {
          const timeoutAt = w.started + clientTimeoutMs
          if (now >= timeoutAt) {
            inFlight.delete(key)
            w.settle(undefined)
            continue
          }
          if (now >= w.resendAt) {
            // no answer yet: ask again, waiting twice as long each time. The replica it went
            // to, if that one answered anything since: it is working, and holds the command
            // (a duplicate costs it a lookup) unless the message was lost. Else every
            // replica: that one may be gone. Every replica each time, under load with 64 KiB
            // values (answers slower than the longest wait), made each command proposed by
            // every replica, tripling the bytes to order; leadership churned and nothing
            // committed. A command sent after its replica failed still goes to every replica
            // at its first resend, so a fail-over costs the same.
            resends++
            w.resent = true
            const to = w.to
            const sentAt = w.resendAt - w.wait
            const replicas = replicasNow()
            if (to !== undefined && (answeredAt.get(to) ?? -1) >= sentAt && replicas.includes(to)) {
              yield* sendTo(to, w.request, w.span)
            } else {
              preferred = undefined
              w.to = undefined
              for (const r of replicas) yield* sendTo(r, w.request, w.span)
            }
            w.wait = Math.min(w.wait * 2, 8 * retransmitMs)
            backedOff = Math.max(backedOff, w.wait)
            w.resendAt = now + w.wait
          }
          next = Math.min(next, w.resendAt, timeoutAt)
        }
      }
      if (resends > 0) yield* Metric.update(resent, resends)
      yield* Effect.sleep(Math.max(every, next - now))
    }
  }).pipe(Effect.forkScoped)

  // `waiting` takes seqs in increasing order and a Map iterates in insertion order, so its
  // first key is the lowest seq still waiting
  const acked = (): number => {
    const first = waiting.keys().next()
    return first.done === true ? nextSeq : first.value
  }

  // Everything up to the send happens at once when the command is submitted: its seq, its
  // `acked` and its place in `waiting` together, so a command submitted concurrently never
  // reads an `acked` above a seq that is taken but not waiting yet.
  const submit = (command: C): Effect.Effect<R, SubmitError> =>
    traced
      ? Effect.withSpan(
          Effect.withFiber((fiber) => start(command, Context.getOrUndefined(fiber.context, Tracer.ParentSpan))),
          "synod.client",
          { kind: "client", attributes: { "synod.client": id } }
        )
      : start(command, undefined)

  /**
   * A command's seq, its `acked` and its place in `waiting`, taken together, or the reason
   * it cannot be sent; the caller sends it.
   */
  const begin = (seq: number, command: C, span: Tracer.AnySpan | undefined): Waiting | CommandTooLarge => {
    if (span?._tag === "Span") span.attribute("synod.seq", seq)
    // every lower seq still waiting keeps `acked` down, and this one is not answered yet
    const encoded = Trusted.command(id, seq, Math.min(acked(), seq), codecs.encodeCommand(command))
    // measured exactly only when the bound without encoding it says it may not fit
    if (!Limits.jsonFits(encoded, limit)) return new CommandTooLarge({ bytes: Limits.jsonBytes(encoded), limit })
    const w = waitingFor(Trusted.request(encoded), span)
    waiting.set(seq, w)
    return w
  }

  const start = (command: C, span: Tracer.AnySpan | undefined): Effect.Effect<R, SubmitError> =>
    Effect.suspend(() => {
      const seq = nextSeq++
      const w = begin(seq, command, span)
      if (w instanceof CommandTooLarge) return Effect.fail(w)
      return Effect.andThen(
        sendFirst(w),
        awaitReply(w, waiting, seq, (reply) => outcome(seq, w.started, reply))
      )
    })

  /** `sendFirst` from outside a fiber, through `sendUnsafe`; what it leaves to do runs in a fiber of its own. */
  const sendFirstUnsafe = (sendUnsafe: SendUnsafe, w: Waiting) => {
    const sendTo = (to: Address.Address) => {
      const after = sendUnsafe(to, Trusted.envelope(self, to, w.request))
      if (after !== undefined) runFork(after)
    }
    const now = replicasNow()
    const to = firstTarget(now)
    w.to = to
    if (to === undefined) for (const r of now) sendTo(r)
    else sendTo(to)
  }

  /**
   * `begin` for a promise's caller: a command the machine cannot encode (its `encodeCommand`
   * throws) and one too large are a rejected promise, as from `runPromise`, not a throw.
   */
  const beginUnsafe = (start: () => Waiting | CommandTooLarge): Waiting | Promise<never> => {
    try {
      const w = start()
      return w instanceof CommandTooLarge ? Promise.reject(w) : w
    } catch (defect) {
      return Promise.reject(defect)
    }
  }

  /** `w`'s answer as a promise, its first send through `sendUnsafe`; no answer rejects with `missing()`. */
  const promised = (w: Waiting, sendUnsafe: SendUnsafe, missing: () => OutcomeUnknown | ReadTimedOut): Promise<R> =>
    new Promise<R>((resolve, reject) => {
      w.settle = (reply) => {
        if (reply === undefined) return reject(missing())
        const result = replyResult(reply)
        if (Result.isSuccess(result)) resolve(result.success)
        else reject(result.failure)
      }
      sendFirstUnsafe(sendUnsafe, w)
    })

  const submitPromise = (command: C): Promise<R> => {
    const sendUnsafe = transport.sendUnsafe
    if (traced || sendUnsafe === undefined) return runPromise(submit(command))
    const seq = nextSeq++
    const w = beginUnsafe(() => begin(seq, command, undefined))
    if (w instanceof Promise) return w
    return promised(
      w,
      sendUnsafe,
      () => new OutcomeUnknown({ client: id, seq, waitedMs: clock.currentTimeMillisUnsafe() - w.started })
    )
  }

  const outcome = (seq: number, started: number, reply: Reply | undefined): Effect.Effect<R, SubmitError> =>
    reply === undefined
      ? Effect.fail(new OutcomeUnknown({ client: id, seq, waitedMs: clock.currentTimeMillisUnsafe() - started }))
      : decodeReply(reply)

  const replyResult = (reply: Reply): Result.Result<R, CommandRejected> => {
    if (reply.error !== undefined) return Result.fail(new CommandRejected({ reason: reply.error }))
    const decoded = codecs.decodeResult(reply.result)
    return Result.isFailure(decoded)
      ? Result.fail(new CommandRejected({ reason: `result does not decode: ${decoded.failure}` }))
      : Result.succeed(decoded.success)
  }
  const decodeReply = (reply: Reply): Effect.Effect<R, CommandRejected> => {
    const result = replyResult(reply)
    return Result.isSuccess(result) ? Effect.succeed(result.success) : Effect.fail(result.failure)
  }

  /** A read's id and its place in `reading`, or the reason it cannot be sent; the caller sends it. */
  const beginRead = (readId: number, query: C): Waiting | CommandTooLarge => {
    const op = codecs.encodeCommand(query)
    // the replica refuses a read whose op is larger than a command may be
    if (!Limits.jsonFits(op, limit)) return new CommandTooLarge({ bytes: Limits.jsonBytes(op), limit })
    const w = waitingFor(Trusted.read(id, readId, op), undefined)
    reading.set(readId, w)
    return w
  }

  // As `submit`, with the read's own id: first to one replica, then to all with doubling
  // waits (the timer above), failing with `ReadTimedOut` after the client timeout.
  const read = (query: C): Effect.Effect<R, ReadError> =>
    Effect.suspend(() => {
      const readId = nextRead++
      const w = beginRead(readId, query)
      if (w instanceof CommandTooLarge) return Effect.fail(w)
      return Effect.andThen(
        sendFirst(w),
        awaitReply(
          w,
          reading,
          readId,
          (reply): Effect.Effect<R, ReadError> =>
            reply === undefined
              ? Effect.fail(
                  new ReadTimedOut({ client: id, id: readId, waitedMs: clock.currentTimeMillisUnsafe() - w.started })
                )
              : decodeReply(reply)
        )
      )
    })

  const readPromise = (query: C): Promise<R> => {
    const sendUnsafe = transport.sendUnsafe
    if (sendUnsafe === undefined) return runPromise(read(query))
    const readId = nextRead++
    const w = beginUnsafe(() => beginRead(readId, query))
    if (w instanceof Promise) return w
    return promised(
      w,
      sendUnsafe,
      () => new ReadTimedOut({ client: id, id: readId, waitedMs: clock.currentTimeMillisUnsafe() - w.started })
    )
  }

  // every command still waiting when the client closes: its outcome is unknown (a promise's
  // caller, whom no interruption reaches, would otherwise wait for ever)
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const inFlight of [waiting, reading]) {
        const left = [...inFlight.values()]
        inFlight.clear()
        for (const w of left) w.settle(undefined)
      }
    })
  )

  return { id, submit, read, submitPromise, readPromise }
})

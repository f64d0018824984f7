/**
 * The core `Transport` over NATS: swap `InMemoryBus.layer()` for `NatsTransport.layer(…)`
 * and a cluster talks through a NATS server instead of in-process queues.
 *
 * - `send` publishes the encoded envelope on the subject of its address
 *   (`Subjects.subject`), fire-and-forget. A publish the client refuses (too large, closed
 *   connection) or one attempted while NATS is unreachable is counted and dropped, never
 *   failed: Paxos retransmits, so a lost message is only a delay. Nothing is flushed per
 *   message; the client batches writes.
 * - `listen` makes one callback subscription per call. The callback checks the size,
 *   decodes and validates (`Codec.decode`) and offers the envelope to the bounded mailbox
 *   at once: a fiber in between would cost a turn of the event loop per message. What it
 *   cannot deliver (oversized, undecodable, mailbox full, a subscription error) a fiber per
 *   listener counts and logs with the subject and the reason; the listener keeps going.
 *   The subscription ends with the listener's scope.
 * - A message to an address this process itself listens on (a colocated role: a replica's
 *   proposal to its own server's leader, a P2a to its own acceptor, a decision to its own
 *   replica) goes straight to the listener's mailbox: never encoded, never through the
 *   server, so it costs no hop. A role's address lives in one process (duplicate node ids
 *   are refused, `Presence`), so nobody elsewhere misses it; `local` counts them.
 * - Subjects are split by trust (`Subjects`, issue 14): a client's `Request` to a replica
 *   goes to the replica's request subject, everything else to the receiver's own subject,
 *   and a replica listens on both. Each subscription delivers only what belongs on it
 *   (`Subjects.refusal`); anything else is refused: counted (`refused`) and logged with
 *   the subject and why.
 * - `listen` returns once the server has seen the subscription (one round trip), so a
 *   message sent after it returns is delivered; a subscription the server refuses (no
 *   permission) fails `listen` with a `TransportError`. When NATS is unreachable `listen`
 *   waits at most `subscribeTimeout` and the client subscribes on reconnect.
 *
 * @since 0.1.0
 */
import { headers, type Msg, type MsgHdrs } from "@nats-io/transport-node"
import { type Address, Codec, HopLog, Limits, type Message, Trace, Transport } from "@synod/core"
import { Cause, Clock, Duration, Effect, Layer, Option, Queue, Result, type Tracer } from "effect"
import * as ClusterKey from "./ClusterKey.ts"
import * as LogBudget from "./LogBudget.ts"
import * as NatsConnection from "./NatsConnection.ts"
import { type Event as StatsEvent, NatsStats } from "./NatsStats.ts"
import * as Subjects from "./Subjects.ts"

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
  /**
   * Carry trace context (`@synod/core/Trace`): the span its sender attached to an envelope
   * goes in a header of the NATS message (`traceparent` when the message is that one
   * envelope, `synod-traceparent` in a coalesced one), and is attached to the envelope
   * delivered. Default: `Trace.Enabled`. Off, no header is built or read.
   */
  readonly traceHeader?: boolean
  /**
   * Hand messages to listeners in this same process in memory (default true). False sends
   * every message through the server, for example to watch all of a cluster's traffic with
   * `nats sub 'synod.>'`.
   */
  readonly localDelivery?: boolean
  /**
   * Authenticated envelopes (`ClusterKey`, issue 14): MAC every message sent, and drop a
   * protocol message received without a valid one. Off by default.
   */
  readonly clusterKey?: ClusterKey.Keys
  /** The sender id in MACs (default: the connection's name); one per connection. */
  readonly sender?: string
  /**
   * The node ids of the cluster's servers. With a cluster key, the scopes named after them
   * are the servers' own clients' (the HTTP API's, `<node>.http-…`): a request in such a
   * scope must carry a valid MAC, as a protocol message does. This transport's own sender
   * id, and every sender that proved the key to a listener, count as such ids too (a
   * server added by a membership change), so this only closes the gap before a server
   * was first heard from.
   */
  readonly serverIds?: ReadonlyArray<string>
  /**
   * Each listener logs each kind of message it drops (undecodable, oversized, refused,
   * unauthenticated, replayed, inbox overflow) at most 5 times in this long, and then one
   * line with how many more it dropped (default 10 seconds; `LogBudget`). The
   * metrics count every one.
   */
  readonly dropLogWindow?: Duration.Input
}

export interface Options extends NatsConnection.Options, TransportOptions {}

/**
 * Tracing: the header of a coalesced message (a JSON array of envelopes) that carries the
 * spans of some of them, `<index>=<traceparent>` for each, comma-separated. A message of one
 * envelope carries its span as a W3C `traceparent` header (`Trace.header`).
 */
export const traceBatchHeader = "synod-traceparent"

/** An envelope's place in a coalesced message, and the `traceparent` of its span. */
interface Traced {
  readonly index: number
  readonly value: string
}

/** Envelopes waiting to leave for one subject. */
const utf8 = new TextEncoder()

/** A JSON array of envelopes, as text, or as bytes when some are bytes already. */
const joinParts = (parts: ReadonlyArray<string | Uint8Array>): string | Uint8Array => {
  if (parts.every((p) => typeof p === "string")) return `[${parts.join(",")}]`
  const chunks = parts.map((p) => (typeof p === "string" ? utf8.encode(p) : p))
  let length = chunks.length + 1 // the brackets and the commas between
  for (const c of chunks) length += c.length
  const bytes = new Uint8Array(length)
  bytes[0] = 0x5b // "["
  let at = 1
  for (const c of chunks) {
    if (at > 1) bytes[at++] = 0x2c // ","
    bytes.set(c, at)
    at += c.length
  }
  bytes[at] = 0x5d // "]"
  return bytes
}

interface Pending {
  /** Envelopes' JSON, or their UTF-8 bytes when too large to bound by their length (`enqueue`). */
  readonly parts: Array<string | Uint8Array>
  bytes: number
  /** Tracing: the spans of those that have one (absent: none has). */
  traces?: Array<Traced>
}

/** The most spans one message may carry: more than the envelopes a message can hold is garbage. */
const maxTraced = 4096

/** The spans a received message's headers carry, by the index of their envelope; invalid entries are ignored. */
const received = (h: MsgHdrs): Map<number, Tracer.ExternalSpan> | undefined => {
  const single = h.get(Trace.header)
  if (single !== "") {
    const span = Trace.parse(single)
    return span === undefined ? undefined : new Map([[0, span]])
  }
  const many = h.get(traceBatchHeader)
  if (many === "" || many.length > maxTraced * 80) return undefined
  const spans = new Map<number, Tracer.ExternalSpan>()
  for (const entry of many.split(",")) {
    const at = entry.indexOf("=")
    const index = Number(entry.slice(0, at))
    const span = at > 0 && Number.isSafeInteger(index) && index >= 0 ? Trace.parse(entry.slice(at + 1)) : undefined
    if (span !== undefined) spans.set(index, span)
  }
  return spans.size === 0 ? undefined : spans
}

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
  const dropLogWindowMs = Duration.toMillis(Duration.fromInputUnsafe(options.dropLogWindow ?? "10 seconds"))
  const withTrace = options.traceHeader ?? (yield* Trace.Enabled)
  const localDelivery = options.localDelivery ?? true
  const { client, isConnectedUnsafe } = yield* NatsConnection.NatsConnection
  const serverMax = client.info?.max_payload ?? Limits.defaultMaxMessageBytes
  // authenticated envelopes (issue 14): the MAC line takes room off every message
  const keys = options.clusterKey
  if (
    keys !== undefined &&
    !(ClusterKey.isKey(keys.current) && (keys.previous === undefined || ClusterKey.isKey(keys.previous)))
  ) {
    return yield* new Transport.TransportError({ reason: "a cluster key is 32 to 1024 characters" })
  }
  const sender = options.sender ?? "synod"
  if (keys !== undefined && !ClusterKey.isSender(sender)) {
    return yield* new Transport.TransportError({
      reason: `sender id ${JSON.stringify(sender)}: 1-128 of [A-Za-z0-9_.-]`
    })
  }
  const sealer = keys === undefined ? undefined : ClusterKey.sealer(keys, sender)
  const servers = new Set(options.serverIds ?? [])
  const maxBytes =
    Math.min(options.maxMessageBytes ?? serverMax, serverMax) - (keys === undefined ? 0 : ClusterKey.overheadBytes)
  if (maxBytes < Limits.minMaxMessageBytes) {
    return yield* new Transport.TransportError({
      reason: `the NATS max_payload of ${maxBytes} bytes is below synod's minimum of ${Limits.minMaxMessageBytes}`
    })
  }
  const stats = yield* NatsStats
  /** This process's listeners by address, for messages that need not leave the process. */
  const local = new Map<Address.Address, Set<Queue.Queue<Message.Envelope>>>()
  const localOverflow = { count: 0 }

  /** Hands an envelope to this process's listeners on its subject: messages are immutable, so they share it. */
  const deliverLocally = (mailboxes: ReadonlySet<Queue.Queue<Message.Envelope>>, envelope: Message.Envelope) => {
    if (HopLog.enabled()) HopLog.mark(`local ${envelope.to} ${envelope.message._tag}`)
    for (const mailbox of mailboxes) {
      if (Queue.offerUnsafe(mailbox, envelope)) stats.countUnsafe("local")
      else localOverflow.count++
    }
    if (localOverflow.count === 0) return undefined
    const n = localOverflow.count
    localOverflow.count = 0
    return Effect.andThen(
      stats.count("inboxOverflow", n),
      Effect.logWarning("listener inbox full; dropped messages", { to: envelope.to, dropped: n })
    )
  }

  const dropSend = (reason: string, to: Address.Address) =>
    Effect.andThen(
      stats.count("publishErrors"),
      // while NATS is down every send fails the same way: keep that at debug level
      reason === "NATS unreachable"
        ? Effect.logDebug("dropping a send", { reason, to })
        : Effect.logWarning("dropping a send", { reason, to })
    )

  /**
   * Coalescing: the envelopes sent to one subject while a fiber runs (a host's whole
   * batch: a replica's answers to one client, an acceptor's P2b to one leader, a client's
   * requests to one replica) leave as one NATS message, a JSON array of envelopes, at the
   * end of the current microtask — never larger than `maxBytes`. One message instead of
   * many costs the sender, the NATS server and the receiver a per-message overhead once.
   *
   * Clients' requests to a replica wait longer, until the end of the event loop's turn
   * (`setImmediate`), unless something else flushes first: an API server's client submits
   * the requests of many HTTP connections, each from an I/O callback of its own, and a
   * microtask flush published each alone (one publish, and one delivery, per request).
   */
  const pending = new Map<string, Pending>()
  let flushScheduled = false
  let turnFlushScheduled = false
  /** Publish failures found after `send` returned: counted here, logged by `reportSends`. */
  const sendFailures: Array<string> = []

  /**
   * Tracing: one envelope's span as `traceparent`; several, in a coalesced message, as
   * `synod-traceparent: <index>=<traceparent>,…` (indexes into the array).
   */
  const traceHeaders = (parts: number, traces: ReadonlyArray<Traced>) => {
    const h = headers()
    if (parts === 1) h.set(Trace.header, traces[0]!.value)
    else h.set(traceBatchHeader, traces.map((t) => `${t.index}=${t.value}`).join(","))
    return h
  }

  const publishNow = (
    subject: string,
    parts: ReadonlyArray<string | Uint8Array>,
    traces: ReadonlyArray<Traced> | undefined
  ): void => {
    const data = parts.length === 1 ? parts[0]! : joinParts(parts)
    if (HopLog.enabled()) HopLog.mark(`publish ${subject} ${parts.length} ${data.length}`)
    try {
      const body = sealer === undefined ? data : sealer.seal(subject, data)
      if (traces === undefined) client.publish(subject, body)
      else client.publish(subject, body, { headers: traceHeaders(parts.length, traces) })
      stats.countUnsafe("published", parts.length)
    } catch (cause) {
      stats.countUnsafe("publishErrors", parts.length)
      if (sendFailures.length < 100) sendFailures.push(`publish refused on ${subject}: ${errorMessage(cause)}`)
    }
  }

  const flushPending = (): void => {
    flushScheduled = false
    for (const [subject, batch] of pending) publishNow(subject, batch.parts, batch.traces)
    pending.clear()
  }
  const flushTurn = (): void => {
    turnFlushScheduled = false
    flushPending()
  }

  /**
   * `trace`: the `traceparent` of the envelope's span (tracing on), which the message's
   * header carries. `request`: a client's request, flushed at the end of the turn.
   */
  const enqueue = (subject: string, json: string | Uint8Array, trace: string | undefined, request: boolean): void => {
    // UTF-8 takes at most three bytes per UTF-16 unit (`send` passes bytes when that bound is too high);
    // a trace's header entry counts against the message's size too
    const size =
      (typeof json === "string" ? json.length * 3 : json.length) + (trace === undefined ? 0 : trace.length + 8)
    let batch = pending.get(subject)
    if (batch !== undefined && batch.bytes + size + 1 > maxBytes) {
      publishNow(subject, batch.parts, batch.traces)
      pending.delete(subject)
      batch = undefined
    }
    if (batch === undefined) {
      batch = { parts: [json], bytes: size + 2 }
      pending.set(subject, batch)
    } else {
      batch.parts.push(json)
      batch.bytes += size + 1
    }
    if (trace !== undefined) (batch.traces ??= []).push({ index: batch.parts.length - 1, value: trace })
    if (request) {
      if (!turnFlushScheduled) {
        turnFlushScheduled = true
        setImmediate(flushTurn)
      }
    } else if (!flushScheduled) {
      flushScheduled = true
      queueMicrotask(flushPending)
    }
  }

  const subjectOf = Subjects.sendSubjects(cluster)

  /**
   * Hands `envelope` over at once; what is left to do after (counting and logging a
   * refused send) comes back as an effect, `undefined` when there is nothing.
   */
  const sendUnsafe = (to: Address.Address, envelope: Message.Envelope): Effect.Effect<void> | undefined => {
    // trust split (issue 14): a Request to a replica goes to its request subject
    const subject = subjectOf(to, envelope.message)
    if (Option.isNone(subject)) return dropSend("not an address", to)
    // a listener in this process: in memory, on whichever subject it would have come
    // (a span attached to the envelope goes with it: it is the same object)
    const here = local.get(to)
    if (here !== undefined) return deliverLocally(here, envelope)
    if (!isConnectedUnsafe()) return dropSend("NATS unreachable", to)
    const span = withTrace ? Trace.of(envelope) : undefined
    // only a Request or a Read to a replica goes to a request subject (Subjects.sendSubject)
    const request = envelope.message._tag === "Request" || envelope.message._tag === "Read"
    // a message too large to bound by its length is encoded to bytes here, once per
    // message (`Codec.encodeBytes`), rather than measured here and encoded by the client
    const json = Codec.encode(envelope)
    const part = json.length * 3 <= maxBytes ? json : Codec.encodeBytes(envelope)
    if (HopLog.enabled()) HopLog.mark(`send ${to} ${envelope.message._tag} ${part.length}`)
    enqueue(subject.value, part, span === undefined ? undefined : Trace.format(span), request)
    return sendFailures.length > 0 ? reportSends : undefined
  }

  const send = (to: Address.Address, envelope: Message.Envelope): Effect.Effect<void> =>
    Effect.suspend(() => sendUnsafe(to, envelope) ?? Effect.void)

  const reportSends = Effect.suspend(() => {
    const failures = sendFailures.splice(0)
    return Effect.forEach(failures, (reason) => Effect.logWarning("dropping a send", { reason }), { discard: true })
  })

  /** What the subscription callback could not deliver, for the reporting fiber to count and log. */
  type Problem =
    | { readonly _tag: "Ended"; readonly error: Error }
    | { readonly _tag: "Oversized"; readonly subject: string; readonly size: number }
    | { readonly _tag: "Undecodable"; readonly subject: string; readonly reason: string }
    /** Decoded, but not what its subject may carry (`Subjects.refusal`). */
    | { readonly _tag: "Refused"; readonly subject: string; readonly reason: string }
    /** No valid MAC, or a replay (`ClusterKey`). */
    | { readonly _tag: "Unauthenticated"; readonly subject: string; readonly refusal: ClusterKey.Refusal }
    /** The mailbox was full: `overflow.count` says how many were dropped since the last report. */
    | { readonly _tag: "Overflow" }

  /** A dropped message's log line, counted by `kind`. */
  const dropped = (kind: string, message: string, subject: string, reason: string): LogBudget.Line => ({
    kind,
    message,
    fields: { subject, reason },
    count: 1
  })
  /** The log line of a problem; `undefined`: logged apart (an ended subscription) or summed up (overflow). */
  const lineOf = (p: Problem): LogBudget.Line | undefined => {
    switch (p._tag) {
      case "Oversized":
        return dropped(
          p._tag,
          "dropping an oversized message",
          p.subject,
          `${p.size} bytes exceeds the limit of ${maxBytes}`
        )
      case "Undecodable":
        return dropped(p._tag, "dropping an undecodable message", p.subject, p.reason)
      case "Refused":
        return dropped(p._tag, "refusing a message", p.subject, p.reason)
      case "Unauthenticated":
        return dropped(
          p.refusal.kind,
          p.refusal.kind === "replayed" ? "refusing a replayed message" : "refusing an unauthenticated message",
          p.subject,
          p.refusal.reason
        )
      default:
        return undefined
    }
  }

  /** The counter of a problem (an overflow is counted apart, `Listener.overflow`). */
  const eventOf = (p: Problem): StatsEvent | undefined => {
    switch (p._tag) {
      case "Ended":
        return "subscriptionErrors"
      case "Oversized":
        return "oversized"
      case "Undecodable":
        return "decodeErrors"
      case "Refused":
        return "refused"
      case "Unauthenticated":
        return p.refusal.kind
      case "Overflow":
        return undefined
    }
  }

  /**
   * Counts and logs what could not be delivered; runs off the hot path, in a fiber of its
   * own. Each kind of line within `LogBudget`'s bounds: a publisher of garbage gets a few
   * lines and a count, not a line per message. Problems the full queue refused
   * (`unqueued`, a burst of garbage read in one go) are counted all the same, and summed up.
   */
  const report = (
    subject: string,
    problems: Queue.Dequeue<Problem>,
    overflow: { count: number },
    unqueued: Map<StatsEvent, number>
  ) =>
    Effect.gen(function* () {
      const budget = new LogBudget.LogBudget(5, dropLogWindowMs)
      const write = (line: LogBudget.Line) => Effect.logWarning(line.message, line.fields)
      while (true) {
        const due = budget.nextDue(yield* Clock.currentTimeMillis)
        const batch =
          due === undefined
            ? yield* Queue.takeAll(problems)
            : Option.getOrElse(
                yield* Queue.takeAll(problems).pipe(
                  Effect.timeoutOption(Math.max(0, due - (yield* Clock.currentTimeMillis)))
                ),
                () => []
              )
        const now = yield* Clock.currentTimeMillis
        for (const { line, more, windowMs } of budget.due(now)) {
          yield* Effect.logWarning(`${line.message} (and ${more} more in ${windowMs / 1000} s)`, line.fields)
        }
        for (const p of batch) {
          const event = eventOf(p)
          if (event !== undefined) yield* stats.count(event)
          if (p._tag === "Ended")
            yield* Effect.logError("NATS ended a subscription", { subject, error: p.error.message })
          const line = lineOf(p)
          if (line !== undefined && budget.admit(line, now)) yield* write(line)
        }
        for (const [event, n] of unqueued) {
          yield* stats.count(event, n)
          const line = {
            kind: "Unqueued",
            message: "dropping messages faster than they are reported",
            fields: { subject, [event]: n },
            count: n
          }
          if (budget.admit(line, now)) yield* write(line)
        }
        unqueued.clear()
        if (overflow.count > 0) {
          const n = overflow.count
          overflow.count = 0
          yield* stats.count("inboxOverflow", n)
          const line = {
            kind: "Overflow",
            message: "listener inbox full; dropped messages",
            fields: { subject, dropped: n },
            count: n
          }
          if (budget.admit(line, now)) yield* write(line)
        }
      }
    })

  const listen = (address: Address.Address) =>
    Effect.gen(function* () {
      // trust split (issue 14): the listener's own subject, and a replica's request subject
      const found = Subjects.listenSubjects(cluster, address)
      if (Option.isNone(found)) {
        return yield* new Transport.TransportError({
          reason: `cannot listen on ${JSON.stringify(address)}: not an address`
        })
      }
      const [own, ...others] = found.value
      const subject = own!.subject
      const ownChannel = own!.channel
      const mailbox = yield* Queue.bounded<Message.Envelope>(capacity)
      const problems = yield* Queue.dropping<Problem>(capacity)
      yield* Effect.addFinalizer(() => Effect.andThen(Queue.shutdown(problems), Queue.shutdown(mailbox)))
      const overflow = { count: 0 }
      const unqueued = new Map<StatsEvent, number>()
      /** Hands a problem to `report`; one the full queue refuses is counted there all the same. */
      const problem = (p: Problem): void => {
        if (Queue.offerUnsafe(problems, p)) return
        const event = eventOf(p)
        if (event !== undefined) unqueued.set(event, (unqueued.get(event) ?? 0) + 1)
      }
      if (localDelivery) {
        let listeners = local.get(address)
        if (listeners === undefined) local.set(address, (listeners = new Set()))
        const mine = listeners
        mine.add(mailbox)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            mine.delete(mailbox)
            if (mine.size === 0 && local.get(address) === mine) local.delete(address)
          })
        )
      }
      // authenticated envelopes (issue 14): each listener its own replay window, so two
      // listeners on one address both get a message
      const opener = keys === undefined ? undefined : ClusterKey.opener(keys)
      /**
       * Whether `msg` must carry a valid MAC (with keys): a protocol message; an answer to a
       * client of this process (only servers hold the key, and they seal all they send);
       * a request in the scope of a server's own clients (`serverIds`), so that nobody
       * without the key can take the place of one, use up its sequence numbers and have
       * the replicas answer its real commands with the outcome of forged ones.
       */
      const required = (msg: Msg): boolean => {
        if (msg.subject === subject) return true
        const scope = msg.subject.slice(msg.subject.lastIndexOf(".") + 1)
        return scope === sender || servers.has(scope) || opener!.knows(scope)
      }
      let refused: Error | undefined
      /**
       * The socket's read path: size check, decode and validate, hand over. Decoding here
       * rather than in a fiber of its own saves a turn of the event loop per message (each
       * hand-off between fibers is one); what cannot be delivered goes to `report`.
       */
      const deliver = (err: Error | null, msg: Msg): void => {
        if (err !== null) {
          refused = err
          problem({ _tag: "Ended", error: err })
          return
        }
        stats.countUnsafe("received")
        let data = msg.data
        const size = data.length
        if (size > (data[0] === ClusterKey.mark ? maxBytes + ClusterKey.overheadBytes : maxBytes)) {
          problem({ _tag: "Oversized", subject: msg.subject, size })
          return
        }
        // authenticated envelopes (issue 14): check and strip the MAC line
        if (opener !== undefined || data[0] === ClusterKey.mark) {
          const opened = opener === undefined ? ClusterKey.strip(data) : opener.open(msg.subject, data, required(msg))
          if (!(opened instanceof Uint8Array)) {
            problem({ _tag: "Unauthenticated", subject: msg.subject, refusal: opened })
            return
          }
          data = opened
        }
        const decoded = Codec.decodeMany(data)
        if (Result.isFailure(decoded)) {
          problem({ _tag: "Undecodable", subject: msg.subject, reason: decoded.failure.reason })
          return
        }
        if (HopLog.enabled()) {
          const first = decoded.success[0]
          HopLog.mark(
            `recv ${address} ${first !== undefined && Result.isSuccess(first) ? first.success.message._tag : "?"}`
          )
        }
        // tracing: the senders' spans, for the envelopes that came with one
        const traces = withTrace && msg.headers !== undefined ? received(msg.headers) : undefined
        // trust split (issue 14): a message on another subject of this listener is a request
        const channel = msg.subject === subject ? ownChannel : "request"
        for (let index = 0; index < decoded.success.length; index++) {
          const item = decoded.success[index]!
          if (Result.isFailure(item)) {
            problem({ _tag: "Undecodable", subject: msg.subject, reason: item.failure.reason })
            continue
          }
          const refusal = Subjects.refusal(channel, msg.subject, item.success.message)
          if (refusal !== undefined) {
            problem({ _tag: "Refused", subject: msg.subject, reason: refusal })
            continue
          }
          const trace = traces?.get(index)
          if (trace !== undefined) Trace.attach(item.success, trace)
          if (Queue.offerUnsafe(mailbox, item.success)) stats.countUnsafe("delivered")
          else if (overflow.count++ === 0) Queue.offerUnsafe(problems, { _tag: "Overflow" })
        }
      }
      yield* Effect.acquireRelease(
        Effect.try({
          try: () => client.subscribe(subject, { callback: deliver }),
          catch: (cause) =>
            new Transport.TransportError({ reason: `cannot subscribe to ${subject}: ${errorMessage(cause)}`, cause })
        }),
        (sub) => Effect.sync(() => sub.unsubscribe())
      )
      for (const other of others) {
        yield* Effect.acquireRelease(
          Effect.try({
            try: () => client.subscribe(other.subject, { callback: deliver }),
            catch: (cause) =>
              new Transport.TransportError({
                reason: `cannot subscribe to ${other.subject}: ${errorMessage(cause)}`,
                cause
              })
          }),
          (sub) => Effect.sync(() => sub.unsubscribe())
        )
      }
      // one round trip: the server has the subscription, or has refused it, once the PONG is back
      yield* Effect.tryPromise(() => client.flush()).pipe(Effect.timeoutOption(subscribeTimeout), Effect.ignore)
      if (refused !== undefined) {
        yield* stats.count("subscriptionErrors")
        return yield* new Transport.TransportError({
          reason: `NATS refused the subscription to ${subject}: ${refused.message}`,
          cause: refused
        })
      }
      yield* report(subject, problems, overflow, unqueued).pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.logError("listener stopped", { subject }, cause)
        ),
        Effect.forkScoped
      )
      return mailbox as Transport.Mailbox
    })

  // The connection's own write buffer: `publish` fills it and the client writes it to the
  // socket on a microtask, behind whatever else is queued then. Its protocol handler's
  // `flushPending` writes it at once; not in the client's typed API, so looked up and skipped
  // if a version of the client lacks it (sends then leave on their own, as before).
  const protocol = (client as unknown as { readonly protocol?: { readonly flushPending?: unknown } }).protocol
  const writeNow =
    typeof protocol?.flushPending === "function" ? (protocol.flushPending as () => void).bind(protocol) : undefined
  const flush = (): void => {
    if (pending.size > 0) flushPending()
    writeNow?.()
  }

  return Transport.Transport.of({ send, sendUnsafe, listen, maxMessageBytes: maxBytes, flush })
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
    ? layerNoDeps({ ...options, sender: options.sender ?? options.name }).pipe(
        Layer.provideMerge(NatsConnection.layer(options))
      )
    : Layer.effectContext(Effect.fail(invalidCluster(options.cluster)))

/**
 * The in-process `Transport`: every actor of a test (or of the embedded single-process
 * cluster) in one runtime, with every message encoded and decoded through the wire codec
 * so codec bugs show here before they show on NATS (`encode: false` hands envelopes over
 * as they are, for the embedded cluster, where nothing leaves the process).
 *
 * All randomness comes from the `Random` in scope when the layer is built and all time
 * from `Clock`, so under `Random.withSeed` and a test clock the delivery order is a pure
 * function of the seed. Fault knobs, all changeable while running: loss, duplication,
 * delay (which also reorders), one-way cuts, partitions and isolation of nodes.
 *
 * A "node" is the id part of an address (`replica/s1`, `leader/s1` and `acceptor/s1` are
 * node `s1`); fault specs name either a whole address or a node id.
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, FiberSet, Layer, Queue, Random, Result } from "effect"
import * as Address from "./Address.ts"
import * as Codec from "./Codec.ts"
import * as Limits from "./Limits.ts"
import { Envelope, type Message } from "./Message.ts"
import { Transport } from "./Transport.ts"

export interface Faults {
  /** Probability that a message is dropped. */
  readonly lossRate: number
  /** Probability that a message is delivered twice. */
  readonly duplicateRate: number
  /** Delay of each delivered copy, uniform in [minDelay, maxDelay] milliseconds. */
  readonly minDelay: number
  readonly maxDelay: number
  /**
   * The second copy of a duplicated message arrives up to this many ms late (a replay, as
   * after a reconnect); 0: duplicates are delayed like any message.
   */
  readonly maxReplayDelay: number
}

export const noFaults: Faults = { lossRate: 0, duplicateRate: 0, minDelay: 0, maxDelay: 0, maxReplayDelay: 0 }

export interface TraceEntry {
  readonly time: number
  readonly event: "deliver" | "drop" | "oversized" | "undeliverable" | "decode-error"
  readonly from: string
  readonly to: string
  readonly tag: string
  /** When the message was sent (a drop at sending: `time`). */
  readonly sent: number
  /** A second copy made by the duplication fault, or a message sent again by `replay`. */
  readonly copy?: "duplicate" | "replay"
  /** The message, once decoded (deliveries and undeliverable ones). */
  readonly message?: Message
}

export interface Stats {
  readonly sent: number
  readonly delivered: number
  readonly dropped: number
  readonly duplicated: number
  readonly undeliverable: number
  readonly decodeErrors: number
  /** Dropped for exceeding `maxMessageBytes`. */
  readonly oversized: number
}

export interface Options {
  readonly faults?: Partial<Faults>
  /** Record every delivery and drop (for determinism checks and replay traces). */
  readonly trace?: boolean
  /** Called synchronously after each delivery or drop, e.g. to print a live trace. */
  readonly onTrace?: (entry: TraceEntry) => void
  /** Remember the last N messages sent, so `replay` can send them again (0: off). */
  readonly replayBuffer?: number
  /**
   * The largest encoded message delivered, in UTF-8 bytes (default: NATS's 1 MiB); larger
   * ones are dropped and counted as `oversized`, as NATS refuses them.
   */
  readonly maxMessageBytes?: number
  /**
   * Encode every envelope and decode it on delivery (default true), as a network would.
   * False hands the envelope itself to the receivers (messages are immutable): no codec
   * work and no size limit, for the embedded cluster. Tests and the simulator keep it on.
   */
  readonly encode?: boolean
}

export class InMemoryBus extends Context.Service<
  InMemoryBus,
  {
    setFaults(faults: Partial<Faults>): Effect.Effect<void>
    /** Drops messages from `from` to `to` (one way). */
    cut(from: string, to: string): Effect.Effect<void>
    /** Messages between different groups are dropped; nodes in no group are unaffected. */
    partition(groups: ReadonlyArray<ReadonlyArray<string>>): Effect.Effect<void>
    /** Drops every message from or to `node`. */
    isolate(node: string): Effect.Effect<void>
    /** Ends the isolation of `node` (other faults stay). */
    reconnect(node: string): Effect.Effect<void>
    /**
     * Sends up to `count` randomly chosen recent messages again, as a reconnecting client
     * re-sending its buffer would (needs `replayBuffer`); with `node`, only messages that
     * node sent (the last `replayBuffer` of them). Answers how many were sent.
     */
    replay(count: number, node?: string): Effect.Effect<number>
    /** Removes cuts, partitions and isolation (not loss, duplication or delay). */
    readonly heal: Effect.Effect<void>
    readonly trace: Effect.Effect<ReadonlyArray<TraceEntry>>
    readonly stats: Effect.Effect<Stats>
    /** Sends raw text to `to`, bypassing the encoder: for tests of bad input. */
    injectRaw(from: string, to: Address.Address, payload: string | Uint8Array): Effect.Effect<void>
  }
>()("@synod/core/InMemoryBus") {}

const matches = (spec: string, address: string): boolean => spec === address || spec === Address.id(address)

/** Builds the bus; the transport and the control service share it. */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const rng = yield* Random.Random
  const clock = yield* Clock.Clock
  const inFlight = yield* FiberSet.make()
  let faults: Faults = { ...noFaults, ...options.faults }
  const listeners = new Map<string, Set<Queue.Queue<Envelope>>>()
  const cuts: Array<readonly [string, string]> = []
  let groups: ReadonlyArray<ReadonlyArray<string>> = []
  const isolated = new Set<string>()
  const trace: Array<TraceEntry> = []
  /** What travels: encoded text or bytes, or, with `encode: false`, the envelope itself. */
  type Payload = string | Uint8Array | Envelope
  type Sent = readonly [string, Address.Address, Payload]
  const recent: Array<Sent> = []
  const recentBy = new Map<string, Array<Sent>>()
  /** Keeps the last `replayBuffer` messages of `list` (trimmed in bulk: sends are hot). */
  const remember = (list: Array<Sent>, sent: Sent) => {
    list.push(sent)
    if (list.length > 2 * replayBuffer) list.splice(0, list.length - replayBuffer)
  }
  const replayBuffer = options.replayBuffer ?? 0
  const recording = options.trace === true || options.onTrace !== undefined
  const stats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, undeliverable: 0, decodeErrors: 0, oversized: 0 }
  const maxMessageBytes = options.maxMessageBytes ?? Limits.defaultMaxMessageBytes
  const encode = options.encode ?? true
  // a string's UTF-8 length is at most three times its length: most need no counting
  const oversized = (payload: Payload): boolean =>
    typeof payload === "string"
      ? payload.length * 3 > maxMessageBytes && Limits.utf8Bytes(payload) > maxMessageBytes
      : payload instanceof Uint8Array && payload.length > maxMessageBytes

  const groupOf = (address: string): number => groups.findIndex((g) => g.some((spec) => matches(spec, address)))

  const blocked = (from: string, to: string): boolean => {
    for (const node of isolated) if (matches(node, from) || matches(node, to)) return true
    for (const [a, b] of cuts) if (matches(a, from) && matches(b, to)) return true
    if (groups.length > 0) {
      const gf = groupOf(from)
      const gt = groupOf(to)
      if (gf !== -1 && gt !== -1 && gf !== gt) return true
    }
    return false
  }

  const record = (
    event: TraceEntry["event"],
    from: string,
    to: string,
    tag: string,
    sent?: number,
    copy?: Copy,
    message?: Message
  ) => {
    if (!recording) return
    const time = clock.currentTimeMillisUnsafe()
    const entry: TraceEntry = {
      time,
      event,
      from,
      to,
      tag,
      sent: sent ?? time,
      ...(copy === undefined ? {} : { copy }),
      ...(message === undefined ? {} : { message })
    }
    if (options.trace === true) trace.push(entry)
    options.onTrace?.(entry)
  }

  const tagOf = (payload: Payload): string => {
    if (payload instanceof Envelope) return payload.message._tag
    if (typeof payload !== "string") return "?"
    const m = /"_tag":"([A-Za-z0-9]+)"/.exec(payload.slice(payload.indexOf('"message"')))
    return m?.[1] ?? "?"
  }

  type Copy = TraceEntry["copy"]
  /** The send time, only when a trace needs it. */
  const sentAt = (): number | undefined => (recording ? clock.currentTimeMillisUnsafe() : undefined)

  const deliver = (from: string, to: Address.Address, payload: Payload, sent?: number, copy?: Copy): void => {
    if (blocked(from, to)) {
      stats.dropped++
      record("drop", from, to, tagOf(payload), sent, copy)
      return
    }
    const decoded = payload instanceof Envelope ? Result.succeed(payload) : Codec.decode(payload)
    if (Result.isFailure(decoded)) {
      stats.decodeErrors++
      record("decode-error", from, to, "?", sent, copy)
      return
    }
    const queues = listeners.get(to)
    if (queues === undefined || queues.size === 0) {
      stats.undeliverable++
      record("undeliverable", from, to, decoded.success.message._tag, sent, copy, decoded.success.message)
      return
    }
    stats.delivered++
    record("deliver", from, to, decoded.success.message._tag, sent, copy, decoded.success.message)
    for (const q of queues) Queue.offerUnsafe(q, decoded.success)
  }

  /**
   * `copy`: a duplicate's second copy arrives up to `maxReplayDelay` late. Delivered at
   * once when no delay is drawn (`undefined`: nothing left to do), else the effect that
   * delivers it later.
   */
  const scheduleUnsafe = (
    from: string,
    to: Address.Address,
    payload: Payload,
    copy?: Copy
  ): Effect.Effect<void> | undefined => {
    const max = copy === "duplicate" && faults.maxReplayDelay > 0 ? faults.maxReplayDelay : faults.maxDelay
    const span = max - faults.minDelay
    const delay = faults.minDelay + (span > 0 ? Math.floor(rng.nextDoubleUnsafe() * (span + 1)) : 0)
    const sent = sentAt()
    if (delay <= 0) {
      deliver(from, to, payload, sent, copy)
      return undefined
    }
    return FiberSet.run(
      inFlight,
      Effect.sleep(delay).pipe(Effect.andThen(Effect.sync(() => deliver(from, to, payload, sent, copy))))
    ).pipe(Effect.asVoid)
  }
  const schedule = (from: string, to: Address.Address, payload: Payload, copy?: Copy) =>
    Effect.suspend(() => scheduleUnsafe(from, to, payload, copy) ?? Effect.void)

  /**
   * A send, as far as it goes without a fiber: what is left (a delayed delivery's timer)
   * comes back as an effect, `undefined` when nothing is. The order of the random draws
   * is `send`'s as it always was, so a simulator's seed plays out as before.
   */
  const sendRawUnsafe = (from: string, to: Address.Address, payload: Payload): Effect.Effect<void> | undefined => {
    stats.sent++
    if (oversized(payload)) {
      stats.oversized++
      record("oversized", from, to, tagOf(payload))
      return undefined
    }
    if (replayBuffer > 0) {
      remember(recent, [from, to, payload])
      const node = Address.id(from as Address.Address)
      let mine = recentBy.get(node)
      if (mine === undefined) recentBy.set(node, (mine = []))
      remember(mine, [from, to, payload])
    }
    if (blocked(from, to) || (faults.lossRate > 0 && rng.nextDoubleUnsafe() < faults.lossRate)) {
      stats.dropped++
      record("drop", from, to, tagOf(payload))
      return undefined
    }
    if (faults.duplicateRate > 0 && rng.nextDoubleUnsafe() < faults.duplicateRate) {
      stats.duplicated++
      const first = scheduleUnsafe(from, to, payload)
      // the second copy's delay is drawn after the first's timer is set, as it always was
      if (first !== undefined) return Effect.andThen(first, schedule(from, to, payload, "duplicate"))
      return scheduleUnsafe(from, to, payload, "duplicate")
    }
    return scheduleUnsafe(from, to, payload)
  }
  const sendRaw = (from: string, to: Address.Address, payload: Payload) =>
    Effect.suspend(() => sendRawUnsafe(from, to, payload) ?? Effect.void)

  const sendUnsafe = encode
    ? (to: Address.Address, envelope: Envelope) => sendRawUnsafe(envelope.from, to, Codec.encode(envelope))
    : (to: Address.Address, envelope: Envelope) => sendRawUnsafe(envelope.from, to, envelope)

  const transport = Transport.of({
    maxMessageBytes,
    send: (to, envelope) => Effect.suspend(() => sendUnsafe(to, envelope) ?? Effect.void),
    sendUnsafe,
    listen: (address) =>
      Effect.acquireRelease(
        Effect.gen(function* () {
          const queue = yield* Queue.unbounded<Envelope>()
          let set = listeners.get(address)
          if (set === undefined) listeners.set(address, (set = new Set()))
          set.add(queue)
          return queue
        }),
        (queue) =>
          Effect.sync(() => {
            listeners.get(address)?.delete(queue)
          }).pipe(Effect.andThen(Queue.shutdown(queue)))
      )
  })

  const control = InMemoryBus.of({
    setFaults: (f) =>
      Effect.sync(() => {
        faults = { ...faults, ...f }
      }),
    cut: (from, to) =>
      Effect.sync(() => {
        cuts.push([from, to])
      }),
    partition: (g) =>
      Effect.sync(() => {
        groups = g.map((group) => [...group])
      }),
    isolate: (node) =>
      Effect.sync(() => {
        isolated.add(node)
      }),
    reconnect: (node) =>
      Effect.sync(() => {
        isolated.delete(node)
      }),
    replay: (count, node) =>
      Effect.suspend(() => {
        const list = node === undefined ? recent : (recentBy.get(node) ?? [])
        const pool = list.slice(-replayBuffer)
        const n = Math.min(count, pool.length)
        const picks: Array<Sent> = []
        for (let i = 0; i < n; i++) picks.push(pool[Math.floor(rng.nextDoubleUnsafe() * pool.length)]!)
        return Effect.as(
          Effect.forEach(picks, ([from, to, payload]) => schedule(from, to, payload, "replay"), { discard: true }),
          n
        )
      }),
    heal: Effect.sync(() => {
      cuts.length = 0
      groups = []
      isolated.clear()
    }),
    trace: Effect.sync(() => [...trace]),
    stats: Effect.sync(() => ({ ...stats })),
    injectRaw: (from, to, payload) => sendRaw(from, to, payload)
  })

  return { transport, control } as const
})

/** The bus as a layer providing both `Transport` and `InMemoryBus`. */
export const layer = (options: Options = {}): Layer.Layer<Transport | InMemoryBus> =>
  Layer.effectContext(
    Effect.map(make(options), ({ control, transport }) =>
      Context.make(Transport, transport).pipe(Context.add(InMemoryBus, control))
    )
  )

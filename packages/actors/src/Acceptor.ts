/**
 * The acceptor: Paxos's memory. It promises not to accept ballots below its promise and
 * remembers, per slot, the highest-ballot pvalue it accepted (state reduction, docs/protocol.md#acceptor).
 *
 * Rules (docs/protocol.md#acceptor): on P1a it raises its promise to a higher ballot; on P2a it
 * accepts when the ballot is **at least** its promise and adopts it (the `>=` variant: an
 * acceptor that missed a P1a can still vote, B5). Every reply carries its current promise
 * and echoes the request, so the leader can route it and detect preemption.
 *
 * Garbage collection (docs/protocol.md#garbage-collection): replicas report the slotOut of their last durable
 * snapshot (`Progress`). Once `f + 1` replicas (all of them, if there are fewer) of the
 * configuration that holds slot `w - 1` report a slot `w` (`Configuration.gcWatermark`,
 * docs/reconfiguration.md), the acceptor forgets every pvalue below `w` and keeps `w` as its GC watermark.
 * Safe because a slot below `w` is decided, and its effect is on the disks of `f + 1`
 * replicas: with at most `f` of them lost, one survives to serve it by state transfer, and
 * no one needs the decision itself again. The watermark is durable with the forgetting and
 * goes out in every P1b, so a new leader skips those slots instead of reading "no pvalue"
 * as "anything may be proposed here" (B11); a P2a below it is refused.
 *
 * Hosted by internal/Host.ts: it drains the whole mailbox at once, makes the batch's
 * changes durable with one append (group commit), and only then replies (B2).
 *
 * @since 0.1.0
 */
import {
  Address,
  Ballot,
  type ClusterConfig,
  Codec,
  type Command,
  Configuration,
  Limits,
  type Message,
  Monotonic,
  Storage,
  Transport,
  Trusted
} from "@synod/core"
import { Effect } from "effect"
import * as Host from "./internal/Host.ts"
import { PlantedBugs } from "./internal/PlantedBugs.ts"
import { Probe } from "./internal/Probe.ts"
import * as Metrics from "./Metrics.ts"

/** What the acceptor is fed: a message of its inbound union. */
export interface Input {
  readonly from: Address.Address
  readonly message: Message.AcceptorInbound
}

/** What observers learn, in order: each reply's promise and accept, and each garbage collection. */
export type Event =
  | { readonly _tag: "Promised"; readonly ballot: Ballot.Ballot }
  | { readonly _tag: "Accepted"; readonly pvalue: Command.PValue }
  | { readonly _tag: "Forgot"; readonly watermark: number }

/** The acceptor's decisions, without I/O. Mutable: one instance per running acceptor. */
export class AcceptorCore {
  readonly out = new Host.Outbox<Storage.AcceptorRecord, never, Event>()
  promised: Ballot.Ballot
  /** The GC watermark: every slot below it is forgotten. */
  watermark: number
  readonly accepted: Map<number, Command.PValue>
  /** B5 planted bug: accept only when the ballot equals the promise. */
  private readonly strict: boolean
  /** Most bytes of pvalues in one P1b page (undefined: one page, however large — the unpagedP1b planted bug). */
  private readonly pageBytes: number | undefined
  /** How long an accept from the current leader protects it from other leaders' scouts (ms; 0: off). */
  private readonly leaseMs: number
  private readonly now: () => number
  /** When this acceptor last accepted new work (a pvalue it did not hold) under its current promise. */
  private lastAccept = Number.NEGATIVE_INFINITY
  /**
   * The ballot whose leader said it stopped leading (an inactive heartbeat): its lease is
   * over for good, so a P2a of it still in flight does not renew it and hold the
   * successor's scout off for a whole lease.
   */
  private leaseEnded: Ballot.Ballot | undefined

  /**
   * The configuration history, from the replicas' Progress (the one of the report with the
   * highest slotOut: it knows the configuration of every slot reported so far), and the
   * latest durable slotOut of each replica it names: whose progress counts for which slot.
   */
  private history: Configuration.History | undefined
  private historyAt = 0
  private readonly reported = new Map<string, number>()
  /** Per leader, the watermark this acceptor last told it in a P2b. */
  private readonly told = new Map<Address.Address, number>()
  /** B11 planted bug: forget below the watermark, but never say so nor refuse below it. */
  private readonly silentGc: boolean
  /** Does confirming its promise's ballot grant a read lease (see the constructor's options)? */
  private readonly readLeases: boolean
  /** Does a `Confirm` at the promised ballot grant the read lease (false only with planted bug B23)? */
  private readonly confirmGrants: boolean

  constructor(
    state: Storage.AcceptorState,
    options: {
      readonly strictAccept?: boolean
      readonly leaseMs?: number
      readonly now?: () => number
      /**
       * The cluster config's acceptors and replicas, its configuration until the replicas
       * report another (default: none, so nothing is ever forgotten).
       */
      readonly cluster?: {
        readonly acceptors: ReadonlyArray<string>
        readonly leaders?: ReadonlyArray<string>
        readonly replicas: ReadonlyArray<string>
      }
      readonly silentGc?: boolean
      /** Does confirming the ballot it promised grant a read lease (`reads.lease`; default false)? */
      readonly readLeases?: boolean
      /** Planted bug B23: a `Confirm` at the promised ballot grants no read lease. */
      readonly confirmGrantsNothing?: boolean
      /** Planted bug B24: a restart with a promise on disk holds no other leader off. */
      readonly restartHoldsNothing?: boolean
      /** Most bytes of pvalues in one P1b page (default: no paging). */
      readonly pageBytes?: number
    } = {}
  ) {
    this.pageBytes = options.pageBytes
    const cluster = options.cluster
    this.history =
      cluster === undefined
        ? undefined
        : Configuration.initial({
            acceptors: cluster.acceptors,
            leaders: cluster.leaders ?? [],
            replicas: cluster.replicas
          })
    this.silentGc = options.silentGc === true
    this.promised = state.promised
    this.watermark = state.watermark
    this.accepted = new Map(state.accepted)
    this.strict = options.strictAccept === true
    this.leaseMs = options.leaseMs ?? 0
    this.now = options.now ?? (() => 0)
    this.readLeases = options.readLeases === true
    this.confirmGrants = options.confirmGrantsNothing !== true
    // It may have granted a read lease just before it stopped, and that is not on disk:
    // it holds every leader but the one of its promise off for a lease from its start.
    // An acceptor that never promised anything never confirmed anything either.
    if (this.readLeases && !Ballot.equals(this.promised, Ballot.bottom) && options.restartHoldsNothing !== true) {
      this.lastAccept = this.now()
    }
  }

  /**
   * Handles a P1a; the P1b page to send back. A higher ballot of *another* leader is not
   * promised while the current leader has had new work accepted within the lease: a
   * leader coming back from a long isolation must not depose a working one (B15). The
   * refusal answers with the current promise, which the scout ignores as lower and retries
   * later. Refusing a promise is always safe; it only delays a scout by at most the lease.
   *
   * The page holds the pvalues from slot `from` on (below `before`, when given), in slot
   * order, until the next one would take it past `pageBytes`; `next` then says where the
   * following page starts.
   * A P1a not promised (lower, or held off by the lease) gets a reply without pvalues: the
   * scout reads none from a reply whose ballot is not its own, and a refused scout resends
   * every retransmit period, so a page built each time (sorting every accepted slot, up
   * to a megabyte of JSON) loaded the acceptor of the working leader for nothing.
   */
  p1a(ballot: Ballot.Ballot, from = 1, before = Infinity): Message.P1b {
    const leased = ballot.leader !== this.promised.leader && this.now() - this.lastAccept < this.leaseMs
    if (Ballot.greaterThan(ballot, this.promised) && !leased) this.promised = ballot
    const { accepted, json, next } = Ballot.equals(ballot, this.promised)
      ? this.page(from, before)
      : { accepted: [], json: undefined, next: undefined }
    const reply = Trusted.p1b({
      ballot: this.promised,
      request: ballot,
      accepted,
      ...(this.watermark > 1 && !this.silentGc ? { watermark: this.watermark } : {}),
      ...(from > 1 ? { from } : {}),
      ...(before === Infinity ? {} : { before }),
      ...(next === undefined ? {} : { next })
    })
    // the page's pvalues were stringified to size it: its encoding reuses that text
    return json === undefined ? reply : Codec.p1bWithJson(reply, json)
  }

  /** The page of pvalues of slots in [`from`, `before`) (see `p1a`), and where the next one starts. */
  private page(
    from: number,
    before: number
  ): {
    readonly accepted: ReadonlyArray<Command.PValue>
    /** Each pvalue's JSON (`Codec.pvalueJson`), when they were measured. */
    readonly json: ReadonlyArray<string> | undefined
    readonly next: number | undefined
  } {
    const slots: Array<number> = []
    for (const slot of this.accepted.keys()) if (slot >= from && slot < before) slots.push(slot)
    slots.sort((a, b) => a - b)
    const accepted: Array<Command.PValue> = []
    const limit = this.pageBytes
    const json: Array<string> = []
    let bytes = 0
    for (const slot of slots) {
      const pv = this.accepted.get(slot)!
      if (limit !== undefined) {
        const text = Codec.pvalueJson(pv)
        const size = Limits.utf8Bytes(text) + 1
        // at least one pvalue per page: a batch always fits a page (Limits)
        if (accepted.length > 0 && bytes + size > limit) return { accepted, json, next: slot }
        bytes += size
        json.push(text)
      }
      accepted.push(pv)
    }
    return { accepted, json: limit === undefined ? undefined : json, next: undefined }
  }

  /**
   * Handles a P2a from leader `from`; the P2b to send back and the pvalue accepted, if any.
   * The reply carries the watermark when it moved since this acceptor last told `from`.
   */
  p2a(
    msg: Message.P2a,
    from?: Address.Address
  ): { readonly reply: Message.P2b; readonly accepted: Command.PValue | undefined } {
    if (msg.slot < this.watermark && !this.silentGc) {
      // forgotten: accepting would bring the slot back, and the leader must learn it is gone
      if (from !== undefined) this.told.set(from, this.watermark)
      return { reply: Trusted.p2b(this.promised, msg.ballot, msg.slot, this.watermark), accepted: undefined }
    }
    const ok = this.strict ? Ballot.equals(msg.ballot, this.promised) : !Ballot.lessThan(msg.ballot, this.promised)
    let accepted: Command.PValue | undefined
    if (ok) {
      // only new work renews the lease: a leader that can send but not hear keeps
      // retransmitting the same P2as, and must not hold off other leaders forever
      const before = this.accepted.get(msg.slot)
      if (this.renews(msg.ballot) && (before === undefined || !Ballot.equals(before.ballot, msg.ballot))) {
        this.lastAccept = this.now()
      }
      this.promised = msg.ballot
      accepted = Trusted.pvalue(msg.ballot, msg.slot, msg.value)
      this.accepted.set(msg.slot, accepted)
    }
    const tell = from !== undefined && !this.silentGc && this.watermark > (this.told.get(from) ?? 1)
    if (tell) this.told.set(from, this.watermark)
    return { reply: Trusted.p2b(this.promised, msg.ballot, msg.slot, tell ? this.watermark : undefined), accepted }
  }

  /** Does work at `ballot` renew the lease: not of a leader that said it stopped leading? */
  private renews(ballot: Ballot.Ballot): boolean {
    return this.leaseEnded === undefined || !Ballot.equals(this.leaseEnded, ballot)
  }

  /**
   * Handles a Confirm at `ballot`; the Confirmed to send back. Confirming the very ballot
   * it promised grants that leader a read lease (docs/protocol.md#read-leases): as after
   * new work, every other leader's P1a is refused for `leaseMs` from now, so the leader may
   * answer reads alone until its own, shorter, lease runs out. A promise below `ballot`
   * (it missed the P1a) confirms but grants nothing: it would hold off only the other
   * leaders of that promise.
   */
  confirm(ballot: Ballot.Ballot, round: number): Message.Confirmed {
    if (Ballot.equals(ballot, this.promised) && this.renews(ballot) && this.readLeases && this.confirmGrants) {
      this.lastAccept = this.now()
    }
    return Trusted.confirmed(this.promised, ballot, round)
  }

  /**
   * One input: what must be durable (a changed promise, an accept, a garbage collection)
   * goes to the outbox to persist; replies go out after it.
   */
  step({ from, message }: Input) {
    const before = this.promised
    switch (message._tag) {
      case "P1a": {
        const reply = this.p1a(message.ballot, message.from, message.before)
        if (!Ballot.equals(before, this.promised)) this.out.persist({ promised: this.promised, accepted: [] })
        this.out.event({ _tag: "Promised", ballot: reply.ballot })
        return this.out.send(from, reply)
      }
      case "P2a": {
        const { reply, accepted } = this.p2a(message, from)
        if (accepted !== undefined) this.out.persist({ promised: this.promised, accepted: [accepted] })
        else if (!Ballot.equals(before, this.promised)) this.out.persist({ promised: this.promised, accepted: [] })
        this.out.event({ _tag: "Promised", ballot: reply.ballot })
        if (accepted !== undefined) this.out.event({ _tag: "Accepted", pvalue: accepted })
        return this.out.send(from, reply)
      }
      case "Progress": {
        if (Address.role(from) !== "replica") return
        const w = this.progress(Address.id(from), message.slotOut, message.history)
        if (w === undefined) return
        this.out.persist({ promised: this.promised, accepted: [], watermark: w })
        return this.out.event({ _tag: "Forgot", watermark: w })
      }
      case "Confirm": {
        // a read-index confirmation: the promise as it is, nothing to write (a promise is
        // durable before any reply reveals it, and this reply leaves after those records)
        this.out.event({ _tag: "Promised", ballot: this.promised })
        return this.out.send(from, this.confirm(message.ballot, message.round))
      }
      case "Heartbeat": {
        // the leader of its promise resigned (an inactive heartbeat: its process stops
        // cleanly): its lease ends now, so the successor's P1a is promised at once
        if (
          !message.active &&
          Address.role(from) === "leader" &&
          Address.id(from) === message.ballot.leader &&
          Ballot.equals(message.ballot, this.promised)
        ) {
          this.lastAccept = Number.NEGATIVE_INFINITY
          this.leaseEnded = message.ballot
        }
        return
      }
    }
  }

  /**
   * Records replica `replica`'s durable slotOut; returns the new watermark when enough
   * replicas passed a higher one (the pvalues below it are dropped), else undefined.
   */
  progress(replica: string, slotOut: number, history?: Configuration.History): number | undefined {
    if (this.history === undefined) return undefined
    const last = (h: Configuration.History) => h[h.length - 1]!.decidedAt
    if (history !== undefined && slotOut >= this.historyAt && last(history) >= last(this.history)) {
      this.history = history
      this.historyAt = slotOut
      // only the replicas the history names count (and are remembered)
      const named = new Set(Configuration.everyone(history, "replicas"))
      for (const r of this.reported.keys()) if (!named.has(r)) this.reported.delete(r)
    }
    if (!this.history.some((e) => e.members.replicas.includes(replica))) return undefined
    // the latest report, not the highest: a replica that lost its disk holds nothing any more
    this.reported.set(replica, slotOut)
    const w = Configuration.gcWatermark(this.history, this.reported, this.watermark)
    if (w <= this.watermark) return undefined
    this.watermark = w
    for (const slot of this.accepted.keys()) if (slot < w) this.accepted.delete(slot)
    return w
  }
}

export interface Status {
  readonly id: string
  readonly promised: Ballot.Ballot
  /** Every slot below it is forgotten. */
  readonly watermark: number
  /** Slots with an accepted pvalue. */
  readonly accepted: number
}

const isInbound = (m: Message.Message): m is Message.AcceptorInbound =>
  m._tag === "P1a" || m._tag === "P2a" || m._tag === "Progress" || m._tag === "Heartbeat" || m._tag === "Confirm"

/** Merges a batch's records into one append: the last promise, every accept, the highest watermark. */
export const mergeRecords = (records: ReadonlyArray<Storage.AcceptorRecord>): Storage.AcceptorRecord => {
  const accepted: Array<Command.PValue> = []
  let watermark: number | undefined
  for (const r of records) {
    for (const pv of r.accepted) accepted.push(pv)
    if (r.watermark !== undefined && (watermark === undefined || r.watermark > watermark)) watermark = r.watermark
  }
  const promised = records[records.length - 1]!.promised
  return watermark === undefined ? { promised, accepted } : { promised, accepted, watermark }
}

/** Runs acceptor `id` until the scope closes; answers its status. Requires `Transport` and `Storage`. */
export const run = Effect.fn("Acceptor.run")(function* (id: string, config: ClusterConfig.ClusterConfig) {
  const transport = yield* Transport.Transport
  const storage = yield* Storage.Storage
  const bugs = yield* PlantedBugs
  const probe = yield* Probe
  const self = Address.acceptor(id)
  const store = yield* storage.acceptor(id)
  const loaded = yield* store.load
  probe?.acceptorLoaded(id, loaded.promised, loaded.accepted, loaded.watermark)
  const now = yield* Monotonic.Monotonic
  const core = new AcceptorCore(loaded, {
    strictAccept: bugs.strictAccept,
    leaseMs: config.timeouts.leaderTimeoutMs,
    now,
    cluster: config,
    silentGc: bugs.gcWithoutWatermark,
    readLeases: config.reads.lease,
    confirmGrantsNothing: bugs.confirmGrantsNothing,
    restartHoldsNothing: bugs.restartHoldsNothing,
    ...(bugs.unpagedP1b ? {} : { pageBytes: Limits.fromMessageBytes(transport.maxMessageBytes).pageBytes })
  })
  yield* Metrics.gaugeFrom(Metrics.of(Metrics.promisedRound, id), () => core.promised.round)

  yield* Host.run({
    self,
    core,
    accepts: isInbound,
    message: (from, message): Input => ({ from, message }),
    // the store drops what the watermark covers, accepts of this very batch included
    persist: (records) => store.append(mergeRecords(records)),
    // the next batch is stepped while this one syncs; replies still wait for their records
    persistPipelined: !bugs.replyBeforeDurable,
    persistAfterSend: bugs.replyBeforeDurable,
    observe: (events) =>
      Effect.sync(() => {
        if (probe === undefined) return
        for (const e of events) {
          if (e._tag === "Promised") probe.acceptorPromised(id, e.ballot)
          else if (e._tag === "Accepted") probe.acceptorAccepted(id, e.pvalue)
          else probe.acceptorForgot(id, e.watermark)
        }
      }),
    // tracing: each traced P2a is a span `synod.accept`, child of the commander's, until
    // its P2b is sent; the host adds `synod.persist` around the write it waited for
    trace: (spans) => ({
      received: (envelope, parent) =>
        envelope.message._tag === "P2a"
          ? spans.start("synod.accept", parent, {
              "synod.acceptor": id,
              "synod.slot": envelope.message.slot,
              "synod.ballot": `${envelope.message.ballot}`
            })
          : undefined
    })
  }).pipe(Effect.annotateLogs({ role: "acceptor", id }))

  return {
    status: Effect.sync(
      (): Status => ({ id, promised: core.promised, watermark: core.watermark, accepted: core.accepted.size })
    ),
    /**
     * The pvalue it holds for `slot` (durable, or about to be), for the replica of its
     * server to resolve a `Chosen` against (docs/protocol.md#replica).
     */
    acceptedAt: (slot: number): Command.PValue | undefined => core.accepted.get(slot)
  }
})

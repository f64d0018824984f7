/**
 * The replica: keeps a copy of the user's state machine and applies decided commands in
 * slot order (docs/protocol.md#replica).
 *
 * - Client requests are de-duplicated at intake (already performed: answered from the
 *   client table; already pending or proposed: ignored) and proposed in batches: one slot
 *   decides up to `batch.maxSize` commands, and at most `window` slots beyond `slotOut`
 *   are in flight, so under load requests queue up and batches grow.
 * - Decisions may arrive in any order and more than once; slots are performed strictly in
 *   order. A proposal that lost its slot goes back to pending and is proposed again.
 * - Each command is performed at most once, whatever slots it was decided in (B9).
 * - On a timer it resends outstanding proposals (backing off, to the active leader while
 *   slots get decided, to every leader when none was for a leader timeout, and at once to
 *   a new leader), and asks the leaders for slots it knows
 *   were decided but never learned, by proposing a no-op there (a leader that knows the
 *   decision answers with it; otherwise the no-op fills the hole, B10).
 * - Every `snapshotEvery` slots or `snapshotBytes` of commands it saves state, slotOut and
 *   client table atomically (B17) — with three replicas or more, only states a majority
 *   agreed on (see below) — tells the acceptors how far its durable state reaches
 *   (their GC watermark, see Acceptor.ts), and on start it resumes from the last snapshot.
 * - Below the GC watermark (the active leader's heartbeats say where it is) the decisions
 *   it misses are gone: it copies a snapshot from a peer replica (`StateTransfer`), and
 *   until then it ignores clients, who retry elsewhere. Far behind its peers, with more
 *   log to learn than its state holds, it copies one too (`copyWorth`), still taking
 *   commands, which it proposes once the copy is in.
 * - At every digest slot (slotOut 1 + k·`snapshotEvery`, where the commands since the last
 *   one reach `snapshotBytes`, and the slot it rests at once idle)
 *   it hashes its state, slotOut and client table off the loop and compares the digest
 *   with its peers' (`Divergence`). Contradicted by a majority of the replicas, it stops
 *   answering clients and performing, and copies the snapshot of a replica of that
 *   majority; with no majority for any digest, it stops answering clients until one
 *   agrees with it again (docs/protocol.md#divergence-detection).
 *
 * @since 0.1.0
 */
import {
  Address,
  Ballot,
  type ClusterConfig,
  Codec,
  type Command,
  Command as Cmd,
  Configuration,
  JsonText,
  Limits,
  type Message,
  StateMachine,
  Storage,
  Trace,
  Transport,
  Trusted
} from "@synod/core"
import {
  Clock,
  Deferred,
  Effect,
  LogLevel,
  Option,
  Queue,
  Random,
  Result,
  Schema,
  SchemaIssue,
  type Tracer
} from "effect"
import { createHash } from "node:crypto"
import { ClientTable } from "./ClientTable.ts"
import * as Divergence from "./Divergence.ts"
import * as StateTransfer from "./StateTransfer.ts"
import * as Host from "./internal/Host.ts"
import * as SampledLog from "./SampledLog.ts"
import { PlantedBugs } from "./internal/PlantedBugs.ts"
import { type Probe, Probe as ProbeRef } from "./internal/Probe.ts"
import { Tamper } from "./internal/Tamper.ts"
import * as Metrics from "./Metrics.ts"

/** Encoded size of a command (UTF-8 JSON bytes). */
const sizeOf = (command: Command.Command): number => Limits.jsonBytes(command)

/**
 * Client commands waiting for a slot, with the bytes they take in a batch (as `request`
 * counts them, and a comma each) kept as they come and go: whether a full batch waits is
 * then known without walking them on every request (`ReplicaCore.fullBatchPending`). Each command's size is
 * counted once, when it comes, and kept by its key (not in a `WeakMap` by the command:
 * its entries cost the garbage collector an ephemeron each).
 */
class PendingCommands extends Map<string, Command.Command> {
  bytes = 0
  private readonly sizes = new Map<string, number>()
  /** The size of the pending command under `key` (0 if none is). */
  bytesOf(key: string): number {
    return this.sizes.get(key) ?? 0
  }
  /** Adds (or replaces) the command under `key`, of `size` bytes (`sizeOf` when not given). */
  add(key: string, command: Command.Command, size: number = sizeOf(command)): void {
    const old = this.sizes.get(key)
    if (old !== undefined) this.bytes -= old + 1
    this.sizes.set(key, size)
    this.bytes += size + 1
    super.set(key, command)
  }
  override set(key: string, command: Command.Command): this {
    this.add(key, command)
    return this
  }
  override delete(key: string): boolean {
    const old = this.sizes.get(key)
    if (old === undefined) return false
    this.bytes -= old + 1
    this.sizes.delete(key)
    return super.delete(key)
  }
  override clear(): void {
    this.bytes = 0
    this.sizes.clear()
    super.clear()
  }
}

export type Outbound = Host.Outbound

/** What the replica is fed: a message of its inbound union, its timer, or the end of a batching linger. */
export type Input =
  | {
      readonly _tag: "Message"
      readonly from: Address.Address
      readonly message: Exclude<Message.ReplicaInbound, Message.Chosen>
    }
  /**
   * A `Chosen` from leader `from`, with the value the acceptor of its server holds for the
   * slot at the deciding ballot or above (`resolve`); `undefined` when it holds none.
   */
  | {
      readonly _tag: "Chosen"
      readonly from: Address.Address
      readonly slot: number
      readonly value: Command.SlotValue | undefined
    }
  | { readonly _tag: "Tick" }
  | { readonly _tag: "Wake" }
  /** A snapshot this core asked to persist is durable (a storage completion). */
  | { readonly _tag: "Saved"; readonly slotOut: number }
  /** The digest of a state it captured (`Job`), computed off the loop. */
  | { readonly _tag: "Digested"; readonly slot: number; readonly epoch: number; readonly digest: string }
  /** The text of a state it captured for a peer's copy (`Job`), encoded off the loop (`StateTransfer.encodeForTransfer`). */
  | {
      readonly _tag: "Encoded"
      readonly slotOut: number
      readonly chunks: ReadonlyArray<string>
      readonly checksum: number
    }
  /** Its server's API asks for a configuration change (never a client: `Request` carries commands only). */
  | { readonly _tag: "Change"; readonly members: Configuration.Members }

/**
 * Work for the host's worker, on a captured state: its digest (`epoch`: see
 * `ReplicaCore.epoch`), or its text in chunks of `chunkChars` for a peer's copy.
 */
export type Job<S> =
  | { readonly _tag: "Digest"; readonly epoch: number; readonly captured: Captured<S> }
  | { readonly _tag: "Encode"; readonly captured: Captured<S>; readonly chunkChars: number }

/** Why a replica does not answer clients: its state disagrees with its peers' (`Divergence.Verdict`). */
export type Quarantine = Exclude<Divergence.Verdict, { readonly _tag: "Agreed" }>

/** What observers learn: logs, and the checker's view of durable snapshots. */
export type Event =
  | { readonly _tag: "Saved"; readonly slotOut: number }
  | { readonly _tag: "Installed"; readonly slotOut: number }
  | { readonly _tag: "CatchingUp"; readonly slotOut: number; readonly watermark: number }
  /** Far behind its peers, with more commands to learn than its state holds: it copies a peer's state (`copyWorth`). */
  | { readonly _tag: "Copying"; readonly slotOut: number; readonly knownMax: number; readonly agreed: number }
  | { readonly _tag: "TransferFailed"; readonly reason: string }
  /** Its digest disagrees with its peers' at a digest slot: it stops answering clients. */
  | Quarantine
  /** It answers clients again: it installed a majority peer's snapshot, or agreed at a later digest slot. */
  | { readonly _tag: "Recovered"; readonly slotOut: number; readonly installed: boolean }
  /**
   * It performed a configuration change decided in `slot`: `members` governs from
   * `effective` on, or (`error`) the change was refused and performed as a no-op.
   */
  | {
      readonly _tag: "Reconfigured"
      readonly slot: number
      readonly members: Configuration.Members
      readonly effective: number
      readonly error?: string
    }

/** A client's read, waiting to be served from the replica's state. */
interface PendingRead {
  readonly client: string
  readonly id: number
  readonly op: unknown
}

/** Most reads a replica holds waiting at once; more are dropped (their clients retry). */
export const maxWaitingReads = 65_536

/**
 * How many windows' worth of commands (by count and by bytes: `window × batch.maxSize`,
 * `window × batchBytes`) a replica holds waiting to be proposed; new commands past it are
 * shed (their clients resend, or time out). With no bound, clients that time out and send
 * new commands while the cluster is slow (a fail-over under load with 64 KiB values) grew
 * what waits without end: memory, and a backlog that outlived the outage.
 */
export const pendingWindows = 4

/**
 * How many windows behind the highest slot it knows decided a replica must be before it
 * copies a peer's state instead of learning the log (as many as the leaders'
 * `laggingWindows`, counted from the replica furthest ahead: a replica that far behind is
 * left out of a new leader's phase 1, which reads its slots again only when it asks).
 */
export const copyWindows = 4

/**
 * Ticks a copy for being far behind may go without a new chunk before the replica gives
 * it up and learns the log instead (the peer with the newest verified state may be the
 * leader's server, busy: under load with 64 KiB values its first chunk took over a
 * second), and ticks before it tries a copy again.
 */
const copyPatienceTicks = 30
const copyRetryTicks = 50

/**
 * Ticks after its start before a replica asks the leaders for slots it missed: its peers
 * send their latest digests every tick, and only with those can it tell whether copying a
 * peer's state is cheaper than learning the log (`copyWorth`). Asked at once, the leader
 * read every missed slot back from the acceptors even when the copy came.
 */
const listenTicks = 2

/** The replica's decisions, without I/O: feed it inputs, then `drain` what to send. */
export class ReplicaCore<S, C, R> {
  state: S
  slotIn: number
  slotOut: number
  table: ClientTable
  /** Highest slot known to be decided somewhere. */
  knownMax = 0
  /** slotOut of the last durable snapshot: this replica never needs slots below it again. */
  durable: number
  /** The GC watermark, from the active leader's heartbeats: decisions below it are gone. */
  watermark = 1
  /** JSON bytes of the commands performed since the last snapshot. */
  bytesSinceSnapshot = 0
  /**
   * JSON bytes of the commands performed since the last digest slot: the same on every
   * replica (it is in the snapshot), so past `snapshotBytes` all find the same digest slot.
   */
  bytesSinceDigest = 0
  /**
   * The bytes of commands after which the next digest slot comes: `snapshotBytes`, or up to
   * `snapshotRatio` times the state's size at the last digest slot (`digestLimitFor`). Set
   * from the state, which every replica holds the same there, and kept in snapshots, so
   * all find the same digest slots.
   */
  digestLimit: number
  /**
   * With fewer than three replicas (every state saved, not only verified ones), the bytes
   * of commands after which it saves again: `digestLimit` when it last saved.
   */
  private snapshotLimit: number
  /** A peer's snapshot was installed and is not durable yet. */
  installed = false
  /** Running totals, for metrics: commands performed, slots performed, proposals resent. */
  performedCommands = 0
  performedSlots = 0
  resent = 0
  /** Client commands refused at intake for being too large to decide. */
  refused = 0
  /** New client commands shed at intake: `pendingWindows` windows of them already waited. */
  shed = 0
  /** Times its digest was found to disagree with its peers' (a metric). */
  divergences = 0
  /** Set while its state disagrees with its peers': it answers no client. */
  quarantine: Quarantine | undefined
  /** Digests of its own state and its peers', at recent digest slots. */
  digests: Divergence.Digests
  /** The highest slot it asked a digest of. */
  private digested = 0
  /**
   * Counts the states it replaced wholesale (installs): a digest computed of a state
   * captured before the latest install describes a state it no longer holds.
   */
  private epoch = 0
  /** Verdicts at slots below this one are stale: a later one, or an install, superseded them. */
  private verdictFloor = 0
  /** The slot of the last verdict acted on: a verdict is final, so it is acted on once. */
  private judged = 0
  /** The states it captured at its recent digest slots, by slot (immutable values: holding them costs little). */
  private readonly captures = new Map<number, Captured<S>>()
  /**
   * Its state at the latest digest slot where a majority of the replicas held the same
   * digest: what it serves to peers that copy its state, so that a state changed behind
   * the protocol's back does not spread before it is found out.
   */
  verified: Captured<S> | undefined
  /** While `Diverged`: fetches a snapshot from the replicas of the majority. */
  private repair: StateTransfer.Sink | undefined
  private readonly hash: ((text: string) => string) | undefined
  private readonly ignoreDivergence: boolean
  /** Reads served off the log (docs/protocol.md#reads), and reads dropped because too many waited. */
  readsServed = 0
  readsDropped = 0
  /** The highest slot `askAhead` asked for (the tick asks again for what stays missing). */
  private askedAhead = 0
  /** Reads waiting here (queued, asked about, or waiting for their index). */
  private readsWaiting = 0
  /** Reads waiting for the next read-index question. */
  private readQueue: Array<PendingRead> = []
  /** The read-index question in flight: its id, its reads, when it was last sent. */
  private readAsk: { readonly id: number; readonly reads: ReadonlyArray<PendingRead>; sentAt: number } | undefined
  /** Reads with their read index, waiting until `slotOut` reaches it. */
  private readonly readsIndexed: Array<{ readonly index: number; readonly reads: ReadonlyArray<PendingRead> }> = []
  /** Read-index question ids: a random base per incarnation (see `nextReadId`), then counted. */
  private readBase = 0
  private readCount = 0
  private readonly random: () => number
  private readonly limits: Limits.Limits
  /**
   * A command bounded at most this large counts as its bound in a batch: it is below a
   * message's share per command of a full batch, so the count cuts a batch of such before
   * its bytes do. Never above `commandBytes`, which would refuse a command that fits.
   */
  private readonly smallCommandBytes: number
  readonly pending = new PendingCommands()
  readonly inFlight = new Set<string>()
  /** Slot → what this replica proposed there: a batch of client commands, or a configuration change. */
  readonly proposals = new Map<number, Command.Batch | Command.Reconfigure>()
  /**
   * The configuration history after the slots below `slotOut` (docs/reconfiguration.md):
   * which acceptors, leaders and replicas hold each slot. Saved with every snapshot.
   */
  history: Configuration.History
  /** Configuration changes asked of this replica (its server's API), waiting for a slot of their own. */
  readonly changes: Array<Command.Reconfigure> = []
  /** Per outstanding proposal: when to resend it, and how often it was resent (the back-off). */
  private readonly resendAt = new Map<number, { readonly at: number; readonly attempts: number }>()
  /** When slotOut last advanced: while it moves, only the active leader hears resends. */
  private lastProgress = 0
  readonly decisions = new Map<number, Command.SlotValue>()
  /** Commands a client sent to this replica: only those it answers when it performs them. */
  private readonly local = new Set<string>()
  /**
   * The leader of the highest ballot whose heartbeats say it is active, and when it last
   * said so: where proposals go first, until it falls silent for a leader timeout.
   */
  /** The ballot whose leader it last sent every outstanding proposal at once, on following it. */
  private joined: Ballot.Ballot | undefined
  /** The leader it follows, when it last heard it, and up to where it holds a value for every slot (`Heartbeat.held`). */
  private active:
    | {
        readonly leader: Address.Address
        readonly ballot: Ballot.Ballot
        readonly heardAt: number
        readonly held: number
      }
    | undefined
  readonly out = new Host.Outbox<Captured<S>, never, Event, Job<S>>()
  /** slotOut of the last snapshot it asked to persist. */
  private lastSnapshot: number
  /** Below the watermark at the last step (to report the change once). */
  private behind = false
  /**
   * A copy of a peer's state it is fetching because it is far behind (not below the
   * watermark): the ticks since the transfer last took a chunk, and how many it had
   * taken then. Meanwhile it asks the leaders for no old slot and proposes nothing
   * (its slots would be decided ones): a leader would read them back from the acceptors.
   */
  private copy: { idle: number; taken: number } | undefined
  /** Ticks until it may try such a copy again, after one that no peer served. */
  private copyBackoff = 0
  /** Ticks since it started, up to `listenTicks`. */
  private ticks = 0
  private readonly codecs: StateMachine.Codecs<S, C, R>
  /** Every leader and acceptor the history names (proposals and Progress go to them), and the leaders of its latest configuration. */
  private leaders: ReadonlyArray<Address.Address> = []
  private acceptors: ReadonlyArray<Address.Address> = []
  private latestLeaders: ReadonlyArray<Address.Address> = []
  /** The window a change takes effect after: the config's, or 1 under the planted `immediateReconfig`. */
  private readonly effectAfter: number
  /** The cluster config's members: the history of a snapshot that carries none. */
  private readonly base: Configuration.Members
  private readonly id: string
  private readonly config: ClusterConfig.ClusterConfig
  private readonly machine: StateMachine.StateMachine<S, C, R>
  private readonly probe: Probe | undefined
  private readonly noClientTable: boolean
  private readonly noRecovery: boolean
  private readonly now: () => number
  private readonly source: StateTransfer.Source
  private sink: StateTransfer.Sink
  /** When the oldest pending command arrived (for the batching linger). */
  private pendingSince = 0
  /** Set while a partial batch lingers: when it must go out at the latest. */
  private lingerUntil: number | undefined

  constructor(
    id: string,
    config: ClusterConfig.ClusterConfig,
    machine: StateMachine.StateMachine<S, C, R>,
    snapshot: Option.Option<Storage.ReplicaSnapshot>,
    options: {
      readonly probe?: Probe | undefined
      readonly noClientTable?: boolean
      readonly noRecovery?: boolean
      /** The clock, for the batching linger (default: no linger). */
      readonly now?: () => number
      /** The transport's message limit (default: NATS's 1 MiB). */
      readonly maxMessageBytes?: number
      /**
       * The state digest of a snapshot's encoded text (`digestText`): checks a copied
       * snapshot against its peers' digests before installing it. Without it, none is checked.
       */
      readonly hash?: (text: string) => string
      /** B19: compare no digests. */
      readonly ignoreDivergence?: boolean
      /** Draws in [0, 1): read-index question ids start at a random base (default: always 0). */
      readonly random?: () => number
      /** B12 (planted): a change governs from the slot after the one that decided it. */
      readonly immediateReconfig?: boolean
    } = {}
  ) {
    this.random = options.random ?? (() => 0)
    this.readBase = this.drawReadBase()
    this.limits = Limits.fromMessageBytes(options.maxMessageBytes ?? Limits.defaultMaxMessageBytes)
    this.smallCommandBytes = Math.min(
      Math.floor(this.limits.batchBytes / config.batch.maxSize) - 1,
      this.limits.commandBytes
    )
    this.id = id
    this.config = config
    this.machine = machine
    this.codecs = StateMachine.codecs(machine)
    this.effectAfter = options.immediateReconfig === true ? 1 : config.window
    this.base = { acceptors: config.acceptors, leaders: config.leaders, replicas: config.replicas }
    this.history =
      Option.isSome(snapshot) && snapshot.value.history !== undefined
        ? snapshot.value.history
        : Configuration.initial(this.base)
    const peers = this.peers()
    // a character of the encoded snapshot takes at most 6 bytes in a StateChunk (a \u escape)
    this.source = new StateTransfer.Source(Math.min(config.transferChunkBytes, Math.floor(this.limits.batchBytes / 6)))
    this.sink = new StateTransfer.Sink(peers, Math.max(0, this.replicaIds().indexOf(id)))
    this.digests = new Divergence.Digests(peers, this.replicaIds().length)
    this.routes()
    this.hash = options.hash
    this.ignoreDivergence = options.ignoreDivergence === true
    this.probe = options.probe
    this.noClientTable = options.noClientTable === true
    this.noRecovery = options.noRecovery === true
    this.now = options.now ?? (() => 0)
    if (Option.isSome(snapshot)) {
      const decoded = this.codecs.decodeState(snapshot.value.state)
      if (Result.isFailure(decoded)) throw new Error(`replica ${id}: snapshot does not decode: ${decoded.failure}`)
      this.state = decoded.success
      this.slotOut = snapshot.value.slotOut
      this.table = ClientTable.fromSnapshot(snapshot.value.clients)
      this.bytesSinceDigest = snapshot.value.digestBytes ?? 0
      this.digestLimit = snapshot.value.digestLimit ?? config.snapshotBytes
    } else {
      this.state = machine.initial
      this.slotOut = 1
      this.digestLimit = config.snapshotBytes
      this.table = new ClientTable()
    }
    this.slotIn = this.slotOut
    this.durable = this.slotOut
    this.lastSnapshot = this.slotOut
    this.snapshotLimit = this.digestLimit
    // it saves only verified states (see `step`), and with fewer than three replicas every
    // saved state counts as one: the one it starts from is one either way. Should a change
    // bring three replicas or more before it saves again, it still has a state to serve:
    // a restarted replica that held the only copy at the GC watermark otherwise refused
    // every peer that had lost its own (seed 1090405 with --reconfigure on stalled)
    if (Option.isSome(snapshot)) this.verified = this.capture()
  }

  /** The replicas of its latest configuration: the peers it compares digests with and copies state from. */
  private replicaIds(): ReadonlyArray<string> {
    return Configuration.latest(this.history).replicas
  }

  private peers(): Array<Address.Address> {
    const ids = this.replicaIds().filter((r) => r !== this.id)
    // a replica outside its configuration (a new one, still on the base config) copies from any replica named
    const from = ids.length > 0 ? ids : Configuration.everyone(this.history, "replicas").filter((r) => r !== this.id)
    return from.map(Address.replica)
  }

  /** Where proposals, Progress and History go, after the history changed. */
  private routes(): void {
    this.leaders = Configuration.everyone(this.history, "leaders").map(Address.leader)
    this.acceptors = Configuration.everyone(this.history, "acceptors").map(Address.acceptor)
    this.latestLeaders = Configuration.latest(this.history).leaders.map(Address.leader)
  }

  /**
   * The history changed (a change performed, or a snapshot installed): messages follow
   * it, and digests are compared with the replicas of the latest configuration from now on.
   */
  private reconfigured(): void {
    this.routes()
    const peers = this.peers()
    this.digests = new Divergence.Digests(peers, this.replicaIds().length)
    if (!this.catchingUp) this.sink = new StateTransfer.Sink(peers, Math.max(0, this.replicaIds().indexOf(this.id)))
  }

  /** Asks for a configuration change: proposed in a slot of its own as soon as the window allows. */
  change(members: Configuration.Members): void {
    this.changes.push(Trusted.reconfigure(members))
    this.propose()
  }

  /** The active leader it follows, unless it has been silent for a leader timeout. */
  get leader(): Address.Address | undefined {
    const a = this.active
    if (a === undefined || this.now() - a.heardAt > this.config.timeouts.leaderTimeoutMs) return undefined
    return a.leader
  }

  /** The messages produced since the last call (and whatever else the outbox held). */
  drain(): Array<Outbound> {
    return [...this.out.drain().send]
  }

  /**
   * One input, then whatever it made due: a snapshot to persist (every `snapshotEvery`
   * slots, `snapshotBytes` of commands, or after installing a peer's). The snapshot guards
   * none of the batch's messages, so they leave first (answers do not wait for a write of
   * the whole state); `durable`, which Progress reports, moves only on `Saved`, once the
   * snapshot is on disk.
   */
  step(input: Input) {
    switch (input._tag) {
      case "Message": {
        const { from, message: msg } = input
        switch (msg._tag) {
          case "Request":
            this.request(msg.command)
            break
          case "Decision":
            this.decision(msg.slot, msg.value)
            break
          case "Heartbeat":
            this.heartbeat(msg)
            break
          case "StateRequest":
            this.stateRequest(from, msg)
            break
          case "StateChunk": {
            const failure = this.stateChunk(from, msg)
            if (failure !== undefined) this.out.event({ _tag: "TransferFailed", reason: failure })
            break
          }
          case "Digest":
            // a replica sends digests to the replicas of its latest configuration: one this
            // replica does not know of (its history is older) may hold the state it needs
            if (Address.role(from) === "replica") this.sink.addPeer(from)
            for (const o of this.digests.recordPeer(from, msg)) this.out.send(o.to, o.message)
            this.judge(msg.slot)
            break
          case "Read":
            this.read(msg)
            break
          case "ReadIndexReply":
            this.readIndexReply(msg)
            break
          case "History":
            // a leader's answer to a report older than what it knows: the replicas of the
            // latest configuration are where a copy of the state may be had
            if (Address.role(from) === "leader") {
              for (const r of Configuration.latest(msg.history).replicas) {
                if (r !== this.id) this.sink.addPeer(Address.replica(r))
              }
            }
            break
        }
        break
      }
      case "Chosen":
        if (input.value !== undefined) this.decision(input.slot, input.value)
        else this.unresolved(input.from, input.slot)
        break
      case "Digested":
        // a digest of a state replaced since (by an install) says nothing of the one held
        if (input.epoch !== this.epoch) break
        this.probe?.replicaDigest(this.id, input.slot, input.digest)
        for (const o of this.digests.recordOwn(input.slot, input.digest)) this.out.send(o.to, o.message)
        this.judge(input.slot)
        break
      case "Encoded":
        // as `stateRequest`: nothing served while catching up, or diverged with nothing vouched
        // for (the state encoded may be the one its peers contradict). Else a state at a slot
        // is the same whatever was installed since: still worth serving
        if (this.catchingUp || (this.quarantine?._tag === "Diverged" && !this.vouched)) this.source.abandon()
        else for (const o of this.source.prepared(input.slotOut, input, this.now())) this.out.send(o.to, o.message)
        break
      case "Tick":
        this.tick()
        break
      case "Wake":
        this.propose()
        break
      case "Change":
        this.change(input.members)
        break
      case "Saved":
        // only now may Progress report it: acceptors forget what f + 1 replicas hold durably
        if (input.slotOut > this.durable) this.durable = input.slotOut
        this.out.event({ _tag: "Saved", slotOut: input.slotOut })
        return
    }
    if (this.catchingUp !== this.behind) {
      this.behind = this.catchingUp
      if (this.behind) this.out.event({ _tag: "CatchingUp", slotOut: this.slotOut, watermark: this.watermark })
    }
    // With three replicas or more it saves the states a majority agreed with (at digest
    // slots, so every `snapshotEvery` slots), and copies it installed, which are such
    // states too: a state changed behind the protocol's back is never saved, and after a
    // restart it starts from a state it may serve to peers.
    const verified = this.verified
    if (
      this.installed ||
      (this.vouched
        ? verified !== undefined && verified.slotOut > this.lastSnapshot
        : this.slotOut - this.lastSnapshot >= this.config.snapshotEvery ||
          this.bytesSinceSnapshot >= this.snapshotLimit)
    ) {
      if (this.installed) this.out.event({ _tag: "Installed", slotOut: this.slotOut })
      const record = this.installed || !this.vouched || verified === undefined ? this.capture() : verified
      // with fewer than three replicas every saved state counts as verified: should a change
      // bring the configuration to three or more, the state it reported durable is one it
      // may serve (docs/reconfiguration.md)
      if (!this.vouched) this.verified = record
      this.lastSnapshot = record.slotOut
      this.installed = false
      this.bytesSinceSnapshot = 0
      this.snapshotLimit = this.digestLimit
      this.out.persist(record)
    }
  }

  /** Client commands it took and has not answered yet. */
  get answering(): number {
    return this.local.size
  }

  /** Below the GC watermark: waiting for a peer's snapshot, deaf to clients. */
  get catchingUp(): boolean {
    return this.slotOut < this.watermark
  }

  request(command: Command.Command): void {
    if (this.catchingUp) return
    // its bytes in a batch (a batch of it alone would not fit a message: clients refuse
    // these before sending), by its bound when that is at most `smallCommandBytes`, else
    // by its JSON, which its batch's JSON then reuses (`Codec.commandJson`)
    const size = Limits.jsonBytesOrBound(command, this.smallCommandBytes, Codec.commandJson)
    if (size > this.limits.commandBytes) {
      this.refused++
      return
    }
    const k = Cmd.commandKey(command)
    if (!this.noClientTable) {
      const done = this.table.lookup(command.client, command.seq)
      if (done === "acked") return
      if (done !== undefined) {
        this.respond(command.client, command.seq, done)
        return
      }
      // quarantined it still proposes (answering nothing: `respond`): the log must move on
      // for digests to be compared again, and its peers answer
    }
    const known = this.pending.has(k) || this.inFlight.has(k)
    if (!known && this.full(size)) {
      this.shed++
      return
    }
    this.local.add(k)
    if (known) return
    if (this.pending.size === 0) this.pendingSince = this.now()
    this.pending.add(k, command, size)
    this.propose()
  }

  /** Would a new command of `size` bytes take what waits past `pendingWindows` windows? */
  private full(size: number): boolean {
    const { window, batch } = this.config
    return (
      this.pending.size >= pendingWindows * window * batch.maxSize ||
      this.pending.bytes + size > pendingWindows * window * this.limits.batchBytes
    )
  }

  /**
   * A client's read: queued for the next read-index question (docs/protocol.md#reads),
   * asked at once when none is in flight. Ignored while catching up, like a command.
   */
  read(read: Message.Read): void {
    if (this.catchingUp || this.quarantine !== undefined) return
    if (!Limits.jsonFits(read.op, this.limits.commandBytes)) {
      this.refused++
      return
    }
    if (this.readsWaiting >= maxWaitingReads) {
      // bounded memory: the client retries, or times out
      this.readsDropped++
      return
    }
    this.readsWaiting++
    this.readQueue.push({ client: read.client, id: read.id, op: read.op })
    if (this.readAsk === undefined) this.askReadIndex()
  }

  /**
   * A fresh id for a read-index question. Ids start at a random base per incarnation, so
   * a late answer to a question of an earlier life (asked before this life's reads
   * arrived) is never taken for one of this life's; after 2^21 questions a new base.
   */
  private nextReadId(): number {
    if (this.readCount >= 2 ** 21) {
      this.readBase = this.drawReadBase()
      this.readCount = 0
    }
    return this.readBase + ++this.readCount
  }

  private drawReadBase(): number {
    return Math.floor(this.random() * 2 ** 31) * 2 ** 21
  }

  /** Asks the leader it follows (every leader if none) for the read index of the queued reads. */
  private askReadIndex(): void {
    if (this.readQueue.length === 0) return
    this.readAsk = { id: this.nextReadId(), reads: this.readQueue, sentAt: this.now() }
    this.readQueue = []
    const ask = Trusted.readIndex(this.readAsk.id)
    const leader = this.leader
    if (leader === undefined) this.toLeaders(ask)
    else this.out.send(leader, ask)
  }

  /**
   * The answer to the question in flight: its reads wait until `slotOut` reaches the
   * index; the reads queued meanwhile are asked about now. Answers to other questions
   * (duplicates, late ones) are dropped.
   */
  readIndexReply(reply: Message.ReadIndexReply): void {
    const ask = this.readAsk
    if (ask === undefined || ask.id !== reply.id) return
    this.readAsk = undefined
    this.readsIndexed.push({ index: reply.slot, reads: ask.reads })
    this.askReadIndex()
    this.serveReads()
  }

  /** Serves every read whose index `slotOut` has reached, from the state as it is. */
  private serveReads(): void {
    if (this.readsIndexed.length === 0) return
    let kept = 0
    for (const waiting of this.readsIndexed) {
      if (waiting.index > this.slotOut) {
        this.readsIndexed[kept++] = waiting
        continue
      }
      for (const read of waiting.reads) this.serveRead(read)
    }
    this.readsIndexed.length = kept
  }

  private serveRead(read: PendingRead): void {
    this.readsWaiting--
    // no answer from a state its peers contradict: the client asks another replica
    if (this.quarantine !== undefined) return
    this.readsServed++
    this.probe?.replicaReadAnswered(this.id, read.client, read.id)
    const { result, error } = this.query(read.op)
    const slot = this.slotOut - 1
    this.out.send(Address.client(read.client), Trusted.readResponse(read.id, result, slot, error, this.leaderHint()))
  }

  /** A read's answer from the state as it is: the encoded result, or an error saying why there is none. */
  private query(op: unknown): { readonly result: Schema.Json; readonly error?: string } {
    const decoded = this.codecs.decodeCommand(op)
    if (Result.isFailure(decoded)) return { result: null, error: `invalid command: ${decoded.failure}` }
    const result = this.machine.query?.(this.state, decoded.success)
    if (result === undefined) {
      return { result: null, error: "not a read-only query of this state machine: send it as a command" }
    }
    const encoded = this.codecs.encodeResult(result)
    if (!Limits.jsonFits(encoded, this.limits.batchBytes)) {
      const size = Limits.jsonBytes(encoded)
      return {
        result: null,
        error: `the result of ${size} bytes exceeds the message limit of ${this.limits.batchBytes} bytes`
      }
    }
    return { result: encoded }
  }

  /** While a partial batch lingers: the time at which it must be proposed anyway. */
  wakeAt(): number | undefined {
    return this.lingerUntil
  }

  decision(slot: number, value: Command.SlotValue): void {
    if (slot > this.knownMax) this.knownMax = slot
    if (slot < this.slotOut || this.decisions.has(slot)) return
    this.decisions.set(slot, value)
    this.probe?.decisionLearned(this.id, slot, value)
    // a diverged state goes no further: a majority peer's snapshot replaces it
    if (this.quarantine?._tag === "Diverged") return
    for (let d = this.decisions.get(this.slotOut); d !== undefined; d = this.decisions.get(this.slotOut)) {
      const slot = this.slotOut
      this.decisions.delete(slot)
      const mine = this.proposals.get(slot)
      if (mine !== undefined) {
        this.proposals.delete(slot)
        this.resendAt.delete(slot)
        if (mine._tag === "Batch") for (const c of mine.commands) this.inFlight.delete(Cmd.commandKey(c))
      }
      this.perform(slot, d)
      this.lastProgress = this.now()
      if (mine !== undefined && !Cmd.sameValue(mine, d)) {
        // lost the slot: propose again whatever was not performed
        if (mine._tag === "Reconfigure") this.changes.push(mine)
        else {
          for (const c of mine.commands) {
            if (!this.table.isPerformed(c.client, c.seq)) this.pending.set(Cmd.commandKey(c), c)
          }
        }
      }
    }
    if (this.slotIn < this.slotOut) this.slotIn = this.slotOut
    this.serveReads()
    this.propose()
    this.askAhead()
  }

  /**
   * A `Chosen` its server's acceptor could not resolve: no acceptor runs beside it, or
   * this one forgot the slot. It asks the leader that decided the slot, which answers a
   * proposal for a decided slot with the `Decision` itself (with its own proposal for the
   * slot when it has one, else a no-op, as when it fills a hole).
   */
  private unresolved(leader: Address.Address, slot: number): void {
    if (slot > this.knownMax) this.knownMax = slot
    if (slot < this.slotOut || this.decisions.has(slot)) return
    this.out.send(leader, Trusted.propose(slot, this.proposals.get(slot) ?? Cmd.noop))
  }

  /**
   * Lagging — a slot known decided lies a whole window or more past the first one it has
   * not performed, which no slot in flight can explain — it asks for the window's missing
   * slots as soon as it performed the ones before them, instead of on its next tick. A
   * replica restarted under load (from a snapshot some thousand slots old, or after a
   * second of downtime) otherwise fills `window` slots per tick, about as fast as the log
   * grows, and meanwhile its report holds every new leader's phase 1 down at its slot.
   * The tick still asks again for whatever stays missing.
   */
  private askAhead(): void {
    if (this.noRecovery || this.catchingUp || this.copy !== undefined || this.listening) return
    if (this.knownMax - this.slotOut < this.config.window) return
    const top = this.slotOut + this.config.window - 1
    const leader = this.leader
    for (let s = Math.max(this.slotOut, this.askedAhead + 1); s <= top; s++) {
      if (this.decisions.has(s) || this.proposals.has(s)) continue
      const ask = Trusted.propose(s, Cmd.noop)
      if (leader === undefined) this.toLeaders(ask)
      else this.out.send(leader, ask)
    }
    if (top > this.askedAhead) this.askedAhead = top
  }

  heartbeat(hb: Message.Heartbeat): void {
    const further = hb.slot > this.knownMax
    if (further) this.knownMax = hb.slot
    if (hb.watermark > this.watermark) this.watermark = hb.watermark
    const from = Address.leader(hb.ballot.leader)
    const before = this.leader
    if (hb.active) {
      // follow the highest active ballot: a deposed leader that has not noticed yet may still beat
      const current = before === undefined ? undefined : this.active
      if (current === undefined || !Ballot.lessThan(hb.ballot, current.ballot)) {
        this.active = { leader: from, ballot: hb.ballot, heardAt: this.now(), held: hb.held ?? 0 }
      }
    } else if (this.active?.leader === from) {
      this.active = undefined
    }
    const after = this.leader
    if (after !== undefined && after !== before) {
      // a new leader: it needs what waits now, not after a back-off, and first the history,
      // without which it commands none of the slots past the ones it decided itself
      if (this.proposals.size > 0) this.out.send(after, Trusted.history(this.history, this.slotOut))
      // but not the leader it followed before a silence, at the same ballot: that one got
      // them already (under load its heartbeats came more than a leader timeout apart, and
      // each time every outstanding megabyte went to it again)
      const ballot = this.active!.ballot
      if (this.joined === undefined || !Ballot.equals(this.joined, ballot)) {
        this.joined = ballot
        const at = this.now() + this.config.timeouts.retransmitMs
        for (const [slot, value] of this.proposals) {
          this.out.send(after, Trusted.propose(slot, value))
          this.resendAt.set(slot, { at, attempts: 0 })
        }
      }
    }
    if (further) this.askAhead()
  }

  /** A peer asks for state: serve it, unless this replica is behind itself. */
  /**
   * A peer asks for state: serve it, unless this replica is behind itself or diverged.
   * It serves its verified state (the last one a majority of replicas agreed with, at a
   * digest slot), never a later one no digest has vouched for: a state changed behind the
   * protocol's back does not spread before it is found out, and the asker can check the
   * copy against its peers' digests at that slot. The acceptors keep every decision from
   * there on (`Progress` reports no further), so the copy is always enough to catch up.
   */
  stateRequest(from: Address.Address, request: Message.StateRequest): void {
    // a state a majority contradicts is not one to copy; the verified one, which a majority
    // agreed with before, still is: with the peers that agreed wiped, it may be the only copy
    // of the state at the watermark left (seed 1371960 stalled when a diverged replica kept it)
    if (this.catchingUp || (this.quarantine?._tag === "Diverged" && !this.vouched)) return
    if (!this.vouched) {
      // with fewer than three replicas no majority can vouch for a state without both: the current one
      this.serveState(from, request, this.slotOut, () => this.capture())
      return
    }
    const verified = this.verified
    // below the watermark it would not help: the decisions after it are gone
    if (verified === undefined || verified.slotOut < this.watermark) return
    this.serveState(from, request, verified.slotOut, () => verified)
  }

  /** Serves `request` the state at `slotOut` (`state`), or asks the host to encode it first. */
  private serveState(
    from: Address.Address,
    request: Message.StateRequest,
    slotOut: number,
    state: () => Captured<S>
  ): void {
    const served = this.source.serve(from, request, { slotOut, floor: this.watermark, now: this.now() })
    for (const message of served.chunks) this.out.send(from, message)
    if (served.encode) this.out.work({ _tag: "Encode", captured: state(), chunkChars: this.source.chunkChars })
  }

  /**
   * Whether state transfer serves only verified states: with three replicas or more. With
   * two, a majority is both, and a replica that lost its disk could never get a state
   * both vouch for; there a disagreement is a `Split` anyway, which no copy settles.
   */
  private get vouched(): boolean {
    return this.replicaIds().length >= 3
  }

  /**
   * What to save when the replica stops cleanly: its current state, or, with three
   * replicas or more, its verified one if that is newer than what it saved (it saves
   * only verified states).
   */
  finalSnapshot(): Storage.ReplicaSnapshot | undefined {
    if (!this.vouched) return this.snapshot()
    const verified = this.verified
    return verified !== undefined && verified.slotOut > this.durable
      ? encodeCapturedNow(this.codecs, verified)
      : undefined
  }

  /**
   * slotOut of the newest state it would save on a clean stop: with three replicas or more
   * the last one a majority of them agreed with, else its current one.
   */
  get verifiedSlot(): number {
    return this.vouched ? Math.max(this.durable, this.verified?.slotOut ?? 1) : this.slotOut
  }

  /**
   * A chunk of a peer's snapshot. Once all arrived and verified, installs it when it is
   * ahead; the caller must then save it (`installed`).
   */
  stateChunk(from: Address.Address, chunk: Message.StateChunk): string | undefined {
    const repair = this.repair
    const r = (repair ?? this.sink).chunk(from, chunk, this.asking)
    for (const o of r.send) this.out.send(o.to, o.message)
    if (r.received === undefined) return undefined
    if (r.received._tag === "Rejected") return `state transfer from ${from} rejected: ${r.received.reason}`
    const { snapshot, encoded } = r.received
    // where the peers' digests are known, the copy must be what a majority of them hold
    const expected = this.digests.majorityOfPeers(snapshot.slotOut)
    if (this.hash !== undefined && expected !== undefined && this.hash(encoded) !== expected) {
      return `state transfer from ${from} rejected: its digest at slot ${snapshot.slotOut} is not the one a majority of replicas hold (${expected})`
    }
    return this.install(snapshot, repair !== undefined)
  }

  /** The slotOut a StateRequest names: while repairing, below its own, so a peer at the same slot serves too. */
  private get asking(): number {
    return this.repair === undefined ? this.slotOut : Math.max(1, this.slotOut - 1)
  }

  /**
   * Replaces state, slotOut and client table with a peer's snapshot that is ahead, or,
   * when `repair`ing a diverged state, not behind.
   */
  private install(snapshot: Storage.ReplicaSnapshot, repair = false): string | undefined {
    if (repair ? snapshot.slotOut < this.slotOut : snapshot.slotOut <= this.slotOut) return undefined
    const decoded = this.codecs.decodeState(snapshot.state)
    if (Result.isFailure(decoded)) return `state transfer: the peer's state does not decode: ${decoded.failure}`
    const repaired = repair && this.quarantine !== undefined
    this.state = decoded.success
    this.slotOut = snapshot.slotOut
    this.table = ClientTable.fromSnapshot(snapshot.clients)
    this.bytesSinceDigest = snapshot.digestBytes ?? 0
    this.digestLimit = snapshot.digestLimit ?? this.config.snapshotBytes
    const history = snapshot.history ?? Configuration.initial(this.base)
    const historyChanged = JSON.stringify(history) !== JSON.stringify(this.history)
    this.history = history
    this.installed = true
    this.lastProgress = this.now()
    this.bytesSinceSnapshot = 0
    // digests of the replaced state no longer count; the new one is digested at its slot if that is a digest slot
    this.epoch++
    if (historyChanged) this.reconfigured()
    this.digests.own.clear()
    this.captures.clear()
    // a copy is of a verified state (the only kind served, with three replicas or more)
    this.verified = this.vouched ? this.capture() : undefined
    this.digested = this.slotOut - 1
    this.verdictFloor = this.slotOut
    this.judged = 0
    if (repaired) {
      this.quarantine = undefined
      this.repair = undefined
      this.probe?.replicaRecovered(this.id, this.slotOut, true)
      this.out.event({ _tag: "Recovered", slotOut: this.slotOut, installed: true })
    } else {
      this.probe?.replicaInstalled(this.id, this.slotOut)
    }
    // a copy is of a digest slot, or of the slot its peers rest at: digest it to compare at once
    this.digest()
    for (const slot of this.decisions.keys()) if (slot < this.slotOut) this.decisions.delete(slot)
    // what this replica proposed below the new slotOut: done, or to propose again
    for (const [slot, batch] of this.proposals) {
      if (slot >= this.slotOut) continue
      this.proposals.delete(slot)
      this.resendAt.delete(slot)
      // a change proposed below the copy's slotOut: performed there if decided, else asked again
      if (batch._tag === "Reconfigure") {
        if (!this.history.some((e) => Cmd.membersKey(e.members) === Cmd.membersKey(batch.members))) {
          this.changes.push(batch)
        }
        continue
      }
      for (const c of batch.commands) {
        const k = Cmd.commandKey(c)
        this.inFlight.delete(k)
        if (!this.table.isPerformed(c.client, c.seq)) this.pending.set(k, c)
      }
    }
    for (const [k, c] of this.pending) if (this.table.isPerformed(c.client, c.seq)) this.pending.delete(k)
    // commands the snapshot performed are answered from the table when their clients retry
    for (const k of this.local) if (!this.pending.has(k) && !this.inFlight.has(k)) this.local.delete(k)
    if (this.slotIn < this.slotOut) this.slotIn = this.slotOut
    if (!this.catchingUp) this.sink.stop()
    this.copy = undefined
    this.serveReads()
    // decisions that arrived while catching up
    const next = this.decisions.get(this.slotOut)
    if (next !== undefined) {
      this.decisions.delete(this.slotOut)
      this.decision(this.slotOut, next)
    } else {
      this.propose()
    }
    return undefined
  }

  /** Timer: resend outstanding proposals, ask for decisions this replica is missing. */
  tick(): void {
    if (this.ticks < listenTicks) this.ticks++
    // tell the acceptors how far this replica's durable and verified state reaches (their
    // GC watermark): the decisions after the last verified state are kept, so a replica
    // copying that state can always perform the rest
    const changed = this.history.length > 1 ? this.history : undefined
    const progress = Trusted.progress(
      this.vouched ? Math.min(this.durable, this.verified?.slotOut ?? 1) : this.durable,
      changed
    )
    for (const to of this.acceptors) this.out.send(to, progress)
    // leaders learn the configuration history from the replicas (docs/reconfiguration.md,
    // rule 5), also while it is the cluster config's: that no change was decided below
    // slotOut is what lets a new leader command the slots after the ones it decided itself
    const report = Trusted.history(this.history, this.slotOut)
    for (const to of this.latestLeaders) this.out.send(to, report)
    // and to the leader it follows when a change removed it: else that leader, knowing
    // neither the change nor how far the log went, never hands over (rule 7) and cannot
    // answer read indexes for slots whose configuration it does not know
    const followed = this.leader
    if (followed !== undefined && !this.latestLeaders.includes(followed)) this.out.send(followed, report)
    this.source.tick(this.now())
    const ask = this.readAsk
    if (ask !== undefined && this.now() - ask.sentAt >= this.config.timeouts.retransmitMs) {
      // no answer: its leader may be deposed or the message lost; any active leader may answer
      ask.sentAt = this.now()
      this.toLeaders(Trusted.readIndex(ask.id))
    }
    for (const o of this.digests.tick()) this.out.send(o.to, o.message)
    if (this.repair !== undefined) {
      for (const o of this.repair.tick(this.asking, this.leaderReplica())) this.out.send(o.to, o.message)
      return
    }
    if (this.catchingUp) {
      for (const o of this.sink.tick(this.slotOut, this.leaderReplica())) this.out.send(o.to, o.message)
      return
    }
    const copying = this.copyTick()
    if (!copying) this.sink.stop()
    // Resend what waits, backing off per proposal (a batch may be a megabyte), unless the
    // leader it follows holds a value for the undecided slot (its heartbeats' `held`): it lost
    // nothing there, and hearing that it holds work, its rivals judge whether it is stuck.
    // While slots get decided only the active leader needs the rest, in case it lost it;
    // once none was for a leader timeout, every leader hears it, so a stuck leader's rivals
    // learn what waits (B14). Resent to every leader while held, under load with 64 KiB
    // values (slots decided less often than the leader timeout) a replica's outstanding
    // megabytes went to every leader every 1.6 s, twice what the cluster could order, and
    // leadership churned until nothing committed.
    const now = this.now()
    const { retransmitMs, leaderTimeoutMs } = this.config.timeouts
    const leader = this.leader
    // (also while the leader it follows is silent: a successor gets every proposal at once)
    const held = this.active?.held ?? 0
    const stuck = leader === undefined || now - this.lastProgress >= leaderTimeoutMs
    for (const [slot, value] of this.proposals) {
      const due = this.resendAt.get(slot)
      if (due !== undefined && now < due.at) continue
      const attempts = (due?.attempts ?? 0) + 1
      this.resendAt.set(slot, { at: now + retransmitMs * 2 ** Math.min(attempts, 4), attempts })
      // (a slot it knows decided is asked for again: its decision may be what was lost)
      if (slot <= held && slot > this.knownMax) continue
      this.resent++
      const propose = Trusted.propose(slot, value)
      if (stuck) this.toLeaders(propose)
      else this.out.send(leader, propose)
    }
    // idle, with every slot known decided performed: the slot it rests at is a digest slot
    // too, so a state changed after the last digest slot is caught without more traffic
    // (also in a fail-over's pause, with proposals waiting: the snapshot it leads to moves
    // the GC watermark, so the next leader's phase 1 pages in fewer slots)
    if (
      this.knownMax < this.slotOut &&
      now - this.lastProgress >= restBeforeDigestMs(this.config, this.machine.size?.(this.state))
    ) {
      this.digest()
    }
    // (a copy under way brings the slots it would ask for)
    if (this.noRecovery || copying || this.listening) return
    // slots below a read index will be decided: ask for them as for slots known decided
    let wanted = this.knownMax
    for (const waiting of this.readsIndexed) if (waiting.index - 1 > wanted) wanted = waiting.index - 1
    const top = Math.min(wanted, this.slotOut + this.config.window - 1)
    for (let s = this.slotOut; s <= top; s++) {
      if (!this.decisions.has(s) && !this.proposals.has(s)) this.toLeaders(Trusted.propose(s, Cmd.noop))
    }
  }

  /** Just started, with peers whose digests may make a copy worth more than the log (`listenTicks`). */
  private get listening(): boolean {
    return this.ticks < listenTicks && this.vouched
  }

  /**
   * The digest slot of a peer's state worth copying instead of learning the log, if any.
   * Far behind: a slot known decided lies `copyWindows` windows or more past `slotOut`,
   * peers that are a majority of the configuration's replicas hold the same digest at a
   * slot ahead (a state they serve), and more bytes of commands lie before that slot than
   * its state holds. Digest slots come every `digestLimit` bytes of commands
   * (`snapshotRatio` times the state, at least `snapshotBytes`), the same on every replica,
   * so at least `digestLimit − bytesSinceDigest` bytes lie between `slotOut` and any digest
   * slot ahead — except a slot an idle peer rested at, or one of every `snapshotEvery`
   * slots, and with a machine that does not tell its state's size (counted as 0): a copy
   * may then cost more than it saves, once. Learnt from the log, each of those bytes is read back from two acceptors by a
   * new leader's phase 1 (which leaves out the slots of a replica this far behind until it
   * asks for them) and sent on once more; copied, the state crosses once. A replica
   * restarted under load with 64 KiB values, 160 one-megabyte slots behind, made the
   * leader read 160 MB from each of two acceptors four times over, for an 8 MB state.
   */
  private copyWorth(): number | undefined {
    if (this.noRecovery || this.catchingUp || this.repair !== undefined || this.quarantine !== undefined)
      return undefined
    if (this.knownMax - this.slotOut < copyWindows * this.config.window) return undefined
    const agreed = this.digests.agreedByPeersAbove(this.slotOut)
    if (agreed === undefined) return undefined
    const size = this.machine.size?.(this.state) ?? 0
    return this.digestLimit - this.bytesSinceDigest >= size ? agreed : undefined
  }

  /**
   * Tick: starts, goes on with or gives up a copy for being far behind (`copyWorth`). True
   * while one is under way. One that brings no chunk for `copyPatienceTicks` ticks (no peer
   * serves a state ahead: theirs are not verified that far, or they are busy) is given up
   * for `copyRetryTicks`, and the replica learns the log meanwhile.
   */
  private copyTick(): boolean {
    if (this.copyBackoff > 0) this.copyBackoff--
    const agreed = this.copyWorth()
    if (agreed === undefined) {
      if (this.copy !== undefined) this.endCopy()
      return false
    }
    const copy = this.copy
    if (copy === undefined) {
      if (this.copyBackoff > 0) return false
      this.copy = { idle: 0, taken: this.sink.taken }
      this.out.event({ _tag: "Copying", slotOut: this.slotOut, knownMax: this.knownMax, agreed })
    } else if (this.sink.taken > copy.taken) {
      // only chunks the transfer took count: not late ones of a peer it moved on from
      copy.taken = this.sink.taken
      copy.idle = 0
    } else if (++copy.idle > copyPatienceTicks) {
      this.copyBackoff = copyRetryTicks
      this.endCopy()
      this.out.event({
        _tag: "TransferFailed",
        reason: `no peer served a copy of the state at slot ${agreed}: learning the log instead`
      })
      return false
    }
    for (const o of this.sink.tick(this.slotOut, this.leaderReplica())) this.out.send(o.to, o.message)
    return true
  }

  /** The replica beside the leader it follows, if that server hosts one: the peer to copy from last. */
  private leaderReplica(): Address.Address | undefined {
    const leader = this.leader
    return leader === undefined ? undefined : Address.replica(Address.id(leader))
  }

  /** A copy for being far behind ends without an install: the commands it held back go now. */
  private endCopy(): void {
    this.copy = undefined
    this.sink.stop()
    this.propose()
  }

  /** A snapshot of everything below `slotOut`. */
  snapshot(): Storage.ReplicaSnapshot {
    return {
      slotOut: this.slotOut,
      state: this.codecs.encodeState(this.state),
      clients: this.table.toSnapshot(),
      digestBytes: this.bytesSinceDigest,
      ...limitField(this.capturedLimit),
      ...historyField(this.history)
    }
  }

  /**
   * The same snapshot with the state not encoded yet: states are immutable values, so
   * holding on to this one costs nothing, and the host encodes it off the step loop.
   */
  capture(): Captured<S> {
    return {
      slotOut: this.slotOut,
      state: this.state,
      clients: this.table.toSnapshot(),
      digestBytes: this.bytesSinceDigest,
      ...limitField(this.capturedLimit),
      history: this.history
    }
  }

  /** `digestLimit` as snapshots carry it: absent while it is `snapshotBytes`. */
  private get capturedLimit(): number | undefined {
    return this.digestLimit === this.config.snapshotBytes ? undefined : this.digestLimit
  }

  /** The state machine's current state (not encoded). */
  get current(): S {
    return this.state
  }

  /** Asks the host for the digest of the current state, once per slot (off the loop: it encodes the whole state). */
  private digest(): void {
    if (this.slotOut <= this.digested || this.slotOut === 1) return
    this.digested = this.slotOut
    const captured = this.capture()
    this.captures.set(this.slotOut, captured)
    if (this.captures.size > Divergence.RECENT) this.captures.delete(Math.min(...this.captures.keys()))
    this.out.work({ _tag: "Digest", epoch: this.epoch, captured })
  }

  /** Acts on the verdict at `slot`, if there is one and no later verdict superseded it. */
  private judge(slot: number): void {
    if (this.ignoreDivergence || slot < this.verdictFloor || slot === this.judged) return
    const verdict = this.digests.verdict(slot)
    if (verdict === undefined) return
    this.verdictFloor = slot
    this.judged = slot
    if (verdict._tag === "Agreed") {
      const captured = this.captures.get(slot)
      if (captured !== undefined && (this.verified === undefined || this.verified.slotOut < slot))
        this.verified = captured
      if (this.quarantine === undefined) return
      this.quarantine = undefined
      this.repair = undefined
      this.probe?.replicaRecovered(this.id, this.slotOut, false)
      this.out.event({ _tag: "Recovered", slotOut: this.slotOut, installed: false })
      return
    }
    if (this.quarantine === undefined) {
      this.divergences++
      this.probe?.replicaDiverged(this.id, slot)
    }
    this.quarantine = verdict
    if (verdict._tag === "Diverged") {
      this.repair = new StateTransfer.Sink(verdict.peers, 0)
      this.sink.stop()
    } else {
      this.repair = undefined
    }
    this.out.event(verdict)
  }

  /** Proposes what the window and the batching linger allow. */
  propose(): void {
    const { window, batch } = this.config
    this.lingerUntil = undefined
    // far behind, copying: the slots it would take are decided already, and a leader would
    // read them back from the acceptors to answer; the commands go once the copy is in
    if (this.copy !== undefined) return
    // a change takes a slot of its own, before the commands waiting
    while (this.slotIn < this.slotOut + window && this.changes.length > 0) {
      const slot = this.slotIn++
      if (this.decisions.has(slot)) continue
      this.send(slot, this.changes.shift()!)
    }
    while (this.slotIn < this.slotOut + window && this.pending.size > 0) {
      // past `eagerSlots` undecided proposals only a full batch goes; the rest waits for a
      // decision (commands wait for the slots before theirs anyway)
      if (this.proposals.size >= batch.eagerSlots && !this.fullBatchPending()) return
      if (batch.lingerMs > 0 && this.pending.size < batch.maxSize) {
        // a partial batch waits a little for company, but never longer than the linger
        const until = this.pendingSince + batch.lingerMs
        if (this.now() < until) {
          this.lingerUntil = until
          return
        }
      }
      const slot = this.slotIn++
      if (this.decisions.has(slot)) continue
      const commands: Array<Command.Command> = []
      let bytes = 0
      for (const [k, c] of this.pending) {
        // capped by bytes as well as count, so the Propose, P2a and Decision carrying it fit
        const size = this.pending.bytesOf(k) + 1
        if (commands.length > 0 && bytes + size > this.limits.batchBytes) break
        bytes += size
        this.pending.delete(k)
        this.inFlight.add(k)
        commands.push(c)
        if (commands.length >= batch.maxSize) break
      }
      this.pendingSince = this.now()
      this.send(slot, Trusted.batch(commands))
    }
  }

  /** Do the pending commands fill a batch, by count or by bytes? */
  private fullBatchPending(): boolean {
    return this.pending.size >= this.config.batch.maxSize || this.pending.bytes > this.limits.batchBytes
  }

  /** Proposes `value` in `slot`, to the leader it follows (every leader if none), and resends it until decided. */
  private send(slot: number, value: Command.Batch | Command.Reconfigure): void {
    this.proposals.set(slot, value)
    this.resendAt.set(slot, { at: this.now() + this.config.timeouts.retransmitMs, attempts: 0 })
    const propose = Trusted.propose(slot, value)
    const leader = this.leader
    if (leader === undefined) this.toLeaders(propose)
    else this.out.send(leader, propose)
  }

  private perform(slot: number, value: Command.SlotValue): void {
    const performed: Array<string> = []
    if (value._tag === "Batch") {
      // the slot's commands on a draft of the state, when the machine has them: nothing
      // reads the states between two of them
      const edit = this.machine.edit
      if (edit !== undefined) this.state = edit.begin(this.state)
      try {
        this.performBatch(slot, value, performed)
      } finally {
        if (edit !== undefined) this.state = edit.end(this.state)
      }
    } else if (value._tag === "Reconfigure") {
      // in slot order, on every replica alike: the same history after the same slots
      const next = Configuration.apply(this.history, slot, value.members, this.effectAfter)
      if (next === undefined) {
        this.out.event({
          _tag: "Reconfigured",
          slot,
          members: value.members,
          effective: 0,
          error: `the configuration history is full (${Configuration.maxEntries} entries): change refused`
        })
      } else {
        this.history = next
        this.reconfigured()
        this.out.event({
          _tag: "Reconfigured",
          slot,
          members: value.members,
          effective: next[next.length - 1]!.from
        })
      }
    }
    this.slotOut = slot + 1
    this.performedSlots++
    this.performedCommands += performed.length
    this.probe?.performed(this.id, slot, performed)
    if (Divergence.isDigestSlot(this.slotOut, this.config.snapshotEvery) || this.bytesSinceDigest >= this.digestLimit) {
      this.bytesSinceDigest = 0
      this.digestLimit = digestLimitFor(this.config, this.machine.size?.(this.state))
      this.digest()
    }
  }

  /** A batch's commands, in order: each performed once, its outcome recorded and answered. */
  private performBatch(slot: number, value: Command.Batch, performed: Array<string>): void {
    for (const c of value.commands) {
      const k = Cmd.commandKey(c)
      this.pending.delete(k)
      if (!this.noClientTable && this.table.isPerformed(c.client, c.seq)) {
        this.local.delete(k)
        continue
      }
      const decoded = this.codecs.decodeCommand(c.op)
      let outcome:
        | { slot: number; result: null; error: string }
        | { slot: number; result: ReturnType<StateMachine.Codecs<S, C, R>["encodeResult"]> }
      // about its JSON's length, without stringifying it (4 KB values made this a tenth of
      // a replica's work): the same on every replica, so all find the same digest slots
      const bytes = Limits.jsonLength(c.op)
      this.bytesSinceSnapshot += bytes
      this.bytesSinceDigest += bytes
      if (Result.isFailure(decoded)) {
        outcome = { slot, result: null, error: `invalid command: ${decoded.failure}` }
      } else {
        const [next, result] = this.machine.apply(this.state, decoded.success)
        this.state = next
        outcome = { slot, result: this.codecs.encodeResult(result) }
      }
      this.table.record(c.client, c.seq, c.acked, outcome)
      performed.push(k)
      // the replica the client asked answers; the others answer its retries from the table
      if (this.local.delete(k)) this.respond(c.client, c.seq, outcome)
    }
  }

  private respond(
    client: string,
    seq: number,
    outcome: { readonly slot: number; readonly result: any; readonly error?: string }
  ): void {
    // no answer from a state its peers contradict: clients retry at another replica
    if (this.quarantine !== undefined) return
    this.probe?.replicaAnswered(this.id, client, seq)
    if (!Limits.jsonFits(outcome.result, this.limits.batchBytes)) {
      // the answer would never arrive: say so instead (the command was performed all the same)
      const size = Limits.jsonBytes(outcome.result)
      outcome = {
        slot: outcome.slot,
        result: null,
        error: `the result of ${size} bytes exceeds the message limit of ${this.limits.batchBytes} bytes`
      }
    }
    this.out.send(
      Address.client(client),
      Trusted.response(seq, outcome.result, outcome.slot, outcome.error, this.leaderHint())
    )
  }

  /**
   * The server a client should send to next: the one whose leader this replica follows,
   * when it hosts a replica too. Its replica proposes to a leader in its own process and
   * hears the decision there first, so a command skips two network hops (a read, the
   * read-index question and answer). Only a hint: a wrong one costs the client time.
   */
  private leaderHint(): string | undefined {
    const leader = this.leader
    if (leader === undefined) return undefined
    const id = Address.id(leader)
    return this.config.replicas.includes(id) ? id : undefined
  }

  private toLeaders(message: Message.Message): void {
    for (const to of this.leaders) this.out.send(to, message)
    // the leader it follows may be one of a configuration it has not performed yet (it is
    // behind a change of leaders): it hears too, else a replica whose history's leaders
    // were replaced or forgot the slots it misses waits forever for them
    const followed = this.leader
    if (followed !== undefined && !this.leaders.includes(followed)) this.out.send(followed, message)
  }
}

const decodeMembers = Schema.decodeUnknownResult(Configuration.Members)
const membersFormatter = SchemaIssue.makeFormatterDefault()

/** A configuration change performed (or refused: `error`), as `reconfigure` answers it. */
export type Reconfigured = Extract<Event, { readonly _tag: "Reconfigured" }>

/**
 * The bytes of commands between digest slots (and snapshots) after a digest slot whose
 * state has `size` bytes (`StateMachine.size`; unknown: `snapshotBytes`): `snapshotRatio`
 * times the size, between `snapshotBytes` and `snapshotMaxBytes`. A snapshot then costs at
 * most about 1/`snapshotRatio` of a byte per byte of commands, where a fixed count made a
 * large state's snapshots cost more with every byte it grew.
 */
export const digestLimitFor = (config: ClusterConfig.ClusterConfig, size: number | undefined): number => {
  if (size === undefined || !Number.isFinite(size) || config.snapshotRatio === 0) return config.snapshotBytes
  const wanted = Math.floor(config.snapshotRatio * size)
  return Math.min(config.snapshotMaxBytes, Math.max(config.snapshotBytes, wanted))
}

/** The bytes of state (`StateMachine.size`) per extra leader timeout of rest before a rest digest. */
export const restBytesPerTimeout = 4 * 1024 * 1024

/**
 * How long a replica rests (nothing performed, nothing known decided beyond) before it
 * digests the slot it rests at: a leader timeout, and another per `restBytesPerTimeout` of
 * state. A digest encodes and hashes the whole state; under load with 4 KB values a slot
 * sometimes took longer than a leader timeout, and digesting a store of 13–21 MB at each
 * such pause took a third of every server's CPU, which made the next pause longer. With
 * the wait a digest costs at most about a third of the rest before it (encoding, hashing
 * and saving took about 25 ms per MB here, against 75 ms of rest per MB).
 */
export const restBeforeDigestMs = (config: ClusterConfig.ClusterConfig, size: number | undefined): number => {
  const perState = size === undefined || !Number.isFinite(size) ? 0 : Math.floor(size / restBytesPerTimeout)
  return config.timeouts.leaderTimeoutMs * (1 + perState)
}

/** A snapshot whose state is not encoded yet (`ReplicaCore.capture`). */
export interface Captured<S> {
  readonly slotOut: number
  readonly state: S
  readonly clients: Storage.ReplicaSnapshot["clients"]
  readonly digestBytes: number
  /** `ReplicaCore.digestLimit`, when it is not `snapshotBytes`. */
  readonly digestLimit?: number
  readonly history: Configuration.History
}

/**
 * A snapshot's `history` key: present once the configuration changed, absent while it is
 * the cluster config's (so a cluster that never changed keeps the snapshots and digests it had).
 */
const historyField = (history: Configuration.History): { readonly history?: Configuration.History } =>
  history.length > 1 ? { history } : {}

/**
 * A snapshot's `digestLimit` key: absent while it is `snapshotBytes` (a small state's
 * snapshots and digests are the ones they were before the limit grew with the state).
 */
const limitField = (limit: number | undefined): { readonly digestLimit?: number } =>
  limit === undefined ? {} : { digestLimit: limit }

/**
 * The state digest of a snapshot's encoded text, `JSON.stringify` of `{slotOut, state,
 * clients, digestBytes}` — the text state transfer sends and a replica stores: SHA-256, hex.
 */
export const digestText = (text: string): string => createHash("sha256").update(text).digest("hex")

/**
 * `digestText` a slice of `sliceChars` characters per turn: hashing the 40 MB text of a
 * large store at once stalled every role of the process for about 100 ms.
 */
export function* digestTextGradually(
  text: string | ReadonlyArray<string>,
  sliceChars = 1 << 20
): Generator<void, string, void> {
  const hash = createHash("sha256")
  let first = true
  // a text in chunks (`JsonText.stringifyChunks`) is hashed chunk by chunk, never joined
  for (const piece of JsonText.pieces(typeof text === "string" ? [text] : text, sliceChars)) {
    if (!first) yield
    first = false
    for (const chunk of piece) hash.update(chunk)
  }
  return hash.digest("hex")
}

/** The state digest of a captured snapshot: encoded and hashed a slice per turn, off the replica's loop. */
export const digestCaptured = <S>(
  codecs: StateMachine.Codecs<S, unknown, unknown>,
  captured: Captured<S>
): Effect.Effect<string> => Effect.flatMap(encodeCaptured(codecs, captured), digestSnapshot)

/** The state digest of an encoded snapshot: stringified a slice per turn, then hashed. */
export const digestSnapshot = (snapshot: Storage.ReplicaSnapshot): Effect.Effect<string> =>
  // `textOf`: the save that follows a digest writes the same text (FileStorage)
  Effect.flatMap(JsonText.textOf(snapshot as unknown as Schema.Json & object), (text) =>
    JsonText.runGradually(() => digestTextGradually(text))
  )

/** Encodes a captured snapshot at once (`encodeCaptured` does it a slice per turn). */
export const encodeCapturedNow = <S>(
  codecs: StateMachine.Codecs<S, unknown, unknown>,
  captured: Captured<S>
): Storage.ReplicaSnapshot => ({
  slotOut: captured.slotOut,
  state: codecs.encodeState(captured.state),
  clients: captured.clients,
  digestBytes: captured.digestBytes,
  ...limitField(captured.digestLimit),
  ...historyField(captured.history)
})

/** Encodes a captured snapshot, a slice per turn (the machine's `encodeSnapshotGradually`). */
export const encodeCaptured = <S>(
  codecs: StateMachine.Codecs<S, unknown, unknown>,
  captured: Captured<S>
): Effect.Effect<Storage.ReplicaSnapshot> =>
  Effect.map(
    JsonText.runGradually(() => codecs.encodeStateGradually(captured.state)),
    (state) => ({
      slotOut: captured.slotOut,
      state,
      clients: captured.clients,
      digestBytes: captured.digestBytes,
      ...limitField(captured.digestLimit),
      ...historyField(captured.history)
    })
  )

export interface Status {
  readonly id: string
  /** Every slot below this one is applied. */
  readonly slotOut: number
  /**
   * The state machine's state, encoded by its snapshot schema: encoded when read, so read
   * it only when needed. While diverged, the last state before (never one its peers contradict).
   */
  readonly state: unknown
  /** The state machine's state as it is (not encoded); while diverged, the last state before. */
  readonly current: unknown
  /** Clients in the client table. */
  readonly clients: number
  /** Client commands waiting for a slot. */
  readonly pending: number
  /** Client commands it took and has not answered yet (a clean stop waits for them: `Server`). */
  readonly answering: number
  /** The GC watermark it knows of; below it, it is fetching a peer's snapshot. */
  readonly watermark: number
  /** slotOut of its last durable snapshot. */
  readonly durable: number
  /**
   * slotOut of the newest state a clean stop saves: with three replicas or more the last
   * one a majority of them agreed with (docs/protocol.md#divergence-detection), else its
   * current one. Idle, it reaches `slotOut` once the replicas compared digests.
   */
  readonly verified: number
  /** The configuration history after the slots below `slotOut` (docs/reconfiguration.md). */
  readonly history: Configuration.History
  /** The leader (its id) whose heartbeats last said it is active; absent until one did. */
  readonly leader?: string
  /**
   * Present while its state disagrees with its peers' at a digest slot: it answers no
   * client (docs/protocol.md#divergence-detection). `majority`: the digest a majority of the
   * replicas hold, when one does (it then copies the snapshot of one of them).
   */
  readonly diverged?: { readonly slot: number; readonly own: string; readonly majority?: string }
}

/**
 * The replica's state as applied so far, for observers in the same process (watches,
 * backups): read-only, and never ahead of what the replica has applied. Never a state
 * its peers contradict: while the replica is diverged, `current` and `next` wait until
 * it has recovered (`diverged` says whether it is, for reads that would rather fail).
 */
export interface Applied<S> {
  /** The state after the last applied command or installed snapshot. */
  readonly current: Effect.Effect<S>
  /** Waits until the state is no longer `seen` (compared by reference), then answers it. */
  next(seen: S): Effect.Effect<S>
  /** While the replica's state disagrees with its peers': the slot where it was found out. */
  readonly diverged: Effect.Effect<{ readonly slot: number } | undefined>
}

/**
 * The value `chosen` names: what the acceptor beside it holds for the slot, if it holds
 * it at the deciding ballot or above. Any proposal for a slot at a ballot above the one
 * that chose its value carries that value (the invariant phase 1 keeps), and one ballot
 * proposes one value per slot; a lower ballot's value may be another.
 */
export const resolve = (held: Command.PValue | undefined, chosen: Message.Chosen): Command.SlotValue | undefined =>
  held !== undefined && held.slot === chosen.slot && !Ballot.lessThan(held.ballot, chosen.ballot)
    ? held.value
    : undefined

const isInbound = (m: Message.Message): m is Message.ReplicaInbound =>
  m._tag === "Request" ||
  m._tag === "Chosen" ||
  m._tag === "Read" ||
  m._tag === "ReadIndexReply" ||
  m._tag === "Decision" ||
  m._tag === "Heartbeat" ||
  m._tag === "StateRequest" ||
  m._tag === "StateChunk" ||
  m._tag === "Digest" ||
  m._tag === "History"

/** Runs replica `id` of `machine` until the scope closes; answers its status. Requires `Transport` and `Storage`. */
/**
 * The replica's spans (tracing on). A request's trace is remembered by its command; a
 * proposal is a span `synod.propose` per slot, child of the trace of the first traced
 * command of its batch and linked to the traces of the others, from the first Propose
 * until the slot's decision arrives here; its Propose messages carry it to the leaders.
 * Each decision of a slot not yet performed is a span `synod.perform`, child of the
 * commander's `synod.decision`, until the slot is performed and its commands answered
 * (it may wait for the slots before it).
 */
const tracing = (spans: Trace.Spans, id: string, slotOut: () => number): Host.Tracing => {
  /** The client's span of each command heard, by `commandKey`. */
  const requests = new Trace.Recent<string, Tracer.AnySpan>(4096)
  const proposals = new Trace.Recent<number, Tracer.Span>(1024, (span) => spans.end(span))
  /** Decisions of slots not yet performed, by slot. */
  const performing = new Trace.Recent<number, Tracer.Span>(1024, (span) => spans.end(span))
  return {
    received: (envelope, parent) => {
      const message = envelope.message
      if (message._tag === "Request") {
        requests.set(Cmd.commandKey(message.command), parent)
        return undefined
      }
      if (message._tag !== "Decision" && message._tag !== "Chosen") return undefined
      const proposal = proposals.take(message.slot)
      if (proposal !== undefined) spans.end(proposal)
      // performed already, or a duplicate of a decision waiting
      if (message.slot < slotOut() || performing.get(message.slot) !== undefined) return undefined
      performing.set(
        message.slot,
        spans.start("synod.perform", parent, {
          "synod.replica": id,
          "synod.slot": message.slot,
          ...(message._tag === "Chosen"
            ? {}
            : { "synod.commands": message.value._tag === "Batch" ? message.value.commands.length : 0 })
        })
      )
      return undefined
    },
    // the batch's answers are sent: every slot below slotOut is performed
    flushed: () => {
      if (performing.size === 0) return
      const out = slotOut()
      for (const [slot, span] of performing.entries()) {
        if (slot >= out) continue
        performing.take(slot)
        spans.end(span)
      }
    },
    sending: (message) => {
      if (message._tag !== "Propose") return undefined
      const open = proposals.get(message.slot)
      if (open !== undefined || message.value._tag !== "Batch") return open
      const traced: Array<Tracer.AnySpan> = []
      for (const command of message.value.commands) {
        const span = requests.get(Cmd.commandKey(command))
        if (span !== undefined) traced.push(span)
      }
      if (traced.length === 0) return undefined
      const span = spans.start(
        "synod.propose",
        traced[0]!,
        { "synod.replica": id, "synod.slot": message.slot, "synod.commands": message.value.commands.length },
        traced.slice(1)
      )
      proposals.set(message.slot, span)
      return span
    }
  }
}

export const run = Effect.fn("Replica.run")(function* <S, C, R>(
  id: string,
  config: ClusterConfig.ClusterConfig,
  machine: StateMachine.StateMachine<S, C, R>,
  options: {
    readonly snapshotOnClose?: boolean
    /**
     * The pvalue the acceptor of its server holds for a slot (`Acceptor.run`'s
     * `acceptedAt`), to resolve a `Chosen` against; without it every `Chosen` is asked
     * for again as a `Decision`.
     */
    readonly acceptedAt?: ((slot: number) => Command.PValue | undefined) | undefined
  } = {}
) {
  const transport = yield* Transport.Transport
  const storage = yield* Storage.Storage
  const bugs = yield* PlantedBugs
  const probe = yield* ProbeRef
  const clock = yield* Clock.Clock
  const tamper = yield* Tamper
  const rng = yield* Random.Random
  const self = Address.replica(id)
  const store = yield* storage.replica(id)
  const snapshot = yield* store.load
  const core = new ReplicaCore(id, config, machine, snapshot, {
    probe,
    noClientTable: bugs.noClientTable,
    noRecovery: bugs.noHoleFilling,
    now: () => clock.currentTimeMillisUnsafe(),
    maxMessageBytes: transport.maxMessageBytes,
    hash: digestText,
    ignoreDivergence: bugs.ignoreDivergence,
    random: () => rng.nextDoubleUnsafe(),
    immediateReconfig: bugs.immediateReconfig
  })
  probe?.replicaLoaded(id, core.slotOut)
  tamper?.register(id, (f) => {
    core.state = f(core.state) as S
  })
  const codecs = StateMachine.codecs(machine) as StateMachine.Codecs<S, unknown, unknown>
  const { retransmitMs } = config.timeouts
  // read from the core when metrics are exported: nothing to update after each batch
  yield* Metrics.counterFrom(Metrics.of(Metrics.commandsCommitted, id), () => core.performedCommands)
  yield* Metrics.counterFrom(Metrics.of(Metrics.slotsPerformed, id), () => core.performedSlots)
  yield* Metrics.counterFrom(Metrics.of(Metrics.retransmissions, id, { role: "replica" }), () => core.resent)
  yield* Metrics.counterFrom(Metrics.of(Metrics.divergences, id), () => core.divergences)
  yield* Metrics.gaugeFrom(Metrics.of(Metrics.slotLag, id), () => Math.max(0, core.knownMax - core.slotOut + 1))
  yield* Metrics.gaugeFrom(Metrics.of(Metrics.diverged, id), () => (core.quarantine === undefined ? 0 : 1))
  // at debug level, the slots each batch performed (sampled: a busy replica does thousands a second)
  const performedLog = (yield* LogLevel.isEnabled("Debug"))
    ? SampledLog.make(20, () => clock.currentTimeMillisUnsafe())
    : undefined
  let reported = {
    commands: 0,
    slots: 0,
    resent: 0,
    refused: 0,
    shed: 0,
    dropped: 0,
    divergences: 0,
    slotOut: core.slotOut
  }
  const report = Effect.suspend(() => {
    const now = {
      commands: core.performedCommands,
      slots: core.performedSlots,
      resent: core.resent,
      refused: core.refused,
      shed: core.shed,
      divergences: core.divergences,
      dropped: core.readsDropped,
      slotOut: core.slotOut
    }
    const before = reported
    reported = now
    if (
      now.refused === before.refused &&
      now.shed === before.shed &&
      now.dropped === before.dropped &&
      (performedLog === undefined || now.slotOut <= before.slotOut)
    ) {
      return Effect.void
    }
    return Effect.all(
      [
        now.refused === before.refused
          ? Effect.void
          : Effect.logWarning("refused client commands too large for one message", {
              refused: now.refused - before.refused,
              limit: Limits.fromMessageBytes(transport.maxMessageBytes).commandBytes
            }),
        now.shed === before.shed
          ? Effect.void
          : Effect.logWarning("shed new client commands: too many waiting to be proposed", {
              shed: now.shed - before.shed,
              waiting: core.pending.size
            }),
        now.dropped === before.dropped
          ? Effect.void
          : Effect.logWarning("dropped client reads: too many waiting for their read index", {
              dropped: now.dropped - before.dropped,
              limit: maxWaitingReads
            }),
        performedLog === undefined || now.slotOut <= before.slotOut
          ? Effect.void
          : performedLog("performed decided slots", {
              from: before.slotOut,
              through: now.slotOut - 1,
              commands: now.commands - before.commands
            })
      ],
      { discard: true }
    )
  })

  // configuration changes asked through `reconfigure`, by members, until performed
  const changing = new Map<string, Array<Deferred.Deferred<Extract<Event, { _tag: "Reconfigured" }>>>>()
  const control = yield* Queue.unbounded<Input>()
  const observe = (events: ReadonlyArray<Event>) =>
    Effect.forEach(
      events,
      (event) => {
        switch (event._tag) {
          case "Saved":
            probe?.replicaSaved(id, event.slotOut)
            return Effect.logDebug("snapshot saved", { slot: event.slotOut })
          case "Installed":
            return Effect.logInfo("installed a peer's snapshot", { slot: event.slotOut })
          case "CatchingUp":
            return Effect.logInfo("behind the GC watermark: copying a peer's snapshot", {
              slot: event.slotOut,
              watermark: event.watermark
            })
          case "Copying":
            return Effect.logInfo("far behind its peers: copying a peer's state instead of learning the log", {
              slot: event.slotOut,
              knownDecided: event.knownMax,
              agreedAt: event.agreed
            })
          case "TransferFailed":
            return Effect.logWarning(event.reason)
          case "Diverged":
            return Effect.logError(
              "state diverged: a majority of replicas hold another digest at this slot; not answering clients, copying the snapshot of a replica of the majority",
              { slot: event.slot, digest: event.own, majority: event.majority, from: event.peers.map(Address.id) }
            )
          case "Split":
            return Effect.logError(
              "state digests disagree and no majority of replicas holds any one of them: which state is right is unknown; not answering clients until a later digest agrees with a majority",
              {
                slot: event.slot,
                digest: event.own,
                others: Object.fromEntries(event.others.map((o) => [Address.id(o.replica), o.digest]))
              }
            )
          case "Reconfigured": {
            const waiting = changing.get(Cmd.membersKey(event.members))
            if (waiting !== undefined) {
              changing.delete(Cmd.membersKey(event.members))
              for (const d of waiting) Deferred.doneUnsafe(d, Effect.succeed(event))
            }
            return event.error === undefined
              ? Effect.logInfo("configuration change performed", {
                  slot: event.slot,
                  effective: event.effective,
                  members: event.members
                })
              : Effect.logWarning(event.error, { slot: event.slot, members: event.members })
          }
          case "Recovered":
            return Effect.logWarning(
              event.installed
                ? "recovered from divergence: installed the snapshot of a replica of the majority; answering clients again"
                : "recovered from divergence: a later digest agrees with a majority of replicas; answering clients again",
              { slot: event.slotOut }
            )
        }
      },
      { discard: true }
    )

  // observers of the applied state wait on `changed`, completed after each batch that moved it
  let published = core.state
  let changed = Deferred.makeUnsafe<void>()
  // a diverged state is never published: observers wait until it recovered, and are woken
  // then even if the state is the one they saw (`current` waits for the recovery itself)
  let withheld = false
  const publish = Effect.sync(() => {
    if (core.quarantine !== undefined) {
      withheld = true
      return
    }
    if (core.state === published && !withheld) return
    withheld = false
    published = core.state
    const done = changed
    changed = Deferred.makeUnsafe<void>()
    Deferred.doneUnsafe(done, Effect.void)
  })

  // registered before the loop is forked, so it runs after the loop has stopped
  if (options.snapshotOnClose === true) {
    yield* Effect.addFinalizer(() => {
      const last = core.finalSnapshot()
      return last === undefined
        ? Effect.void
        : store.save(last).pipe(
            // the process is stopping: its last snapshot is all the work left, not background work to pace
            Effect.provideService(JsonText.Pause, JsonText.Pause.defaultValue()),
            Effect.catchCause((cause) => Effect.logWarning("final snapshot failed", cause))
          )
    })
  }
  // With three replicas or more the state saved is the capture a digest was just computed
  // of, once a majority agreed with it: the save reuses that encoding instead of encoding
  // the whole state again. One is kept, the latest (it is what the next save wants).
  let lastEncoded: { readonly captured: Captured<S>; readonly snapshot: Storage.ReplicaSnapshot } | undefined
  const encode = (captured: Captured<S>): Effect.Effect<Storage.ReplicaSnapshot> =>
    lastEncoded?.captured === captured
      ? Effect.succeed(lastEncoded.snapshot)
      : Effect.tap(encodeCaptured(codecs, captured), (snapshot) =>
          Effect.sync(() => {
            lastEncoded = { captured, snapshot }
          })
        )
  yield* Host.run({
    self,
    core,
    accepts: isInbound,
    message: (from, message): Input =>
      message._tag === "Chosen"
        ? { _tag: "Chosen", from, slot: message.slot, value: resolve(options.acceptedAt?.(message.slot), message) }
        : { _tag: "Message", from, message },
    tick: { everyMs: retransmitMs, input: { _tag: "Tick" } },
    wake: { _tag: "Wake" },
    control,
    // the writer encodes the captured state a slice per turn, then saves it
    // the text its digest kept (`JsonText.textOf`) is dropped once saved, whatever the storage
    persist: (snapshots) =>
      Effect.flatMap(encode(snapshots[snapshots.length - 1]!), (snapshot) =>
        Effect.ensuring(
          store.save(snapshot),
          Effect.sync(() => JsonText.forget(snapshot))
        )
      ),
    persistInBackground: true,
    persisted: (snapshots): Input => ({ _tag: "Saved", slotOut: snapshots[snapshots.length - 1]!.slotOut }),
    work: (job: Job<S>) =>
      job._tag === "Digest"
        ? Effect.map(
            Effect.flatMap(encode(job.captured), digestSnapshot),
            (digest): Input => ({ _tag: "Digested", slot: job.captured.slotOut, epoch: job.epoch, digest })
          )
        : Effect.map(
            // the latest digest's encoding when it is this state's (the verified one, mostly);
            // never kept as the latest: the next save wants the next digest's
            Effect.flatMap(
              lastEncoded?.captured === job.captured
                ? Effect.succeed(lastEncoded.snapshot)
                : encodeCaptured(codecs, job.captured),
              (snapshot) => JsonText.runGradually(() => StateTransfer.encodeForTransfer(snapshot, job.chunkChars))
            ),
            ({ chunks, checksum }): Input => ({ _tag: "Encoded", slotOut: job.captured.slotOut, chunks, checksum })
          ),
    observe,
    afterBatch: Effect.andThen(report, publish),
    trace: (spans) => tracing(spans, id, () => core.slotOut)
  }).pipe(Effect.annotateLogs({ role: "replica", id }))
  const next = (seen: S): Effect.Effect<S> =>
    Effect.suspend(() =>
      published !== seen ? Effect.succeed(published) : Effect.andThen(Deferred.await(changed), next(seen))
    )
  const applied: Applied<S> = {
    current: Effect.suspend(() =>
      core.quarantine === undefined
        ? Effect.succeed(core.state)
        : Effect.andThen(Deferred.await(changed), applied.current)
    ),
    next,
    diverged: Effect.sync(() => (core.quarantine === undefined ? undefined : { slot: core.quarantine.slot }))
  }
  /**
   * Proposes a configuration change (docs/reconfiguration.md) and waits until this replica
   * performed the slot that decided it: answers that slot, the slot it governs from, or
   * the error it was refused with. Only the server's own API calls this.
   */
  const reconfigure = (members: Configuration.Members) =>
    Effect.gen(function* () {
      const valid = decodeMembers(members)
      if (Result.isFailure(valid)) {
        return {
          _tag: "Reconfigured",
          slot: 0,
          members,
          effective: 0,
          error: `invalid members: ${membersFormatter(valid.failure.issue)}`
        } as const
      }
      const done = Deferred.makeUnsafe<Extract<Event, { _tag: "Reconfigured" }>>()
      const key = Cmd.membersKey(members)
      changing.set(key, [...(changing.get(key) ?? []), done])
      yield* Queue.offer(control, { _tag: "Change", members })
      return yield* Deferred.await(done)
    })
  return {
    applied,
    reconfigure,
    /** The configuration history as this replica performed it. */
    history: Effect.sync(() => core.history),
    /** `history` as it is now, without an effect: for what reads it on every send (a client's replicas). */
    historyNow: (): Configuration.History => core.history,
    status: Effect.sync(
      (): Status => ({
        id,
        slotOut: core.slotOut,
        get state() {
          return codecs.encodeState(core.quarantine === undefined ? core.current : published)
        },
        current: core.quarantine === undefined ? core.current : published,
        clients: core.table.size,
        pending: core.pending.size,
        answering: core.answering,
        watermark: core.watermark,
        durable: core.durable,
        verified: core.verifiedSlot,
        history: core.history,
        ...(core.leader === undefined ? {} : { leader: Address.id(core.leader) }),
        ...(core.quarantine === undefined
          ? {}
          : {
              diverged: {
                slot: core.quarantine.slot,
                own: core.quarantine.own,
                ...(core.quarantine._tag === "Diverged" ? { majority: core.quarantine.majority } : {})
              }
            })
      })
    )
  }
})

/**
 * The leader: turns replicas' proposals into decisions (docs/protocol.md#leader).
 *
 * `LeaderCore` holds its state as data — `Passive | Scouting(ballot) | Active(ballot)`,
 * as frankenpaxos' Leader does — and makes every decision without I/O: fed a message, a
 * tick or a child's outcome, it writes into its outbox the round to persist, the scouts
 * and commanders to start or stop, the P1b and P2b to hand to them, the messages to send
 * and the events to report. `run` hosts it (internal/Host.ts): scouts and commanders are
 * child fibers that a step-down interrupts.
 *
 * - Passive, it records proposals and watches the active leader (`Liveness`); when that
 *   one seems dead or stuck it picks a ballot above every ballot it has seen, persists
 *   the round, and only then starts a scout with it (B1).
 * - Adopted, it overrides its proposals with the acceptors' pvalues (`update`, pmax ◁),
 *   fills every hole below the highest known slot with a no-op (B10), and re-proposes a
 *   window of slots at a time; from then on new proposals skip phase 1.
 * - Preempted by a higher ballot (once per ballot, however many children report it), it
 *   stops every child, backs off, and goes back to watching. Reports that do not match its
 *   current ballot are ignored (B4). Active, it also steps down when it hears a higher
 *   active ballot, or when a majority of acceptors has not answered for the longest
 *   failure-detection timeout while it has work in flight.
 * - Resigning (its process stops cleanly), it stops its children and tells the others with
 *   an inactive heartbeat at its ballot naming its successor (the most caught-up other
 *   leader; on a tie the one after it in the configured order), which competes at once instead of waiting for a failure-detection
 *   timeout, so a rolling restart costs an election round trip, not a timeout. A transfer
 *   (`synod leader transfer [TO]`) does the same without stopping, to the successor or to
 *   the named leader. Safety is unchanged: the successor runs phase 1 with a higher ballot
 *   like any leader.
 * - A proposal for a slot it has seen decided is answered with the decision.
 * - Below the acceptors' GC watermark it proposes nothing and remembers nothing (B11).
 *
 * @since 0.1.0
 */
import {
  Address,
  Ballot,
  type ClusterConfig,
  type Command,
  Command as Cmd,
  Configuration,
  type Message,
  Monotonic,
  Quorum,
  Storage,
  Trace,
  Transport,
  Trusted
} from "@synod/core"
import { Effect, Metric, Queue, Random, Schema, type Tracer } from "effect"
import * as Commander from "./Commander.ts"
import * as Host from "./internal/Host.ts"
import { type PlantedBugs, PlantedBugs as PlantedBugsRef } from "./internal/PlantedBugs.ts"
import { Probe } from "./internal/Probe.ts"
import { Liveness } from "./Liveness.ts"
import * as Metrics from "./Metrics.ts"
import * as Scout from "./Scout.ts"

/**
 * The update operator `proposals ◁ pmax(pvalues)`: the acceptors' reported value wins in
 * every slot they report; the leader's own proposals stand elsewhere.
 * Mutates and returns `proposals`.
 */
export const update = (
  proposals: Map<number, Command.SlotValue>,
  pmax: ReadonlyMap<number, Command.PValue>
): Map<number, Command.SlotValue> => {
  for (const [slot, pv] of pmax) proposals.set(slot, pv.value)
  return proposals
}

/** Fills every slot in [from, to] that has no proposal and is not `known` with a no-op. */
export const fillHoles = (
  proposals: Map<number, Command.SlotValue>,
  from: number,
  to: number,
  known: (slot: number) => boolean
): void => {
  for (let s = from; s <= to; s++) if (!proposals.has(s) && !known(s)) proposals.set(s, Cmd.noop)
}

export type State =
  | { readonly _tag: "Passive" }
  | { readonly _tag: "Scouting"; readonly ballot: Ballot.Ballot }
  | { readonly _tag: "Active"; readonly ballot: Ballot.Ballot }

const passive: State = { _tag: "Passive" }

/** What the leader is fed: a message, a tick, or how one of its children ended. */
export type Input =
  | { readonly _tag: "Message"; readonly from: Address.Address; readonly message: Message.LeaderInbound }
  | { readonly _tag: "Tick" }
  | { readonly _tag: "ScoutEnded"; readonly outcome: Scout.Outcome }
  | { readonly _tag: "CommanderEnded"; readonly slot: number; readonly outcome: Commander.Outcome }
  /** Its process is stopping: hand the leadership over and never compete again. */
  | { readonly _tag: "Resign" }
  /**
   * Hand the leadership over to `to` (default: the most caught-up other leader, `successor`) and
   * go on as a passive one (`synod leader transfer [TO]`). A `to` that `transferTarget`
   * refuses changes nothing.
   */
  | { readonly _tag: "Transfer"; readonly to?: string }

/** The children it starts: one scout per ballot, one commander per (ballot, slot). */
type CommanderSpec = Extract<Child, { readonly _tag: "Commander" }>

export type Child =
  | {
      readonly _tag: "Scout"
      readonly ballot: Ballot.Ballot
      readonly from: number
      /** Only slots below this one (absent: every slot from `from` on): see `rescout`. */
      readonly before?: number
      /** Every acceptor of `configs`: where its P1a go. */
      readonly acceptors: ReadonlyArray<string>
      /** The configurations (acceptor sets) a majority of each of which must promise. */
      readonly configs: ReadonlyArray<ReadonlyArray<string>>
      /**
       * Per configuration, the slot from which it governs nothing as far as the history
       * tells (`Number.MAX_SAFE_INTEGER` for the latest): below a watermark an acceptor
       * reports, it need not promise (its acceptors may be retired).
       */
      readonly until: ReadonlyArray<number>
      /**
       * Asked first, the others only once one of these lets a retransmit period pass
       * without a page (absent: every acceptor at once): a majority of each configuration,
       * for phase 1 again below where it began (`rescout`), which reads while writes go on.
       */
      readonly first?: ReadonlyArray<string>
    }
  | {
      readonly _tag: "Commander"
      readonly ballot: Ballot.Ballot
      readonly slot: number
      readonly value: Command.SlotValue
      /** The acceptors of the slot's configuration: P2a go to them, a majority of them decides. */
      readonly acceptors: ReadonlyArray<string>
      /** The replicas of the slot's configuration and of every later one the leader knows: the decision goes to them. */
      readonly replicas: ReadonlyArray<string>
      /** `Chosen` owed for earlier slots, sent after its P2a (`Leader.owed`). */
      readonly piggyback: ReadonlyArray<Commander.Owed>
    }

/**
 * The shortest gap between two ticks taken for a stall of the process rather than load: a
 * busy event loop delays ticks by tens to hundreds of milliseconds, and a follower that
 * took each such delay for a stall would replace a dead leader one wait later (a fail-over
 * under 64 writers took 1.7 s once with the timeout alone as the bound).
 */
export const stallMs = 1000

/**
 * A tick this many heartbeat periods after the one before came late: its process was busy,
 * and a passive leader judges on the next tick instead (see `tick`).
 */
export const lateTick = 2

/**
 * A leader with `busyLateTicks` late ticks within `busyMs` counts as busy
 * (`LeaderCore.busy`): a process kept busy, not one late tick (a collection, a burst).
 */
export const busyLateTicks = 3
export const busyMs = 1000

/**
 * How many windows behind the replica furthest ahead a replica's report may be and still count as caught up:
 * reports are a tick old, and a replica follows the log a window of slots at a time. One
 * further behind is lagging: it is not handed the leadership (`successor`), and phase 1
 * does not begin at its `slotOut` (`settled`).
 */
const laggingWindows = 4

/** What observers learn (logs, metrics, the checker). */
export type Event =
  | {
      readonly _tag: "Competing"
      readonly ballot: Ballot.Ballot
      readonly watched: Ballot.Ballot
      /** Why: the watched leader fell silent or seems stuck (`Liveness.suspicion`), or handed over to this one. */
      readonly because: "silent" | "stuck" | "handed over"
    }
  | {
      readonly _tag: "Adopted"
      readonly ballot: Ballot.Ballot
      readonly slots: number
      readonly reported: number
      /** The slot phase 1 began at. */
      readonly from: number
    }
  /** A slot below where phase 1 began is needed: phase 1 again at the same ballot, from `from`. */
  | { readonly _tag: "Rescouting"; readonly ballot: Ballot.Ballot; readonly from: number }
  /** That phase 1 ended: `reported` pvalues read from `from` on, `ms` after it began. */
  | {
      readonly _tag: "Rescouted"
      readonly ballot: Ballot.Ballot
      readonly from: number
      readonly reported: number
      readonly ms: number
    }
  | { readonly _tag: "SteppedDown"; readonly ballot: Ballot.Ballot; readonly by: Ballot.Ballot }
  | { readonly _tag: "Abdicated"; readonly ballot: Ballot.Ballot }
  /** It resigned (its process stops); `successor` is the leader it handed over to, if it led. */
  | { readonly _tag: "Resigned"; readonly ballot: Ballot.Ballot; readonly successor: string | undefined }
  /** It handed the leadership over to `to` and goes on as a passive leader. */
  | { readonly _tag: "Transferred"; readonly ballot: Ballot.Ballot; readonly to: string }
  /** The leader it watched resigned in its favour: it competes at once. */
  | { readonly _tag: "HandedOver"; readonly from: string; readonly ballot: Ballot.Ballot }
  /** Its ticks stopped for `stalledMs` (its process stalled): it watches `watched` afresh before judging it. */
  | { readonly _tag: "Stalled"; readonly stalledMs: number; readonly watched: Ballot.Ballot }
  /** An active leader's slots with a proposal but no decision, commander or place in the backlog (should be none). */
  | { readonly _tag: "Orphans"; readonly slots: ReadonlyArray<number> }

/** The round to make durable before the scout that uses it starts. */
export interface Record {
  readonly round: number
}

/**
 * `self`'s turn to compete once `failed` fails: 0 for the leader right after it in the
 * configured order (cyclically), 1 for the next, ...; with no leader known, the order
 * itself (the first leader goes first).
 */
export const turnAfter = (leaders: ReadonlyArray<string>, failed: string, self: string): number => {
  const n = leaders.length
  const i = leaders.indexOf(self)
  const w = leaders.indexOf(failed)
  if (i < 0) return 0
  return w < 0 ? i : (i - w - 1 + n) % n
}

/** The leader a resigning `leader` hands over to: the next one in the configured order, cyclically. */
export const successorOf = (leaders: ReadonlyArray<string>, leader: string): string | undefined => {
  const i = leaders.indexOf(leader)
  if (i < 0 || leaders.length < 2) return undefined
  return leaders[(i + 1) % leaders.length]
}

/**
 * Whom `synod leader transfer [TO]` hands `self`'s leadership to: `to`, which must be
 * another configured leader, or by default the next leader in the configured order (the
 * core prefers the most caught-up one, `successor`, when none is named). A
 * `Left` says why not, naming what is wrong.
 */
export const transferTarget = (
  leaders: ReadonlyArray<string>,
  self: string,
  to?: string
): { readonly _tag: "Right"; readonly to: string } | { readonly _tag: "Left"; readonly message: string } => {
  if (to === undefined) {
    const next = successorOf(leaders, self)
    return next === undefined
      ? { _tag: "Left", message: `leader ${self} has no other leader to hand over to (leaders: ${leaders.join(", ")})` }
      : { _tag: "Right", to: next }
  }
  if (to === self) return { _tag: "Left", message: `${to} is the leader handing over: name another leader` }
  if (!leaders.includes(to)) {
    return { _tag: "Left", message: `${to} is not a configured leader (leaders: ${leaders.join(", ")})` }
  }
  return { _tag: "Right", to }
}

/** `synod leader transfer TO` named no other configured leader; `message` says what is wrong. */
export class TransferRefused extends Schema.TaggedError<TransferRefused>()("TransferRefused", {
  message: Schema.String
}) {}
/** A replica's read-index question, answered when a confirmation round completes. */
interface ReadWaiter {
  readonly from: Address.Address
  readonly id: number
}

/**
 * One read-index confirmation round: started at `ballot` when the read index was
 * `index`, answering `waiters` once a majority of acceptors (`confirmed`) said their
 * promise is not above `ballot`.
 */
interface ConfirmRound {
  readonly round: number
  readonly ballot: Ballot.Ballot
  readonly index: number
  readonly waiters: ReadonlyArray<ReadWaiter>
  readonly confirmed: Set<string>
  /**
   * The acceptors whose promise was this very ballot as they answered: each of them
   * holds every other leader off for a lease from then on (docs/protocol.md#read-leases).
   */
  readonly granted: Set<string>
  /** When the round's first Confirm left: before any answer, so the lease is counted from it. */
  readonly startedAt: number
  /** When its Confirm was last sent (the resend timer). */
  sentAt: number
}

/**
 * A confirmation round for decisions learnt from phase 1 (`Core.learnChosen`): each of its
 * `slots` is released once a majority of that slot's configuration (`confirmed`; asked:
 * every acceptor of `configs`) said their promise is not above `ballot`.
 */
interface LearnRound {
  readonly round: number
  readonly ballot: Ballot.Ballot
  /** The slots learnt when it began: the ones it may release (an answer to an earlier Confirm vouches for nothing decided after it). */
  readonly slots: ReadonlySet<number>
  readonly configs: ReadonlyArray<ReadonlyArray<string>>
  readonly confirmed: Set<string>
  /** When its Confirm was last sent (the resend timer). */
  sentAt: number
}

/**
 * A read lease (docs/protocol.md#read-leases): at `ballot`, until `until` on this leader's
 * clock, no other leader can be adopted by the configurations `configs` (by `configKey`),
 * a majority of each of which granted it.
 */
interface ReadLease {
  readonly ballot: Ballot.Ballot
  readonly until: number
  readonly configs: ReadonlySet<string>
}

export const scoutKey = (ballot: Ballot.Ballot, n = 0) => (n === 0 ? `scout ${ballot}` : `scout ${ballot} #${n}`)
/** A configuration's identity among the ones a ballot was adopted by: its acceptors. */
const configKey = (acceptors: ReadonlyArray<string>): string => acceptors.join(",")
/**
 * The slot from which the configuration with acceptor set `key` governs nothing: the
 * `from` of the entry after its last one (`Number.MAX_SAFE_INTEGER` when it is the latest).
 */
const governsBelow = (history: Configuration.History, key: string): number => {
  for (let i = history.length - 1; i >= 0; i--) {
    if (configKey(history[i]!.members.acceptors) !== key) continue
    return i === history.length - 1 ? Number.MAX_SAFE_INTEGER : history[i + 1]!.from
  }
  return Number.MAX_SAFE_INTEGER
}
export const commanderKey = (ballot: Ballot.Ballot, slot: number) => `${ballot}|${slot}`

export interface Options {
  /** The round stored by the last run (0 at first). */
  readonly round: number
  /** A monotonic clock in ms, and a source of draws in [0, 1) for the failure detector's jitter. */
  readonly now: () => number
  readonly random: () => number
  readonly bugs?: Partial<PlantedBugs>
  /** Report `Orphans` on every tick (for the simulator's checker; it costs a pass over the proposals). */
  readonly observeOrphans?: boolean
}

/** The leader's decisions, without I/O. */
export class LeaderCore {
  readonly out = new Host.Outbox<Record, Child, Event>()
  state: State = passive
  /** The highest ballot this leader has used (or would have used: its stored round). */
  ballot: Ballot.Ballot
  /** The highest ballot heard of, from any leader. */
  highestSeen = Ballot.bottom
  readonly proposals = new Map<number, Command.SlotValue>()
  readonly decided = new Map<number, Message.Decision>()
  /**
   * `Chosen` its commanders left to it (`Commander.Options.deferChosen`): sent with the
   * next commander's P2a, before a read index, or on the next tick, whichever is first.
   * At most the replicas times the slots decided in a heartbeat period.
   */
  readonly owed: Array<Commander.Owed> = []
  /** The replicas that proposed each slot not yet decided here: they hear of its decision at once. */
  private readonly proposedBy = new Map<number, Set<string>>()
  /**
   * Slots decided before the acceptors of some replicas' servers voted (`Decided.awaiting`):
   * such a replica gets a `Chosen` (owed) when its acceptor's vote comes, or the `Decision`
   * when the vote is refused, when the replica asks for a read index, or on the second tick
   * after (its acceptor is down or far behind). At most the slots decided in two heartbeat
   * periods.
   */
  private readonly awaitingVote = new Map<
    number,
    { readonly ballot: Ballot.Ballot; readonly replicas: Set<string>; readonly tick: number }
  >()
  /** Ticks so far: `awaitingVote` entries wait at least one whole period. */
  private ticks = 0
  /**
   * The acceptors whose acceptance it routed to each running commander (by key): a vote
   * may reach the commander after it decided, before its leader hears that it did, and
   * would be lost to `awaitingVote`. At most the acceptors times the window.
   */
  private readonly routedVotes = new Map<string, Set<string>>()
  decidedCount = 0
  maxDecided = 0
  /**
   * The GC watermark, as the acceptors report it (in P1b and P2b, or through the active
   * leader's heartbeats): acceptors forgot every slot below it, and enough replicas hold
   * those slots durably that none will need their decisions again. Skipping slots is
   * always safe.
   */
  watermark = 1
  readonly liveness: Liveness
  /** Running commanders: key → slot. */
  readonly commanders = new Map<string, number>()
  /**
   * Slots to command, in slot order, started a window at a time: what an adoption found
   * to re-propose, and proposals whose configuration it does not know yet (rule 2).
   */
  backlog: Array<number> = []
  /** It resigned: its process is stopping, so it leads no more and never competes. */
  resigned = false
  /**
   * The highest slot it has had a proposal or a decision for (never lowered: a read index
   * above what is needed only makes a read wait a little longer).
   */
  topSlot = 0
  /**
   * Read-index questions waiting for the next confirmation round, the latest per replica:
   * a replica has one question in flight at a time, so this holds one per replica at most.
   */
  private readsWaiting = new Map<Address.Address, number>()
  /** The confirmation round in flight, if any (docs/protocol.md#reads). */
  private confirming: ConfirmRound | undefined
  /** The read lease from the last round a majority granted (docs/protocol.md#read-leases). */
  private lease: ReadLease | undefined
  /**
   * How long a lease lasts on this leader's clock: the acceptors hold other leaders off
   * for `leaderTimeoutMs` on theirs, which is at least `leaderTimeoutMs / (1 + ρ)` of true
   * time; this leader's `D` is at most `D / (1 − ρ)` of it, so `D = L (1 − ρ) / (1 + ρ)`
   * ends first. 0: leases are off.
   */
  private readonly leaseMs: number
  /** Numbers its confirmation rounds; with the ballot, names one. */
  private confirmRounds = 0
  /**
   * Decisions learnt from phase 1 (`learnChosen`) that no confirmation has vouched for
   * yet, with the acceptors of each slot's configuration: in `decided`, so nothing
   * commands those slots, but sent to no replica until a majority of those acceptors said
   * their promise is not above this leader's ballot (`learning`).
   */
  private readonly unconfirmed = new Map<number, ReadonlyArray<string>>()
  /** The confirmation round in flight for the `unconfirmed` decisions it began with. */
  private learning: LearnRound | undefined
  /** The ballot it last stepped down from: its children's later reports of the same preemption change nothing. */
  private steppedDownFrom: Ballot.Ballot | undefined
  /** When the last tick came: ticks come every heartbeat period, unless this process stalls. */
  private lastTick: number | undefined
  /** When the last `busyLateTicks` ticks that came late (`lateTick`) came, oldest first. */
  private readonly lateTicks: Array<number> = []
  /** The tick before judged nothing (a stall, or a late tick): this one judges, whatever its gap. */
  private rearmed = false
  /** The period of its ticks. */
  private readonly heartbeatMs: number
  /** When this core was made: until its first tick, how long its process was busy starting. */
  private readonly bornAt: number
  /** How long it listens at start before competing (as the preferred leader) or judging (`Liveness`). */
  private readonly listenMs: number
  /** When each acceptor last answered (any P1b or P2b). */
  private readonly heardAt = new Map<string, number>()
  /** Since when commanders have been running without a break. */
  private busySince = 0
  private readonly id: string
  private readonly self: Address.Address
  private readonly config: ClusterConfig.ClusterConfig
  private readonly now: () => number
  private readonly bugs: Partial<PlantedBugs>
  private readonly observeOrphans: boolean
  /**
   * The configuration history as far as this leader knows it (docs/reconfiguration.md,
   * rule 5): every slot below `known` is decided and its change, if any, applied here, so
   * the configuration of every slot below `known + window` is fixed.
   */
  history: Configuration.History
  known = 1
  /** The window a change takes effect after: the config's, or 1 under the planted `immediateReconfig`. */
  private readonly effectAfter: number
  /**
   * At the current ballot: the configurations a majority of whose acceptors promised (by
   * `configKey`), each with the lowest slot phase 1 covered for it. It commands no slot
   * below that slot (rule 4): the acceptors told it nothing about those.
   */
  private readonly adoptedConfigs = new Map<string, number>()
  /** At the current ballot: running scouts, by key, with the configurations each covers and the slot it asked from. */
  private readonly scouts = new Map<
    string,
    {
      readonly configs: ReadonlyArray<string>
      readonly from: number
      /** It reads only slots below this one (`rescout`). */
      readonly before: number
      readonly startedAt: number
    }
  >()
  private scoutCount = 0
  /**
   * At the current ballot: the slot below which every slot was decided and performed by
   * every replica when it began (docs/protocol.md#scout): phase 1 starts there, so a new
   * leader reads the acceptors' short tail, not every slot since the GC watermark.
   */
  private settled = 1
  /** Where the next scout at this ballot starts: `settled`, or the watermark once a slot below `settled` was needed. */
  private scoutFrom = 1
  /** Per replica, the slotOut of its latest report: it performed every slot below. */
  private readonly performed = new Map<string, number>()
  /**
   * Pvalues the acceptors reported at the current ballot, per slot and acceptor, not yet
   * merged: a slot's are merged over its configuration's acceptors only (rule 4), when it
   * is commanded, since its configuration may not be known at adoption.
   */
  private readonly unresolved = new Map<number, Array<readonly [string, Command.PValue]>>()
  /**
   * Per slot, the ballot of the pvalue phase 1 at the current ballot chose for it (its
   * value is then the slot's proposal). A later scout at the same ballot (for a new
   * configuration, or phase 1 again from lower down) may report the slot again from other
   * acceptors, fewer of its configuration's: its reports add to those merged before and
   * never replace a higher pvalue with a lower one. Replacing them was a C2 violation the
   * simulator found (seed 58 with staggered digests): a noop chosen at 2.s2, reported by
   * one acceptor to the first scout of 3.s4, was replaced by a batch accepted at 1.s1 that
   * the second scout, for the configuration decided next, heard from another acceptor only.
   */
  private readonly reported = new Map<number, Ballot.Ballot>()

  constructor(id: string, config: ClusterConfig.ClusterConfig, options: Options) {
    this.id = id
    this.self = Address.leader(id)
    this.config = config
    this.history = Configuration.initial({
      acceptors: config.acceptors,
      leaders: config.leaders,
      replicas: config.replicas
    })
    this.effectAfter = options.bugs?.immediateReconfig ? 1 : config.window
    this.now = options.now
    this.bornAt = options.now()
    this.heartbeatMs = config.timeouts.heartbeatMs
    this.listenMs = Math.max(2 * config.timeouts.heartbeatMs, config.timeouts.leaderTimeoutMs)
    this.bugs = options.bugs ?? {}
    this.observeOrphans = options.observeOrphans === true
    const drift = config.reads.clockDrift
    this.leaseMs = config.reads.lease ? (config.timeouts.leaderTimeoutMs * (1 - drift)) / (1 + drift) : 0
    this.ballot = Ballot.make(this.bugs.ballotReuse ? 0 : options.round, id)
    this.liveness = new Liveness(
      {
        initialMs: config.timeouts.leaderTimeoutMs,
        maxMs: config.timeouts.maxLeaderTimeoutMs,
        // long enough to hear a working leader's heartbeats before competing with it, also
        // for a process that is still warming up
        listenMs: this.listenMs,
        // a server whose replica lags (restarted from an older snapshot, or still copying a
        // peer's) waits until every caught-up leader had its turn: busy catching up, it took
        // a working leader for silent, and leading, it would make every write wait for it
        turn: (watched) =>
          turnAfter(this.leaderIds, watched.leader, id) +
          (this.ownReplicaLags(watched.leader) || this.busy() ? this.leaderIds.length : 0)
      },
      options.now(),
      options.random,
      config.leaders[0] === id
    )
  }

  get active(): boolean {
    return this.state._tag === "Active"
  }

  /**
   * Does the replica of this leader's server (the one with its id) lag, by its latest
   * report, more than `laggingWindows` windows behind the replica of another leader that
   * may take over from `failed`, furthest ahead? The failed leader's own replica does not
   * count: it was the most caught up, and measured against it, every candidate lagged and
   * waited extra turns (a kill with 3 servers, one of them restarted, took 2.6 s). A
   * replica of its id in the latest configuration that has not reported yet counts as at
   * slot 0: a server just restarted, or installing a peer's snapshot, took a working
   * leader for silent before its replica's first report came, competed at its own turn
   * and, held off by the acceptors' lease, delayed the next fail-over until the lease
   * ended. False for a leader with no replica of its id (apart from replicas).
   */
  private ownReplicaLags(failed: string): boolean {
    const own =
      this.performed.get(this.id) ?? (Configuration.latest(this.history).replicas.includes(this.id) ? 0 : undefined)
    if (own === undefined) return false
    let best = 0
    for (const l of this.leaderIds) {
      if (l === failed) continue
      const out = this.performed.get(l)
      if (out !== undefined && out > best) best = out
    }
    return this.lagsBehind(own, best)
  }

  /**
   * Did `busyLateTicks` ticks of this leader come late (`lateTick`) within the last
   * `busyMs`? Its process is busy (a restarted server decoding megabytes of catch-up, or
   * installing a copied state),
   * so it reads the watched leader's heartbeats late and would lead slowly: it takes its
   * turn after every other leader, as a lagging one does. (With 64 KiB values a server
   * installing a copy took the leader that had just taken over for silent 1.8 s after its
   * adoption, and deposed it.)
   */
  private busy(): boolean {
    const oldest = this.lateTicks.length < busyLateTicks ? undefined : this.lateTicks[0]!
    return oldest !== undefined && this.now() - oldest < busyMs
  }

  /** A replica that reported `out` lags the one furthest ahead, at `best`: more than `laggingWindows` windows behind it. */
  private lagsBehind(out: number, best: number): boolean {
    return out < best - laggingWindows * this.config.window
  }

  /** The leaders of the latest configuration it knows: the order hand-overs and elections follow. */
  get leaderIds(): ReadonlyArray<string> {
    return Configuration.latest(this.history).leaders
  }

  /** Does it know slot `slot`'s configuration (rule 2)? */
  knows(slot: number): boolean {
    return Configuration.covers(this.history, slot) && Configuration.isKnown(slot, this.known, this.config.window)
  }

  /** May it start a commander for `slot` now: active, configuration known, and adopted by it at this ballot from `slot` or below (rule 4)? */
  commandable(slot: number): boolean {
    return this.state._tag === "Active" && this.knows(slot) && this.covered(slot)
  }

  /** The lowest slot phase 1 at this ballot covered for `slot`'s configuration (undefined: not adopted). */
  private adoptedFrom(slot: number): number | undefined {
    return this.adoptedConfigs.get(configKey(Configuration.at(this.history, slot).acceptors))
  }

  /** Did phase 1 at this ballot cover `slot`: its configuration adopted it, from `slot` or below? */
  private covered(slot: number): boolean {
    const from = this.adoptedFrom(slot)
    return from !== undefined && (from <= slot || this.bugs.commandBelowFloor === true)
  }

  /**
   * Is `slot`'s configuration known and adopted at this ballot, but from a higher slot (so
   * phase 1 must run again before it is commanded)?
   */
  private belowFloor(slot: number): boolean {
    if (!this.knows(slot) || this.bugs.commandBelowFloor === true) return false
    const from = this.adoptedFrom(slot)
    return from !== undefined && slot < from
  }

  /**
   * Learns a replica's history (rule 5): it performed every slot below `slotOut`, so its
   * history is the truth for them and fixes every configuration below `slotOut + window`.
   */
  learn(history: Configuration.History, slotOut: number) {
    if (slotOut <= this.known) return
    this.history = history
    this.known = slotOut
    this.historyChanged()
  }

  /** Applies its own commanders' decisions from `known` on, in slot order (rule 5). */
  private advanceKnown() {
    let changed = false
    for (let d = this.decided.get(this.known); d !== undefined; d = this.decided.get(this.known)) {
      if (d.value._tag === "Reconfigure") {
        const next = Configuration.apply(this.history, this.known, d.value.members, this.effectAfter)
        if (next !== undefined) {
          this.history = next
          changed = true
        }
      }
      this.known++
    }
    if (changed) this.historyChanged()
    else if (this.active) this.drainBacklog()
  }

  /** New configurations may govern slots it could command: scout them at its ballot first (rule 4). */
  private historyChanged() {
    if (!this.active) return
    this.scoutMissing()
    this.drainBacklog()
  }

  /** The configurations that may govern a slot from its watermark on, by acceptor set. */
  private governing(): Array<ReadonlyArray<string>> {
    const out = new Map<string, ReadonlyArray<string>>()
    for (const m of Configuration.governing(this.history, this.watermark)) out.set(configKey(m.acceptors), m.acceptors)
    return [...out.values()]
  }

  /** Starts one scout at its ballot for the governing configurations neither adopted nor being scouted. */
  private scoutMissing() {
    const scouting = new Set([...this.scouts.values()].flatMap((s) => s.configs))
    const missing = this.governing().filter(
      (a) => !this.adoptedConfigs.has(configKey(a)) && !scouting.has(configKey(a))
    )
    if (missing.length === 0) return
    this.startScout(this.ballot, missing, ++this.scoutCount, this.scoutFrom)
  }

  /**
   * Slot `slot`, below where phase 1 began, is needed (a replica lost decisions there: it
   * restarted from an older snapshot, or it lagged and `settled` left it out): phase 1
   * again at this ballot, from `slot` (never below the watermark), for the configurations
   * adopted only from higher up, and only below the slot they were adopted from: the slots
   * above were read at this ballot already, and what was adopted from `before` and is now
   * adopted from `from` leaves no slot out. From the watermark it would read every pvalue
   * since the last GC, up to `snapshotEvery` slots.
   *
   * One at a time per configuration: a slot asked for lower while one runs is read once
   * that one ended (the replica asks again on its tick), from there up to where that one
   * began. Run side by side, each read everything above its own `from` again: a replica
   * restarted under load with 64 KiB values asked for four slots below `settled` in turn,
   * and the leader read the same 160 MB four times over from each of two acceptors.
   */
  private rescout(slot: number) {
    const from = Math.max(this.watermark, slot)
    this.scoutFrom = Math.min(this.scoutFrom, from)
    const scouting = new Set<string>()
    for (const s of this.scouts.values()) for (const k of s.configs) scouting.add(k)
    let before = 0
    const again = this.governing().filter((a) => {
      const at = this.adoptedConfigs.get(configKey(a))
      if (at === undefined || at <= from || scouting.has(configKey(a))) return false
      if (at > before) before = at
      return true
    })
    if (again.length === 0) return
    this.out.event({ _tag: "Rescouting", ballot: this.ballot, from })
    // a majority of each configuration first: the tail it reads may be thousands of slots,
    // paged by every acceptor asked and decoded here while writes go on
    this.startScout(this.ballot, again, ++this.scoutCount, from, this.firstOf(again), before)
  }

  /**
   * The slot below which every replica that may need a slot from the watermark on
   * reported all slots performed (so decided), but for those not heard from, behind the
   * watermark, or lagging more than `laggingWindows` windows behind the replica furthest
   * ahead: those ask
   * below it later, and `rescout` reads from there then, in the background. The
   * watermark until a majority of the latest configuration's replicas reported.
   */
  private settledSlot(): number {
    // too few reports to judge (a leader that just started): from the watermark, as always
    const latest = Configuration.latest(this.history).replicas
    if (!Quorum.isMajority(latest.filter((r) => this.performed.has(r)).length, latest.length)) return this.watermark
    const governing = Configuration.governing(this.history, this.watermark)
    // lagging: behind the replica furthest ahead (not `known`, which its own decisions
    // may have raised above every report), so the one furthest ahead always counts
    let best = 0
    for (const m of governing) for (const r of m.replicas) best = Math.max(best, this.performed.get(r) ?? 0)
    let min = this.known
    for (const m of governing) {
      for (const r of m.replicas) {
        const out = this.performed.get(r)
        // not heard from (a server that just joined reports to the leaders it knows of,
        // maybe not this one), behind the watermark (it copies a peer's state first), or
        // lagging (restarted from a snapshot thousands of slots old, it catches up a
        // window per round trip): each asks below later, and phase 1 runs again then,
        // from where it asks, while writes go on. Counted, a lagging replica made every
        // new write wait while phase 1 read its whole tail: up to 1.5 s with 5 servers
        if (out === undefined || out < this.watermark || this.lagsBehind(out, best)) continue
        if (out < min) min = out
      }
    }
    return Math.max(this.watermark, min)
  }

  private startScout(
    ballot: Ballot.Ballot,
    configs: ReadonlyArray<ReadonlyArray<string>>,
    n: number,
    from: number,
    first?: ReadonlyArray<string>,
    before?: number
  ) {
    const key = scoutKey(ballot, n)
    this.scouts.set(key, {
      configs: configs.map(configKey),
      from,
      before: before ?? Number.MAX_SAFE_INTEGER,
      startedAt: this.now()
    })
    this.out.start(key, {
      _tag: "Scout",
      ballot,
      from,
      ...(before === undefined ? {} : { before }),
      acceptors: [...new Set(configs.flat())],
      configs,
      until: configs.map((a) => governsBelow(this.history, configKey(a))),
      ...(first === undefined ? {} : { first })
    })
  }

  /** Every leader, replica or acceptor the history names: who hears heartbeats and hand-overs. */
  private everyone(kind: keyof Configuration.Members): Array<string> {
    return Configuration.everyone(this.history, kind)
  }

  step(input: Input) {
    switch (input._tag) {
      case "Message":
        return this.message(input.from, input.message)
      case "Tick":
        return this.tick()
      case "ScoutEnded":
        if (input.outcome._tag === "Adopted") return this.adopted(input.outcome)
        return this.preempted(input.outcome.by)
      case "CommanderEnded": {
        const { outcome } = input
        const key = commanderKey(outcome.ballot, input.slot)
        this.commanders.delete(key)
        const votes = this.routedVotes.get(key)
        this.routedVotes.delete(key)
        if (outcome._tag === "Decided") return this.decidedSlot(outcome, votes)
        return this.preempted(outcome.by)
      }
      case "Resign":
        return this.resign()
      case "Transfer":
        return this.transfer(input.to)
    }
  }

  /**
   * Hands the leadership over without stopping: as a resignation (the target competes at
   * once, acceptors end its lease), but it stays a leader, passive, and judges the new
   * leader like any leader it watches, once the longest timeout has passed
   * (`Liveness.handedOver`: the new leader's phase 1 sends no heartbeat).
   */
  private transfer(requested: string | undefined) {
    if (!this.active) return
    const target = transferTarget(this.leaderIds, this.id, requested)
    if (target._tag === "Left") return
    const to = requested ?? this.successor() ?? target.to
    this.steppedDownFrom = this.ballot
    this.handOver(to)
    this.liveness.handedOver(this.now())
    this.out.event({ _tag: "Transferred", ballot: this.ballot, to })
  }

  /**
   * Whom to hand over to when no one is named: of the latest configuration's other
   * leaders, the one whose replica (of the same id: a server's own) reported the most
   * slots performed, since a server that just joined and still copies state would keep
   * every write waiting; among those within a few windows of the most (reports are a tick
   * old), or with no reports (leaders apart from replicas), the first in the configured
   * order after this one.
   */
  private successor(): string | undefined {
    const leaders = this.leaderIds
    const n = leaders.length
    const i = leaders.indexOf(this.id)
    const order: Array<string> = []
    for (let k = 1; k <= n; k++) {
      const l = leaders[(i + k) % n]!
      if (l !== this.id) order.push(l)
    }
    let best = 0
    for (const l of order) best = Math.max(best, this.performed.get(l) ?? 0)
    // reports are a tick old: within a few windows of the best counts as caught up
    return order.find((l) => !this.lagsBehind(this.performed.get(l) ?? 0, best))
  }

  /**
   * Stops leading and tells the others with an inactive heartbeat at its ballot naming
   * `to`, who competes at once (none: a lone leader resigns).
   */
  private handOver(to: string | undefined) {
    this.stopChildren()
    this.state = passive
    const hb = Trusted.heartbeat({
      ballot: this.ballot,
      active: false,
      decided: this.decidedCount,
      slot: this.highestDecided(),
      watermark: this.watermark,
      ...(to === undefined ? {} : { to })
    })
    // acceptors first: they end its lease, or they would hold the successor off for one;
    // sent before the successor hears, they hear before its P1a over one FIFO link
    for (const a of this.everyone("acceptors")) this.out.send(Address.acceptor(a), hb)
    for (const l of this.everyone("leaders")) if (l !== this.id) this.out.send(Address.leader(l), hb)
    for (const r of this.everyone("replicas")) this.out.send(Address.replica(r), hb)
  }

  /**
   * Stops leading for good (its process is stopping): every child stops, and an inactive
   * heartbeat at its ballot tells the other leaders and the replicas, so the successor
   * competes at once and replicas stop sending here. Only an active leader names a
   * successor: a passive one's leaving changes nothing for the others.
   */
  private resign() {
    if (this.resigned) return
    const wasActive = this.active
    this.resigned = true
    const successor = wasActive ? this.successor() : undefined
    if (wasActive) this.handOver(successor)
    else this.stopChildren()
    this.state = passive
    this.out.event({ _tag: "Resigned", ballot: this.ballot, successor })
  }

  /** A child met a higher ballot (reports of older ballots are ignored, B4). */
  preempted(by: Ballot.Ballot) {
    if (Ballot.greaterThan(by, this.ballot)) this.stepDown(by)
  }

  private message(from: Address.Address, msg: Message.LeaderInbound) {
    switch (msg._tag) {
      case "Propose":
        return this.propose(from, msg)
      case "P1b": {
        this.heardAt.set(Address.id(from), this.now())
        if (this.state._tag !== "Passive" && Ballot.equals(msg.request, this.ballot)) {
          const envelope = Trusted.envelope(from, this.self, msg)
          for (const key of this.scouts.keys()) this.out.route(key, envelope)
        }
        return
      }
      case "History":
        if (Address.role(from) === "replica") this.performed.set(Address.id(from), msg.slotOut)
        // a replica behind what this leader knows, once the configuration changed: tell it
        // the history, so that it finds the replicas it may copy the state from
        if (msg.slotOut < this.known && this.history.length > 1 && Address.role(from) === "replica") {
          this.out.send(from, Trusted.history(this.history, this.known))
        }
        return this.learn(msg.history, msg.slotOut)
      case "P2b":
        return this.p2b(from, msg)
      case "Heartbeat":
        return this.heartbeat(from, msg)
      case "ReadIndex":
        return this.readIndex(from, msg.id)
      case "Confirmed":
        return this.confirmed(from, msg)
    }
  }

  /**
   * The slot a read must wait for (docs/protocol.md#reads): every slot decided so far at
   * a ballot not above this leader's is below it — a decision at an older ballot was
   * reported at adoption (pmax) and is a proposal here, one at its own ballot was its
   * proposal — or below the GC watermark, or below `settled` (every replica had performed
   * those slots when this ballot began).
   */
  readIndexNow(): number {
    return Math.max(this.watermark, this.settled, this.topSlot + 1)
  }

  /**
   * A replica asks for a read index. Only an active leader answers, and only after a
   * confirmation round that started after the question arrived: questions that arrive
   * during a round wait for the next one, and many share one.
   */
  private readIndex(from: Address.Address, id: number) {
    if (this.state._tag !== "Active") return // the replica asks again, maybe elsewhere
    if (this.bugs.staleRead) {
      // planted: answered from this leader's belief that it leads, unconfirmed
      this.replyIndex(from, id, this.readIndexNow(), this.state.ballot)
      return
    }
    const now = this.now()
    if (this.leaseHolds(now)) {
      this.replyIndex(from, id, this.readIndexNow(), this.state.ballot)
      // renew while reads keep coming, half a lease ahead, so that they never wait for a round
      if (this.confirming === undefined && this.lease!.until - now < this.leaseMs / 2) this.startConfirm(true)
      return
    }
    this.readsWaiting.set(from, id)
    if (this.confirming === undefined) this.startConfirm()
  }

  /**
   * May it answer a read-index question at once (docs/protocol.md#read-leases)? Active at
   * the lease's ballot, before its end on this leader's clock, for an index it may
   * command, with no configuration governing that did not grant it: a leader that would
   * depose this one needs the promise of a majority of one of them, and each such
   * majority holds an acceptor that refuses every other leader until the lease is over.
   */
  private leaseHolds(now: number): boolean {
    const lease = this.lease
    if (lease === undefined || this.state._tag !== "Active" || !Ballot.equals(lease.ballot, this.state.ballot)) {
      return false
    }
    if (!this.bugs.readLeaseForever && now >= lease.until) return false
    if (!this.commandable(this.readIndexNow())) return false
    for (const members of this.governing()) if (!lease.configs.has(configKey(members))) return false
    return true
  }

  /**
   * Asks a majority of acceptors whether their promise is still not above this leader's
   * ballot: for the questions waiting, or (`renew`) only to extend the lease.
   */
  private startConfirm(renew = false) {
    if (this.state._tag !== "Active" || (this.readsWaiting.size === 0 && !renew)) return
    // Only for an index it may command (`commandable`): its configuration known for
    // certain (every slot up to `index − window` decided and applied here, rule 2) and
    // adopted at this ballot, so a majority of config(index) holds a promise at least this
    // ballot's, or above it if another leader decided a slot from the index on. A leader
    // that missed a change (its replica wiped, itself removed) would otherwise confirm
    // with the acceptors of a configuration that governs nothing any more, none of which
    // heard the new leader, and serve a stale read (seed 1010826 with --reconfigure on).
    // The reads wait; the tick asks again as `known` moves.
    if (!this.commandable(this.readIndexNow())) return
    const ballot = this.state.ballot
    this.confirming = {
      round: ++this.confirmRounds,
      ballot,
      index: this.readIndexNow(),
      waiters: [...this.readsWaiting].map(([from, id]) => ({ from, id })),
      confirmed: new Set(),
      granted: new Set(),
      startedAt: this.now(),
      sentAt: this.now()
    }
    this.readsWaiting = new Map()
    const confirm = Trusted.confirm(ballot, this.confirming.round)
    for (const a of this.firstConfirmers()) this.out.send(Address.acceptor(a), confirm)
  }

  /**
   * An acceptor's answer to a confirmation. A promise above the round's ballot deposes
   * this leader; one not above it counts; with a majority, every question of the round
   * gets the index taken when the round started.
   */
  private confirmed(from: Address.Address, msg: Message.Confirmed) {
    const acceptor = Address.id(from)
    this.heardAt.set(acceptor, this.now())
    if (Ballot.greaterThan(msg.ballot, this.ballot)) return this.preempted(msg.ballot)
    const learning = this.learning
    if (learning !== undefined && msg.round === learning.round && Ballot.equals(msg.request, learning.ballot)) {
      if (!Ballot.greaterThan(msg.ballot, learning.ballot)) {
        learning.confirmed.add(acceptor)
        this.completeLearning(learning)
      }
      return
    }
    const round = this.confirming
    if (round === undefined || msg.round !== round.round || !Ballot.equals(msg.request, round.ballot)) return
    if (Ballot.greaterThan(msg.ballot, round.ballot) || !this.confirmers().includes(acceptor)) return
    round.confirmed.add(acceptor)
    if (Ballot.equals(msg.ballot, round.ballot)) round.granted.add(acceptor)
    this.completeConfirm(round)
  }

  /**
   * Ends `round` once its answers are a majority of every configuration that governs now:
   * answers the questions it carried, takes the lease it earned, starts the next round.
   * Checked at each answer, and on each tick (`resendConfirm`): the configurations that
   * govern change as `known` moves on, and one retired may leave the answers already in a
   * majority of every one left, with no acceptor left to ask (as a duplicate answer
   * arriving then would find).
   */
  private completeConfirm(round: ConfirmRound): void {
    // a majority of every configuration it could command in: any leader that deposed it
    // had the promise of a majority of one of them
    const governing = this.governing()
    const majorityOf = (answered: Set<string>) =>
      governing.every((members) => Quorum.isMajority(members.filter((a) => answered.has(a)).length, members.length))
    if (!majorityOf(round.confirmed)) return
    this.confirming = undefined
    if (this.leaseMs > 0 && majorityOf(round.granted)) {
      // an acceptor that promised a lower ballot (it missed the P1a: B5) confirms, but
      // holds off only the other leaders of its promise, so it grants nothing
      this.lease = {
        ballot: round.ballot,
        until: round.startedAt + this.leaseMs,
        configs: new Set(governing.map(configKey))
      }
    }
    for (const w of round.waiters) {
      this.replyIndex(w.from, w.id, round.index, round.ballot)
    }
    if (this.leaseHolds(this.now())) {
      // the questions that came during the round need no round of their own: the lease
      // that just began holds now
      for (const [from, id] of this.readsWaiting) {
        this.replyIndex(from, id, this.readIndexNow(), round.ballot)
      }
      this.readsWaiting = new Map()
    }
    this.startConfirm()
  }

  /**
   * Ends the round in flight if the answers in are enough now (`completeConfirm`), else
   * resends its Confirm to the acceptors that have not confirmed, every `retransmitMs`.
   */
  private resendConfirm(now: number) {
    const round = this.confirming
    if (round === undefined) return
    this.completeConfirm(round)
    if (this.confirming !== round || now - round.sentAt < this.config.timeouts.retransmitMs) return
    round.sentAt = now
    const confirm = Trusted.confirm(round.ballot, round.round)
    for (const a of this.confirmers()) if (!round.confirmed.has(a)) this.out.send(Address.acceptor(a), confirm)
  }

  /**
   * The acceptors a round asks first: in each governing configuration a bare majority —
   * its own server's acceptor (no socket, no other process woken), then the acceptors
   * heard from most recently, the likeliest to answer at once. Under read load rounds
   * follow each other back to back, and asking every acceptor cost the leader a publish
   * and each extra acceptor's process a wake-up per round for an answer the majority did
   * not need. If one of them does not answer, the resend after `retransmitMs` asks every
   * acceptor that has not confirmed (`resendConfirm`); the silent one, not heard from
   * since, is then ranked last. Which acceptors are asked changes no answer: a round still
   * needs a majority of every governing configuration (`confirmed`).
   */
  private firstConfirmers(): Array<string> {
    return this.firstOf(this.governing())
  }

  /**
   * A majority of each of `configs`: its own server's acceptor first, then those heard
   * from most recently (`firstConfirmers`).
   */
  private firstOf(configs: ReadonlyArray<ReadonlyArray<string>>): Array<string> {
    const chosen = new Set<string>()
    const heard = (a: string): number => (a === this.id ? Number.POSITIVE_INFINITY : (this.heardAt.get(a) ?? -1))
    for (const members of configs) {
      // stable: ties keep the configuration's order, so a simulation replays exactly
      const ranked = [...members].sort((a, b) => heard(b) - heard(a))
      let asked = members.filter((a) => chosen.has(a)).length
      for (const a of ranked) {
        if (Quorum.isMajority(asked, members.length)) break
        if (chosen.has(a)) continue
        chosen.add(a)
        asked++
      }
    }
    return [...chosen]
  }

  /** Every acceptor of a governing configuration: those a round may count, and its resends ask. */
  private confirmers(): Array<string> {
    return [...new Set(this.governing().flat())]
  }

  /** Sends the `Chosen` owed (before a read index, and on every tick). */
  private payOwed() {
    for (const { replica, chosen } of this.owed.splice(0)) this.out.send(Address.replica(replica), chosen)
  }

  /** Sends `replica` the decision of `slot`, if still kept (below the watermark every replica has it). */
  private sendDecision(replica: string, slot: number) {
    if (this.unconfirmed.has(slot)) return
    const decision = this.decided.get(slot)
    if (decision !== undefined) this.out.send(Address.replica(replica), decision)
  }

  /**
   * Sends the decisions still awaiting a vote (`awaitingVote`): to `replica` only, or to
   * every replica for the slots that waited since tick `before` or earlier.
   */
  private payAwaiting(replica: string | undefined, before = Number.POSITIVE_INFINITY) {
    for (const [slot, awaiting] of this.awaitingVote) {
      if (replica !== undefined) {
        if (!awaiting.replicas.delete(replica)) continue
        this.sendDecision(replica, slot)
      } else if (awaiting.tick <= before) {
        for (const r of awaiting.replicas) this.sendDecision(r, slot)
        awaiting.replicas.clear()
      }
      if (awaiting.replicas.size === 0) this.awaitingVote.delete(slot)
    }
  }

  /** A vote for a slot decided before it came (`awaitingVote`): its replica gets the `Chosen` now owed, or the decision. */
  private lateVote(acceptor: string, msg: Message.P2b) {
    const awaiting = this.awaitingVote.get(msg.slot)
    if (awaiting === undefined || !Ballot.equals(msg.request, awaiting.ballot) || !awaiting.replicas.delete(acceptor)) {
      return
    }
    if (awaiting.replicas.size === 0) this.awaitingVote.delete(msg.slot)
    // it voted at the deciding ballot: its replica takes the value from it, as the others
    if (Commander.isAcceptance(msg, awaiting.ballot, msg.slot)) {
      this.owed.push({ replica: acceptor, chosen: Trusted.chosen(msg.slot, awaiting.ballot) })
    } else this.sendDecision(acceptor, msg.slot)
  }

  /**
   * Answers a read index question; the `Chosen` owed and the decisions awaiting a vote go
   * first, so that the replica can reach the index.
   */
  private replyIndex(to: Address.Address, id: number, index: number, ballot: Ballot.Ballot) {
    this.payOwed()
    if (this.awaitingVote.size > 0) this.payAwaiting(Address.id(to))
    this.out.send(to, Trusted.readIndexReply(id, index, ballot))
  }

  private propose(from: Address.Address, msg: Message.Propose) {
    if (msg.slot < this.watermark) return // every replica has it durably
    const known = this.decided.get(msg.slot)
    if (known !== undefined && !this.unconfirmed.has(msg.slot)) return this.out.send(from, known)
    if (Address.role(from) === "replica") {
      const by = this.proposedBy.get(msg.slot)
      if (by === undefined) this.proposedBy.set(msg.slot, new Set([Address.id(from)]))
      else by.add(Address.id(from))
    }
    // learnt, not vouched for yet: the replica hears it when a confirmation does (`completeLearning`)
    if (known !== undefined) return
    const value = this.proposals.get(msg.slot)
    if (value === undefined) {
      this.proposals.set(msg.slot, msg.value)
      if (msg.slot > this.topSlot) this.topSlot = msg.slot
      if (this.active) this.startCommander(msg.slot)
    } else if (this.active) {
      // a replica waits for this slot: do not keep it waiting behind the backlog (the
      // commander proposes the leader's value for the slot, never the replica's)
      this.startCommander(msg.slot)
    }
    if (!this.active) this.liveness.proposal(this.now(), msg.slot)
  }

  private p2b(from: Address.Address, msg: Message.P2b): void {
    this.heardAt.set(Address.id(from), this.now())
    if (msg.watermark !== undefined) this.raiseWatermark(msg.watermark)
    if (msg.slot < this.watermark) return
    if (this.awaitingVote.size > 0) this.lateVote(Address.id(from), msg)
    let key: string | undefined = commanderKey(msg.request, msg.slot)
    if (this.bugs.p2bBySlotOnly) {
      // B3: any commander of the slot gets it, whatever ballot it answers
      key = undefined
      for (const [k, slot] of this.commanders) if (slot === msg.slot) key = k
    }
    if (key !== undefined && this.commanders.has(key)) {
      if (Commander.isAcceptance(msg, msg.request, msg.slot)) {
        const votes = this.routedVotes.get(key)
        if (votes === undefined) this.routedVotes.set(key, new Set([Address.id(from)]))
        else votes.add(Address.id(from))
      }
      this.out.route(key, Trusted.envelope(from, this.self, msg))
    }
  }

  private heartbeat(from: Address.Address, msg: Message.Heartbeat) {
    if (from === this.self) return
    if (Ballot.greaterThan(msg.ballot, this.highestSeen)) this.highestSeen = msg.ballot
    this.raiseWatermark(msg.watermark)
    const now = this.now()
    if (
      !msg.active &&
      this.state._tag === "Passive" &&
      !this.resigned &&
      Ballot.equals(msg.ballot, this.highestSeen) &&
      (msg.to ?? successorOf(this.leaderIds, Address.id(from))) === this.id
    ) {
      // the leader of the highest ballot handed over to this leader: no timeout to wait
      this.out.event({ _tag: "HandedOver", from: Address.id(from), ballot: msg.ballot })
      return this.compete(now, "handed over")
    }
    this.liveness.heartbeat(now, msg)
    // a hand-over to another leader: its phase 1 sends no heartbeat, so give it the longest
    // timeout before judging it, as the leader that handed over does
    if (!msg.active && msg.to !== undefined && msg.to !== this.id && Ballot.equals(msg.ballot, this.highestSeen)) {
      this.liveness.handedOver(now)
    }
    if (!msg.active || !Ballot.greaterThan(msg.ballot, this.ballot)) return
    // a higher ballot leads: an active leader was deposed without hearing it yet
    if (this.state._tag === "Active") return this.stepDown(msg.ballot)
    // a scout yields only to a higher ballot whose leader is making progress (B15); the
    // failure detector decides again whether it is dead or stuck
    if (this.state._tag === "Scouting" && this.liveness.progressing(now)) {
      for (const key of this.scouts.keys()) this.out.stop(key)
      this.scouts.clear()
      this.state = passive
    }
  }

  private tick() {
    const now = this.now()
    const last = this.lastTick
    const first = last === undefined
    const gap = first ? 0 : now - last
    this.lastTick = now
    // its process was busy: see below, and `busy`
    const late = gap > lateTick * this.heartbeatMs
    if (late) {
      this.lateTicks.push(now)
      if (this.lateTicks.length > busyLateTicks) this.lateTicks.shift()
    }
    // a decision waits for the next round at most a heartbeat period
    this.payOwed()
    this.ticks++
    if (this.awaitingVote.size > 0) this.payAwaiting(undefined, this.ticks - 2)
    if (this.state._tag === "Active") {
      if (this.commanders.size > 0 && !this.hearsMajority(now)) return this.abdicate()
      // removed from the configuration: hand over to a leader of the latest one (rule 7)
      if (!this.leaderIds.includes(this.id)) {
        const to = this.successor() ?? this.leaderIds[0]!
        this.steppedDownFrom = this.ballot
        this.handOver(to)
        this.liveness.handedOver(now)
        this.out.event({ _tag: "Transferred", ballot: this.ballot, to })
        return
      }
      this.drainBacklog()
      if (this.confirming === undefined) this.startConfirm()
      this.resendConfirm(now)
      this.resendLearning(now)
      this.reportOrphans()
      this.beat()
    } else if (this.state._tag === "Passive" && !this.resigned && this.leaderIds.includes(this.id)) {
      // A gap between ticks longer than the timeout and than `stallMs`: this process
      // itself stalled (paused, or starved of CPU), and the deadline passed while it could
      // not listen; the watched leader's heartbeats may be waiting unread in its socket.
      // It watches afresh instead of deposing a leader it did not hear (a follower paused
      // for 3 s took the leadership on resuming, every time). Only once in a row: a
      // process whose every tick comes late still judges every other tick.
      if (gap > Math.max(this.liveness.timeout, stallMs) && !this.rearmed) {
        this.rearmed = true
        this.liveness.resumed(now)
        this.out.event({ _tag: "Stalled", stalledMs: Math.round(gap), watched: this.liveness.watched })
        return
      }
      // A tick a heartbeat period late or more: the process was busy (decoding megabytes of
      // catch-up, installing a copied state) and a timer runs before the sockets are read,
      // so the watched leader's latest heartbeats may be waiting unread. This tick judges
      // nothing and the next one does, after a turn of the event loop: a failure is found
      // one tick later, and only in a busy process. Once in a row, as above. (With 64 KiB
      // values a restarted server, busy catching up, took a working leader for silent and
      // deposed it; judged after a turn of the event loop before every tick, the same
      // failure went away but one client's write took 0.7 ms longer.)
      if (late && !this.rearmed) {
        this.rearmed = true
        return
      }
      this.rearmed = false
      // The first tick came only after a listening period: the process was busy starting
      // (loading its state, compiling) all through it, and a timer runs before the sockets
      // are read, so a working leader's heartbeats may be waiting unread. It judges from the
      // next tick, once they were read: a restarted server competed blind (`watched` none)
      // a third of the time under load, its first tick 350-500 ms after it was made, and
      // was preempted at once, which doubled its timeout.
      if (first && now - this.bornAt > this.listenMs) return
      const because = this.liveness.suspicion(now)
      if (because !== undefined) this.compete(now, because)
    }
  }

  /**
   * The highest slot it knows decided, for heartbeats: its own commanders' highest, or
   * `known − 1` (a replica performed it). A replica asks for the slots up to it it has not
   * learnt; a new leader whose phase 1 began at `settled` re-proposes nothing below, so
   * without the second a replica that missed a decision there would never ask for it.
   */
  private highestDecided(): number {
    return Math.max(this.maxDecided, this.known - 1)
  }

  /**
   * The highest slot up to which it holds a value for every slot from `known` on (heartbeats'
   * `held`): a replica's proposal there needs no resend, the leader has one for the slot.
   */
  private held(): number {
    let slot = Math.max(this.known, this.watermark)
    while (this.proposals.has(slot) || this.decided.has(slot)) slot++
    return slot - 1
  }

  /** Tells the other leaders, the replicas and the learners that this leader leads, and how far. */
  private beat() {
    const hb = Trusted.heartbeat({
      ballot: this.ballot,
      active: true,
      decided: this.decidedCount,
      slot: this.highestDecided(),
      watermark: this.watermark,
      held: this.held()
    })
    for (const l of this.everyone("leaders")) if (l !== this.id) this.out.send(Address.leader(l), hb)
    for (const r of this.everyone("replicas")) this.out.send(Address.replica(r), hb)
    for (const l of this.config.learners) this.out.send(Address.learner(l), hb)
  }

  /** Picks a ballot above every one seen; the round is persisted before the scout starts (B1). */
  private compete(now: number, because: "silent" | "stuck" | "handed over") {
    const next = Ballot.make(Math.max(this.ballot.round, this.highestSeen.round) + 1, this.id)
    if (!this.bugs.ballotReuse) this.out.persist({ round: next.round })
    this.ballot = next
    this.state = { _tag: "Scouting", ballot: next }
    this.out.event({ _tag: "Competing", ballot: next, watched: this.liveness.watched, because })
    this.liveness.competing(now)
    this.newBallot()
    // phase 1 with every configuration that may govern a slot it could command (rule 4),
    // from the slot every replica has performed up to
    this.startScout(next, this.governing(), 0, this.scoutFrom)
  }

  /** A new ballot: nothing adopted, scouted or reported at it yet. */
  private newBallot() {
    this.adoptedConfigs.clear()
    this.scouts.clear()
    this.unresolved.clear()
    this.reported.clear()
    this.settled = this.settledSlot()
    this.scoutFrom = this.settled
  }

  private adopted(adopted: Extract<Scout.Outcome, { _tag: "Adopted" }>) {
    if (this.state._tag === "Passive" || !Ballot.equals(adopted.ballot, this.ballot)) return // a stale scout
    // the scout that ended: the one of the ballot while scouting, else the one at this
    // ballot for exactly these configurations (a duplicate outcome finds none)
    const configs = adopted.configs?.map(configKey)
    let ended: string | undefined
    for (const [key, scout] of this.scouts) {
      const covers = scout.configs
      const same =
        (configs === undefined || (covers.length === configs.length && configs.every((k) => covers.includes(k)))) &&
        (adopted.from === undefined || adopted.from === scout.from)
      if (same && (this.state._tag === "Scouting" ? key === scoutKey(this.ballot) : true)) ended = key
    }
    if (ended === undefined) return
    // only the configurations a majority of which promised: one the scout could skip (all
    // its slots below the watermark) is scouted again should a later change bring it back
    const promised = adopted.promised?.map(configKey)
    const scout = this.scouts.get(ended)!
    /** The configurations a majority of which sent this scout every pvalue it asked for: from `scout.from` on, below `scout.before`. */
    const quorums = new Set<string>()
    for (const k of scout.configs) {
      if (promised !== undefined && !promised.includes(k)) continue
      quorums.add(k)
      const at = this.adoptedConfigs.get(k)
      if (at === undefined || scout.from < at) this.adoptedConfigs.set(k, scout.from)
    }
    this.scouts.delete(ended)
    this.raiseWatermark(adopted.watermark)
    const first = this.state._tag === "Scouting"
    this.state = { _tag: "Active", ballot: adopted.ballot }
    if (first) this.liveness.success()
    // the acceptors' pvalues, merged per slot over that slot's configuration when it is commanded
    const running = new Set(this.commanders.values())
    const report = (acceptor: string, pv: Command.PValue) => {
      if (pv.slot < this.watermark || this.decided.has(pv.slot) || running.has(pv.slot)) return
      const at = this.unresolved.get(pv.slot)
      if (at === undefined) this.unresolved.set(pv.slot, [[acceptor, pv]])
      else at.push([acceptor, pv])
    }
    if (adopted.byAcceptor === undefined) {
      for (const pv of adopted.pvalues.values()) report("*", pv)
    } else {
      for (const [acceptor, pvs] of adopted.byAcceptor) for (const pv of pvs) report(acceptor, pv)
    }
    // the slots whose configuration it knows and that adopted it take the reported values
    // now. Below `known` a replica performed them, so they are decided, and the value
    // reported with the highest ballot is the one chosen: learnt, not commanded again (a
    // replica restarted from an older snapshot held `settled` a thousand slots down, and
    // re-commanding them, a window at a time, held every new write back for a second).
    // Below `settled` (phase 1 again for a replica that lost its state) every slot is
    // decided too: one not learnt waits until a replica asks for it.
    // Only with a majority of the slot's own configuration among this scout's reporters: a
    // scout for another configuration may have heard from fewer (see `reported`).
    for (const slot of [...this.unresolved.keys()]) {
      if (!this.knows(slot) || !this.covered(slot)) continue
      if (
        (slot < this.known || this.bugs.learnUnperformed) &&
        slot >= scout.from &&
        slot < scout.before &&
        quorums.has(configKey(Configuration.at(this.history, slot).acceptors)) &&
        this.learnChosen(slot)
      ) {
        continue
      }
      if (slot >= this.settled) this.resolve(slot)
    }
    this.startLearning()
    const proposals = this.proposals
    // an acceptor of the quorum may report slots another one already forgot
    for (const slot of proposals.keys()) if (slot < this.watermark) proposals.delete(slot)
    let top = this.maxDecided
    for (const slot of proposals.keys()) if (slot > top) top = slot
    for (const slot of this.unresolved.keys()) if (slot > top) top = slot
    // holes only from `settled` on: below, every slot is decided already
    if (!this.bugs.noHoleFilling) {
      fillHoles(proposals, Math.max(this.watermark, this.settled), top, (s) => this.decided.has(s))
    }
    for (const slot of proposals.keys()) if (slot > this.topSlot) this.topSlot = slot
    for (const slot of this.unresolved.keys()) if (slot > this.topSlot) this.topSlot = slot
    const slots = new Set(proposals.keys())
    for (const slot of this.unresolved.keys()) if (slot >= this.settled) slots.add(slot)
    // a proposal below where phase 1 began is for a decided slot: it waits until a replica
    // asks for it again (and then phase 1 runs for it)
    this.backlog = [...slots]
      .filter((slot) => !this.decided.has(slot) && !running.has(slot) && !this.belowFloor(slot))
      .sort((a, b) => a - b)
    if (first) {
      this.out.event({
        _tag: "Adopted",
        ballot: adopted.ballot,
        slots: this.backlog.length,
        reported: adopted.pvalues.size,
        from: this.settled
      })
    } else {
      this.out.event({
        _tag: "Rescouted",
        ballot: adopted.ballot,
        from: scout.from,
        reported: adopted.pvalues.size,
        ms: Math.round(this.now() - scout.startedAt)
      })
    }
    // configurations learnt while scouting: scout them too
    this.scoutMissing()
    this.drainBacklog()
    // at once, not at the next tick: replicas send what waits as soon as they hear it
    if (first) this.beat()
  }

  /** The highest-ballot pvalue an acceptor of `slot`'s configuration reported for it at this ballot. */
  private highestReported(slot: number): Command.PValue | undefined {
    const reports = this.unresolved.get(slot)
    if (reports === undefined) return undefined
    const members = new Set(Configuration.at(this.history, slot).acceptors)
    let best: Command.PValue | undefined
    for (const [acceptor, pv] of reports) {
      if (acceptor !== "*" && !members.has(acceptor)) continue
      if (best === undefined || Ballot.greaterThan(pv.ballot, best.ballot)) best = pv
    }
    return best
  }

  /**
   * Learns the decision of `slot`, which a replica performed (below `known`), from phase 1:
   * a value chosen at ballot b was accepted by a majority of the slot's configuration, and
   * every proposal at a ballot above b carries it (the invariant phase 1 keeps), so the
   * pvalue with the highest ballot that a promising majority reports for the slot holds the
   * value chosen (docs/protocol.md#scout) — if the promises were not stale, which a
   * learning round confirms (`startLearning`) before the replicas that asked hear it.
   * False when none reported it: then it is commanded, or waits, as any other slot.
   */
  private learnChosen(slot: number): boolean {
    const best = this.highestReported(slot)
    if (best === undefined) return false
    this.unresolved.delete(slot)
    this.decided.set(slot, Trusted.decision(slot, best.value, best.ballot))
    if (slot > this.maxDecided) this.maxDecided = slot
    if (slot > this.topSlot) this.topSlot = slot
    // the replicas that asked hear it once a confirmation vouches for it (`startLearning`)
    this.unconfirmed.set(slot, Configuration.at(this.history, slot).acceptors)
    return true
  }

  /**
   * Asks the acceptors of the `unconfirmed` decisions' configurations whether their
   * promise is still not above this leader's ballot. Learning a decision from phase 1
   * alone is right only for a value chosen at a ballot below this leader's: the promises
   * it was adopted with may be stale, a majority having since promised a higher ballot
   * whose leader chose the slot, which the reports cannot show (seed 1841919: adopted at
   * 3.s3 with one promise given 360 ms before, it learnt the no-op a partitioned acceptor
   * held at 2.s2 for a slot decided at 3.s4 meanwhile, and a replica performed it). A
   * majority of the slot's configuration that still promises no more than this ballot,
   * after the slot was decided (it was, since a replica performed it), means no ballot
   * above this one chose it; and one below was reported (docs/protocol.md#scout).
   */
  private startLearning() {
    if (this.state._tag !== "Active" || this.learning !== undefined || this.unconfirmed.size === 0) return
    const configs = new Map<string, ReadonlyArray<string>>()
    for (const members of this.unconfirmed.values()) configs.set(configKey(members), members)
    this.learning = {
      round: ++this.confirmRounds,
      ballot: this.state.ballot,
      slots: new Set(this.unconfirmed.keys()),
      configs: [...configs.values()],
      confirmed: new Set(),
      sentAt: this.now()
    }
    this.sendLearning(this.learning)
  }

  /** Sends the round's Confirm to each acceptor of its configurations that has not answered. */
  private sendLearning(round: LearnRound) {
    round.sentAt = this.now()
    const confirm = Trusted.confirm(round.ballot, round.round)
    const asked = new Set<string>()
    for (const members of round.configs) {
      for (const a of members) {
        if (round.confirmed.has(a) || asked.has(a)) continue
        asked.add(a)
        this.out.send(Address.acceptor(a), confirm)
      }
    }
  }

  /**
   * Each of the round's decisions whose configuration a majority of confirmed goes to the
   * replicas that asked for it (one configuration whose acceptors went silent holds back
   * its own slots only); with none left, the next round starts.
   */
  private completeLearning(round: LearnRound) {
    let left = 0
    for (const slot of round.slots) {
      const members = this.unconfirmed.get(slot)
      if (members === undefined) continue
      if (!Quorum.isMajority(members.filter((a) => round.confirmed.has(a)).length, members.length)) {
        left++
        continue
      }
      this.unconfirmed.delete(slot)
      const askers = this.proposedBy.get(slot)
      if (askers === undefined) continue
      this.proposedBy.delete(slot)
      for (const replica of askers) this.sendDecision(replica, slot)
    }
    if (left > 0) return
    this.learning = undefined
    this.startLearning()
  }

  /**
   * On the tick: a round in flight for a resend period asks again those that have not
   * answered, or, when slots were learnt since it began, gives way to a round for all of
   * them; one whose slots all fell below the watermark meanwhile ends (its acceptors may
   * be a configuration gone silent, asked for nothing any more).
   */
  private resendLearning(now: number) {
    const round = this.learning
    if (round === undefined) return this.startLearning()
    if (now - round.sentAt < this.config.timeouts.retransmitMs) return
    this.completeLearning(round)
    if (this.learning !== round) return
    for (const slot of this.unconfirmed.keys()) {
      if (round.slots.has(slot)) continue
      this.learning = undefined
      return this.startLearning()
    }
    this.sendLearning(round)
  }

  /** Forgets the decisions no confirmation vouched for: the next adoption learns them again. */
  private dropUnconfirmed() {
    for (const slot of this.unconfirmed.keys()) this.decided.delete(slot)
    this.unconfirmed.clear()
    this.learning = undefined
  }

  /**
   * The value to command in `slot` (rule 4): the highest-ballot pvalue that an acceptor of
   * the slot's configuration reported at this ballot, else its own proposal (B8 planted:
   * its own proposal wins). `undefined`: nothing to propose there.
   */
  private resolve(slot: number): Command.SlotValue | undefined {
    if (this.unresolved.has(slot)) {
      const best = this.highestReported(slot)
      this.unresolved.delete(slot)
      const before = this.reported.get(slot)
      if (
        best !== undefined &&
        (before === undefined || Ballot.greaterThan(best.ballot, before)) &&
        !(this.bugs.updateReversed && this.proposals.has(slot))
      ) {
        this.proposals.set(slot, best.value)
        this.reported.set(slot, best.ballot)
      }
    }
    return this.proposals.get(slot)
  }

  /** `votes`: the acceptances routed to its commander (`routedVotes`), some perhaps after it decided. */
  private decidedSlot(event: Extract<Commander.Outcome, { _tag: "Decided" }>, votes?: ReadonlySet<string>) {
    const proposers = this.proposedBy.get(event.slot)
    this.proposedBy.delete(event.slot)
    // a vote that reached the commander after it decided makes its replica owed, as the other voters'
    const lateVoters = votes === undefined ? [] : (event.awaiting ?? []).filter((r) => votes.has(r))
    const owed = lateVoters.length === 0 ? event.owed : [...(event.owed ?? []), ...lateVoters]
    if (owed !== undefined) {
      const chosen = Trusted.chosen(event.slot, event.ballot)
      for (const replica of owed) {
        // a replica that proposed the slot has clients waiting for it: it hears now
        if (proposers?.has(replica)) this.out.send(Address.replica(replica), chosen)
        else this.owed.push({ replica, chosen })
      }
    }
    if (!this.decided.has(event.slot) && event.slot >= this.watermark) {
      this.decided.set(event.slot, Trusted.decision(event.slot, event.value, event.ballot))
      this.decidedCount++
      if (event.slot > this.maxDecided) this.maxDecided = event.slot
      if (event.slot > this.topSlot) this.topSlot = event.slot
      this.liveness.success()
    }
    if (event.awaiting !== undefined) {
      const later = new Set<string>()
      for (const replica of event.awaiting) {
        if (votes?.has(replica)) continue
        if (proposers?.has(replica)) {
          this.out.send(Address.replica(replica), Trusted.decision(event.slot, event.value, event.ballot))
        } else later.add(replica)
      }
      if (later.size > 0) this.awaitingVote.set(event.slot, { ballot: event.ballot, replicas: later, tick: this.ticks })
    }
    this.advanceKnown()
  }

  /**
   * Starts the commander of `slot` at its ballot, with the value `resolve` gives, when it
   * may (`commandable`); otherwise the slot waits in the backlog until it may.
   */
  private startCommander(slot: number) {
    const key = commanderKey(this.ballot, slot)
    if (this.commanders.has(key)) return // C1: one commander per (ballot, slot)
    // below where phase 1 began: it runs again first, and the adoption queues the slot
    if (this.active && this.belowFloor(slot)) return this.rescout(slot)
    if (!this.commandable(slot)) return this.park(slot)
    const value = this.resolve(slot)
    if (value === undefined) return
    if (this.commanders.size === 0) this.busySince = this.now()
    this.commanders.set(key, slot)
    const replicas = new Set<string>()
    for (const m of Configuration.governing(this.history, slot)) for (const r of m.replicas) replicas.add(r)
    this.out.start(key, {
      _tag: "Commander",
      ballot: this.ballot,
      slot,
      value,
      acceptors: Configuration.at(this.history, slot).acceptors,
      replicas: [...replicas],
      piggyback: this.owed.splice(0)
    })
  }

  /** Queues `slot` in the backlog, in slot order, until it may be commanded. */
  private park(slot: number) {
    if (this.backlog.includes(slot)) return
    let i = this.backlog.length
    while (i > 0 && this.backlog[i - 1]! > slot) i--
    this.backlog.splice(i, 0, slot)
  }

  /**
   * Starts commanders for the backlog, in slot order, while fewer than a window of them
   * run and the next slot may be commanded: a slot whose configuration it does not know
   * yet, or whose configuration has not adopted its ballot, waits (and the ones after it).
   */
  private drainBacklog() {
    while (this.backlog.length > 0 && this.commanders.size < this.config.window) {
      const slot = this.backlog[0]!
      // below the history's first entry (pruned: docs/reconfiguration.md) its configuration is unknown for good
      if (slot < this.watermark || this.decided.has(slot) || !Configuration.covers(this.history, slot)) {
        this.backlog.shift()
        continue
      }
      if (this.belowFloor(slot)) {
        this.backlog.shift()
        this.rescout(slot)
        continue
      }
      if (!this.commandable(slot)) return
      this.backlog.shift()
      this.startCommander(slot)
    }
  }

  /** Stops every child (the planted B3 and B4 keep old commanders running, as the paper does). */
  private stopChildren() {
    for (const key of this.scouts.keys()) this.out.stop(key)
    this.scouts.clear()
    this.backlog = []
    // reads waiting here ask again (their replicas resend, maybe to the next leader)
    this.readsWaiting = new Map()
    this.confirming = undefined
    this.lease = undefined
    this.dropUnconfirmed()
    if (this.bugs.staleChildren || this.bugs.p2bBySlotOnly) return
    for (const key of this.commanders.keys()) this.out.stop(key)
    this.commanders.clear()
    this.routedVotes.clear()
  }

  private stepDown(by: Ballot.Ballot) {
    if (Ballot.greaterThan(by, this.highestSeen)) this.highestSeen = by
    // each in-flight commander reports the same preemption: back off once per ballot
    if (this.steppedDownFrom !== undefined && Ballot.equals(this.steppedDownFrom, this.ballot)) return
    this.steppedDownFrom = this.ballot
    this.stopChildren()
    this.state = passive
    this.out.event({ _tag: "SteppedDown", ballot: this.ballot, by })
    this.liveness.preempted(this.now(), by)
  }

  /** Active, but no majority of acceptors answered for `maxLeaderTimeoutMs` while work waits: stop leading. */
  private abdicate() {
    this.steppedDownFrom = this.ballot
    this.stopChildren()
    this.state = passive
    this.out.event({ _tag: "Abdicated", ballot: this.ballot })
    this.liveness.competing(this.now())
  }

  /**
   * Has a majority of acceptors answered within the longest failure-detection timeout? A
   * leader that sends but cannot hear must stop claiming to lead, but an overloaded one
   * whose acceptors answer late must not: the bound is `maxLeaderTimeoutMs`, not the
   * initial timeout.
   */
  private hearsMajority(now: number): boolean {
    const since = now - this.config.timeouts.maxLeaderTimeoutMs
    if (this.busySince > since) return true // not busy for a whole lease period yet
    // the acceptors of the configuration of the slots it commands now
    const members = Configuration.at(this.history, Math.max(this.watermark, this.known)).acceptors
    let heard = 0
    for (const a of members) if ((this.heardAt.get(a) ?? Number.NEGATIVE_INFINITY) >= since) heard++
    return Quorum.isMajority(heard, members.length)
  }

  private raiseWatermark(w: number) {
    if (w <= this.watermark) return
    this.watermark = w
    for (const slot of this.proposals.keys()) if (slot < w) this.proposals.delete(slot)
    for (const slot of this.decided.keys()) if (slot < w) this.decided.delete(slot)
    for (const slot of this.unconfirmed.keys()) if (slot < w) this.unconfirmed.delete(slot)
    for (const slot of this.proposedBy.keys()) if (slot < w) this.proposedBy.delete(slot)
    for (const slot of this.unresolved.keys()) if (slot < w) this.unresolved.delete(slot)
    for (const slot of this.reported.keys()) if (slot < w) this.reported.delete(slot)
    for (const [key, slot] of this.commanders) {
      if (slot >= w) continue
      this.out.stop(key)
      this.commanders.delete(key)
      this.routedVotes.delete(key)
    }
  }

  private reportOrphans() {
    if (!this.observeOrphans) return
    const queued = new Set(this.backlog)
    const orphans: Array<number> = []
    const running = new Set(this.commanders.values())
    for (const slot of this.proposals.keys()) {
      if (this.decided.has(slot) || running.has(slot) || queued.has(slot)) continue
      // below where phase 1 began: decided, and left until a replica asks for it again
      if (this.belowFloor(slot)) continue
      orphans.push(slot)
    }
    this.out.event({ _tag: "Orphans", slots: orphans })
  }
}

export interface Status {
  readonly id: string
  /** The highest ballot this leader has used. */
  readonly ballot: Ballot.Ballot
  /** Adopted by a majority: proposing without phase 1. */
  readonly active: boolean
  /** Slots its commanders got decided. */
  readonly decided: number
  /** Its current failure-detection timeout. */
  readonly timeoutMs: number
  /** The acceptors' GC watermark as this leader knows it: it forgets the slots below. */
  readonly watermark: number
  /** Slots it still holds proposals or decisions for. */
  readonly retained: number
}

const isInbound = (m: Message.Message): m is Message.LeaderInbound =>
  m._tag === "Propose" ||
  m._tag === "P1b" ||
  m._tag === "P2b" ||
  m._tag === "Heartbeat" ||
  m._tag === "ReadIndex" ||
  m._tag === "Confirmed" ||
  m._tag === "History"

/** Runs leader `id` until the scope closes; answers its status. Requires `Transport` and `Storage`. */
export const run = Effect.fn("Leader.run")(function* (id: string, config: ClusterConfig.ClusterConfig) {
  const transport = yield* Transport.Transport
  const storage = yield* Storage.Storage
  const bugs = yield* PlantedBugsRef
  const probe = yield* Probe
  const now = yield* Monotonic.Monotonic
  const rng = yield* Random.Random
  const self = Address.leader(id)
  const store = yield* storage.leader(id)
  const { retransmitMs, heartbeatMs } = config.timeouts
  const core = new LeaderCore(id, config, {
    round: bugs.ballotReuse ? 0 : yield* store.loadRound,
    now,
    random: () => rng.nextDoubleUnsafe(),
    bugs,
    observeOrphans: probe !== undefined
  })

  const metrics = {
    round: Metrics.of(Metrics.ballotRound, id),
    active: Metrics.of(Metrics.leaderActive, id),
    preemptions: Metrics.of(Metrics.preemptions, id)
  }
  yield* Metrics.start([metrics.preemptions, Metrics.of(Metrics.retransmissions, id, { role: "leader" })])
  yield* Metrics.gaugeFrom(metrics.round, () => core.ballot.round)
  yield* Metrics.gaugeFrom(metrics.active, () => (core.active ? 1 : 0))

  const observe = (events: ReadonlyArray<Event>) =>
    Effect.forEach(
      events,
      (event) => {
        switch (event._tag) {
          case "Competing":
            probe?.leaderBallot(id, event.ballot)
            return Effect.logInfo("competing for leadership", {
              ballot: `${event.ballot}`,
              watched: `${event.watched}`,
              because: event.because
            })
          case "Adopted":
            return Effect.logInfo("adopted: leading", {
              ballot: `${event.ballot}`,
              slots: event.slots,
              reported: event.reported,
              from: event.from
            })
          case "SteppedDown":
            return Effect.andThen(
              Metric.update(metrics.preemptions, 1),
              Effect.logInfo("preempted", { ballot: `${event.ballot}`, by: `${event.by}` })
            )
          case "Abdicated":
            return Effect.logWarning("no majority of acceptors heard for a lease period: stepping down", {
              ballot: `${event.ballot}`
            })
          case "Orphans":
            probe?.leaderOrphans(id, event.slots)
            return Effect.void
          case "Stalled":
            return Effect.logWarning("this process stalled: watching the leader afresh before judging it", {
              stalledMs: event.stalledMs,
              watched: `${event.watched}`
            })
          case "Resigned":
            return Effect.logInfo(
              event.successor === undefined ? "resigned" : "resigned: handing the leadership over",
              { ballot: `${event.ballot}`, ...(event.successor === undefined ? {} : { to: event.successor }) }
            )
          case "Transferred":
            return Effect.logInfo("handing the leadership over", { ballot: `${event.ballot}`, to: event.to })
          case "Rescouting":
            return Effect.logInfo("a slot below where phase 1 began is needed: phase 1 again", {
              ballot: `${event.ballot}`,
              from: event.from
            })
          case "Rescouted":
            return Effect.logInfo("phase 1 again: read", {
              ballot: `${event.ballot}`,
              from: event.from,
              reported: event.reported,
              ms: event.ms
            })
          case "HandedOver":
            return Effect.logInfo("the leader resigned in this leader's favour: competing at once", {
              from: event.from,
              ballot: `${event.ballot}`
            })
        }
      },
      { discard: true }
    )

  // Tracing: a commander is a span `synod.commander`, child of the replica's proposal of
  // its slot (the Propose that carried it), from its start to its outcome. When tracing is
  // off, `proposed` is undefined and no commander looks for a span.
  const spans = (yield* Trace.Enabled) ? yield* Trace.spans : undefined
  const proposed = spans === undefined ? undefined : new Trace.Recent<number, Tracer.AnySpan>(1024)
  /** Tracing: the spans of recent decisions, which the `Chosen` owed for them continue. */
  const decisions = spans === undefined ? undefined : new Trace.Recent<number, Tracer.AnySpan>(1024)
  const commander = (spec: CommanderSpec, inbox: Queue.Dequeue<Message.Envelope>, trace: Commander.Options["trace"]) =>
    Commander.run({
      leader: self,
      ballot: spec.ballot,
      slot: spec.slot,
      value: spec.value,
      acceptors: spec.acceptors,
      replicas: spec.replicas,
      learners: config.learners,
      deferChosen: true,
      piggyback:
        decisions === undefined
          ? spec.piggyback
          : spec.piggyback.map((p) => ({ ...p, span: decisions.get(p.chosen.slot) })),
      inbox,
      retransmitMs,
      probe,
      bugs: {
        p2bBySlotOnly: bugs.p2bBySlotOnly,
        strictAccept: bugs.strictAccept,
        duplicatePreempts: bugs.duplicatePreempts,
        ...(bugs.staleChildren ? { staleChildren: { currentBallot: () => core.ballot } } : {})
      },
      // B4: the never-ending commander's preemption reaches its leader as an outcome
      reportPreempted: (by) => core.preempted(by),
      trace
    }).pipe(Effect.provideService(Transport.Transport, transport))

  /** A commander in its span, when its slot's proposal was traced. */
  const traced = (spec: CommanderSpec, inbox: Queue.Dequeue<Message.Envelope>) => {
    const parent = proposed!.get(spec.slot)
    if (parent === undefined) return commander(spec, inbox, undefined)
    const span = spans!.start("synod.commander", parent, {
      "synod.leader": id,
      "synod.slot": spec.slot,
      "synod.ballot": `${spec.ballot}`
    })
    return commander(spec, inbox, { span, spans: spans! }).pipe(
      Effect.onExit((exit) =>
        Effect.sync(() => {
          if (exit._tag === "Success" && exit.value._tag === "Decided" && exit.value.span !== undefined) {
            decisions!.set(spec.slot, exit.value.span)
          }
          span.attribute("synod.outcome", exit._tag === "Success" ? exit.value._tag : "Interrupted")
          spans!.end(span)
        })
      )
    )
  }

  const child = (spec: Child, inbox: Queue.Dequeue<Message.Envelope>): Effect.Effect<Input> =>
    spec._tag === "Scout"
      ? Scout.run({
          leader: self,
          ballot: spec.ballot,
          from: spec.from,
          ...(spec.before === undefined ? {} : { before: spec.before }),
          acceptors: spec.acceptors,
          configs: spec.configs,
          until: spec.until,
          ...(spec.first === undefined ? {} : { first: spec.first }),
          inbox,
          retransmitMs,
          duplicatePreempts: bugs.duplicatePreempts
        }).pipe(
          Effect.map((outcome): Input => ({ _tag: "ScoutEnded", outcome })),
          Effect.provideService(Transport.Transport, transport)
        )
      : (proposed === undefined ? commander(spec, inbox, undefined) : traced(spec, inbox)).pipe(
          Effect.map((outcome): Input => ({ _tag: "CommanderEnded", slot: spec.slot, outcome }))
        )

  const control = yield* Queue.unbounded<Input>()
  yield* Host.run({
    self,
    core,
    accepts: isInbound,
    message: (from, message): Input => ({ _tag: "Message", from, message }),
    tick: { everyMs: heartbeatMs, input: { _tag: "Tick" } },
    control,
    persist: (records) => store.saveRound(records[records.length - 1]!.round),
    child,
    observe,
    trace: () => ({
      received: (envelope, parent) => {
        if (envelope.message._tag === "Propose") proposed!.set(envelope.message.slot, parent)
        return undefined
      },
      // a Chosen it owed continues its decision's span, as the commander's own do
      sending: (message) =>
        message._tag === "Chosen" || message._tag === "Decision" ? decisions!.get(message.slot) : undefined
    })
  }).pipe(Effect.annotateLogs({ role: "leader", id }))

  /**
   * Hands the leadership over before the process stops: resigns, then waits (at most
   * `waitMs`) until another leader's active heartbeat shows a higher ballot, so the
   * successor's phase 1 can still reach this server's acceptor.
   */
  const resign = (waitMs: number) =>
    Effect.gen(function* () {
      const wasActive = core.active
      const ballot = core.ballot
      yield* Queue.offer(control, { _tag: "Resign" })
      if (wasActive) yield* successorAbove(ballot, waitMs)
    })

  /** The highest ballot heard once it is above `ballot` (a successor leads), or `undefined` after `waitMs`. */
  const successorAbove = (ballot: Ballot.Ballot, waitMs: number) =>
    Effect.gen(function* () {
      const deadline = now() + waitMs
      while (now() < deadline) {
        if (Ballot.greaterThan(core.highestSeen, ballot)) return core.highestSeen
        yield* Effect.sleep(heartbeatMs)
      }
      return undefined
    })

  /**
   * Hands the leadership over to `to` (default: the most caught-up other leader, `successor`)
   * and waits (at most `waitMs`) until a higher ballot leads: answers who leads then, or
   * `undefined` when this leader was not active or no other leader took over in time.
   * Fails with `TransferRefused` when `to` is not another configured leader.
   */
  const transfer = (waitMs: number, to?: string) =>
    Effect.gen(function* () {
      const target = transferTarget(core.leaderIds, id, to)
      if (target._tag === "Left") return yield* new TransferRefused({ message: target.message })
      if (!core.active) return undefined
      const ballot = core.ballot
      // none named: the core picks the most caught-up leader
      yield* Queue.offer(control, to === undefined ? { _tag: "Transfer" } : { _tag: "Transfer", to: target.to })
      return yield* successorAbove(ballot, waitMs)
    })

  return {
    resign,
    transfer,
    status: Effect.sync(
      (): Status => ({
        id,
        ballot: core.ballot,
        active: core.active,
        decided: core.decidedCount,
        timeoutMs: core.liveness.timeout,
        watermark: core.watermark,
        retained: core.proposals.size + core.decided.size
      })
    )
  }
})

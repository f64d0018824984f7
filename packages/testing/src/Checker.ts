/**
 * The simulator's invariant checker (docs/protocol.md#simulator-checks). It receives every protocol event
 * through the probe as it happens, keeps the history it needs (every accept, every
 * decision, every perform), and records a violation the moment an invariant breaks:
 *
 * - A1  an acceptor's promise never goes back, including across restarts (catches B2);
 *       an acceptor never forgets an accept it reported, unless below its GC watermark.
 * - G   an acceptor forgets slots only below a watermark that f + 1 replicas (all, if
 *       fewer) have durably snapshotted — replicas of the configuration that holds the
 *       slot below the watermark, when the configuration changes.
 * - CFG every slot is decided by a majority of the acceptors of the configuration in
 *       force at that slot (`Configuration.isMajorityAt` over the history the decided log
 *       makes, docs/reconfiguration.md): the "chosen" of A5 and the majority of D are
 *       counted that way (catches B12, a change applied before the window).
 * - A4  one value per (ballot, slot) across all acceptors.
 * - A5  once a majority accepted ⟨b,s,v⟩, no acceptor accepts another value for s at a
 *       higher ballot.
 * - C1  one value per (ballot, slot) across every P2a sent.
 * - C2  no P2a for a chosen slot at a higher ballot with another value (catches B4, B8).
 * - L   a leader's ballots are its own and strictly increase, also across restarts (B1).
 * - D   a commander counts a reply as a vote only if that acceptor accepted exactly its
 *       (ballot, slot) (B3); every decision sent had a real majority accepting exactly it;
 *       one value per slot (R1); a replica learns only decisions that were made.
 * - LIVE an active leader never abandons a slot it has a proposal for: it has a
 *       commander running until the slot is decided (catches B5, B6).
 * - R   replicas perform slots in order without gaps, only decided values; every
 *       performed command was submitted and none is performed twice by one replica (B9);
 *       logs are prefixes of one another (they agree slot by slot with the decisions); a
 *       snapshot installed by state transfer covers only slots some replica performed.
 * - V   divergence (docs/protocol.md#divergence-detection): replicas the nemesis never
 *       corrupted hold the same digest at every digest slot and never find themselves
 *       diverged; the corrupted replica, once its digest differs from theirs at a slot a
 *       majority of them reached, finds out within `detectMs` (counted from the heal at
 *       the earliest: a partition may keep the digests apart) (catches B19); a diverged
 *       replica answers no client until it recovers.
 *
 * @since 0.1.0
 */
import type { Probe } from "@synod/actors/Hooks"
import { Ballot, Command, Configuration, Quorum } from "@synod/core"

const bkey = (b: Ballot.Ballot) => `${b.round}.${b.leader}`

interface ReplicaView {
  next: number
  /** command key → slot in which this replica performed it */
  readonly performed: Map<string, number>
}

export class Checker implements Probe.Probe {
  readonly violations: Array<string> = []
  private readonly acceptorCount: number
  /** Promise each acceptor has revealed (in a reply). */
  private readonly promised = new Map<string, Ballot.Ballot>()
  /** Accepts each acceptor has revealed: slot → highest ballot. */
  private readonly reportedAccepts = new Map<string, Map<number, Ballot.Ballot>>()
  /** (ballot, slot) → value key, over all acceptors (A4) */
  private readonly acceptedValue = new Map<string, string>()
  /** (ballot, slot) → acceptors that accepted it */
  private readonly acceptors = new Map<string, Set<string>>()
  /** slot → accepts (ballot, value) seen, for A5 */
  private readonly acceptsBySlot = new Map<number, Array<{ readonly ballot: Ballot.Ballot; readonly value: string }>>()
  /** slot → the lowest ballot at which a majority accepted, and its value */
  private readonly chosen = new Map<number, { ballot: Ballot.Ballot; value: string }>()
  /** (ballot, slot) → value key over P2as (C1) */
  private readonly p2aValue = new Map<string, string>()
  private readonly leaderBallots = new Map<string, Ballot.Ballot>()
  /** slot → value key of the decision (R1) */
  readonly decisions = new Map<number, string>()
  private readonly replicas = new Map<string, ReplicaView>()
  private readonly submitted = new Set<string>()
  /** slot → the commands the first replica to perform it performed (replicas agree, R1). */
  private readonly performedAt = new Map<number, ReadonlyArray<string>>()
  /** Per replica, the highest slotOut it ever had durably. */
  private readonly durable = new Map<string, number>()
  /** How many replicas must hold a slot durably before acceptors may forget it. */
  private readonly holders: number
  /** Slots some commander sent a P2a for that no commander has decided yet (the nemesis watches it). */
  readonly undecided = new Set<number>()
  /** Garbage collections so far (the nemesis watches it), and snapshots installed by state transfer. */
  gcs = 0
  installs = 0

  /** Replicas in the configuration, and how many make a majority of them. */
  private readonly replicaCount: number
  private readonly now: () => number

  /** With reconfiguration: the cluster config's members and the window (docs/reconfiguration.md). */
  private readonly reconfiguration: { readonly base: Configuration.Members; readonly window: number } | undefined
  /** Configuration changes decided, by slot. */
  private readonly changes = new Map<number, Configuration.Members>()
  private cachedHistory: Configuration.History | undefined

  constructor(
    acceptorCount: number,
    replicaCount = 1,
    now: () => number = () => 0,
    reconfiguration?: { readonly base: Configuration.Members; readonly window: number }
  ) {
    this.acceptorCount = acceptorCount
    this.replicaCount = replicaCount
    this.now = now
    this.holders = Math.max(1, Math.min(replicaCount, Math.floor((acceptorCount - 1) / 2) + 1))
    this.reconfiguration = reconfiguration
  }

  /**
   * The configuration history the decided log makes, each change governing from its slot +
   * window, as the rules say (not as the roles applied it: that is what is checked).
   */
  history(): Configuration.History | undefined {
    const r = this.reconfiguration
    if (r === undefined) return undefined
    if (this.cachedHistory === undefined) {
      let h = Configuration.initial(r.base)
      for (const slot of [...this.changes.keys()].sort((a, b) => a - b)) {
        h = Configuration.apply(h, slot, this.changes.get(slot)!, r.window) ?? h
      }
      this.cachedHistory = h
    }
    return this.cachedHistory
  }

  /** Did a majority of the acceptors of `slot`'s configuration vote (CFG)? */
  private majorityAt(slot: number, voters: ReadonlySet<string>): boolean {
    const h = this.history()
    return h === undefined
      ? Quorum.isMajority(voters.size, this.acceptorCount)
      : Configuration.isMajorityAt(h, slot, voters)
  }

  // ---- divergence (V)

  /** The replica whose state the nemesis changed without a command, and its slotOut then. */
  corruption: { readonly replica: string; readonly slotOut: number } | undefined
  /** While the corrupted replica may still hold the changed state (until it installs a peer's or agrees again). */
  private tainted = false
  /** Per digest slot, the digest of the replicas the nemesis never changed, and which reported it. */
  private readonly truth = new Map<number, { readonly digest: string; readonly replicas: Set<string> }>()
  /** The corrupted replica's digests, per slot. */
  private readonly suspect = new Map<number, string>()
  /** Its digest differs from a majority's at `slot` since `since`: detection is due. */
  private due: { readonly slot: number; readonly since: number } | undefined
  /** Replicas that found themselves diverged and have not recovered: they must answer no client. */
  private readonly quarantined = new Set<string>()
  /** Times the corrupted replica found out. */
  detections = 0
  /**
   * Commands the corrupted replica answered while its state may have been the changed
   * one: their answers may be wrong, and linearizability is checked without them (as if
   * their outcome were unknown; the command itself was decided and performed everywhere).
   */
  readonly exempt = new Set<string>()
  /** How long after the heal a due detection may take. */
  static readonly detectMs = 3000

  /** The nemesis changed `replica`'s state, at slotOut `slotOut`. */
  corrupted(replica: string, slotOut: number): void {
    this.corruption = { replica, slotOut }
    this.tainted = true
    this.due = undefined
  }

  /** No corruption, or the corrupted replica holds a state its peers agree with again. */
  settled(): boolean {
    return this.corruption === undefined || !this.tainted
  }

  replicaDigest(replica: string, slot: number, digest: string): void {
    if (replica === this.corruption?.replica) {
      this.suspect.set(slot, digest)
    } else {
      const t = this.truth.get(slot)
      if (t === undefined) this.truth.set(slot, { digest, replicas: new Set([replica]) })
      else if (t.digest !== digest) {
        this.fail(
          `V: replicas ${[...t.replicas].join(", ")} and ${replica} hold different states at digest slot ${slot} (${t.digest.slice(0, 12)}… and ${digest.slice(0, 12)}…), and the nemesis changed neither`
        )
      } else t.replicas.add(replica)
    }
    this.judge(slot)
  }

  /** Whether the corrupted replica's digest at `slot` is known wrong (detection due) or right (clean). */
  private judge(slot: number): void {
    if (!this.tainted || this.corruption === undefined) return
    const mine = this.suspect.get(slot)
    const t = this.truth.get(slot)
    if (mine === undefined || t === undefined || t.replicas.size < Math.floor(this.replicaCount / 2) + 1) return
    if (mine !== t.digest) {
      if (this.due === undefined && !this.quarantined.has(this.corruption.replica))
        this.due = { slot, since: this.now() }
    } else if (slot > this.corruption.slotOut) {
      // a state digested after the change and right: it was replaced (a restart from an older snapshot)
      this.tainted = false
      this.due = undefined
    }
  }

  /** Fails if a due detection is later than `detectMs` after the heal at `healAt` (called after each step). */
  deadlines(healAt: number): void {
    const due = this.due
    if (due === undefined || this.corruption === undefined) return
    if (this.now() > Math.max(due.since, healAt) + Checker.detectMs) {
      this.fail(
        `V: replica ${this.corruption.replica} holds a state that differs from a majority's at digest slot ${due.slot} (known at ${due.since}), and did not find out within ${Checker.detectMs} ms of the heal`
      )
      this.due = undefined
    }
  }

  replicaDiverged(replica: string, slot: number): void {
    if (replica !== this.corruption?.replica) {
      this.fail(`V: replica ${replica} found itself diverged at slot ${slot}, but the nemesis never changed its state`)
      return
    }
    this.quarantined.add(replica)
    this.detections++
    this.due = undefined
  }

  replicaRecovered(replica: string, slotOut: number, installed: boolean): void {
    this.quarantined.delete(replica)
    if (replica === this.corruption?.replica) {
      this.tainted = false
      this.due = undefined
    }
    if (installed) this.installedAt(replica, slotOut, true)
  }

  replicaAnswered(replica: string, client: string, seq: number): void {
    if (this.quarantined.has(replica)) {
      this.fail(`V: replica ${replica} answered ${client}#${seq} while diverged`)
    }
    if (replica === this.corruption?.replica && this.tainted) this.exempt.add(`${client}#${seq}`)
  }

  /** As `replicaAnswered`, for a read by read index (exempt as `client@id`). */
  replicaReadAnswered(replica: string, client: string, id: number): void {
    if (this.quarantined.has(replica)) {
      this.fail(`V: replica ${replica} answered read ${client}@${id} while diverged`)
    }
    if (replica === this.corruption?.replica && this.tainted) this.exempt.add(`${client}@${id}`)
  }

  private fail(message: string): void {
    if (this.violations.length < 20) this.violations.push(message)
  }

  submit(commandKey: string): void {
    this.submitted.add(commandKey)
  }

  acceptorLoaded(
    acceptor: string,
    promised: Ballot.Ballot,
    accepted: ReadonlyMap<number, Command.PValue>,
    watermark: number
  ): void {
    const revealed = this.promised.get(acceptor)
    if (revealed !== undefined && Ballot.lessThan(promised, revealed)) {
      this.fail(`A1: acceptor ${acceptor} restarted with promise ${promised} below the ${revealed} it had replied with`)
    }
    for (const [slot, ballot] of this.reportedAccepts.get(acceptor) ?? []) {
      if (slot < watermark) continue // garbage-collected (G checks that was allowed)
      const kept = accepted.get(slot)
      if (kept === undefined || Ballot.lessThan(kept.ballot, ballot)) {
        this.fail(`A3: acceptor ${acceptor} restarted without the accept of slot ${slot} at ${ballot} it had reported`)
      }
    }
  }

  acceptorForgot(acceptor: string, watermark: number): void {
    this.gcs++
    const h = this.history()
    // the replicas of the configuration that holds the slot below the watermark, and how many must hold it
    const members = h === undefined ? undefined : Configuration.at(h, watermark - 1)
    const holders =
      members === undefined
        ? this.holders
        : Math.max(1, Math.min(members.replicas.length, Math.floor((members.acceptors.length - 1) / 2) + 1))
    let holding = 0
    for (const [replica, slotOut] of this.durable) {
      if (slotOut >= watermark && (members === undefined || members.replicas.includes(replica))) holding++
    }
    if (holding < holders) {
      this.fail(
        `G: acceptor ${acceptor} forgot the slots below ${watermark}, but only ${holding} replicas${members === undefined ? "" : " of its configuration"} hold them durably (${holders} needed)`
      )
    }
  }

  acceptorPromised(acceptor: string, promised: Ballot.Ballot): void {
    const before = this.promised.get(acceptor)
    if (before !== undefined && Ballot.lessThan(promised, before)) {
      this.fail(`A1: acceptor ${acceptor} replied with promise ${promised} after ${before}`)
    }
    if (before === undefined || Ballot.greaterThan(promised, before)) this.promised.set(acceptor, promised)
  }

  acceptorAccepted(acceptor: string, pv: Command.PValue): void {
    const k = `${bkey(pv.ballot)}|${pv.slot}`
    const value = Command.valueKey(pv.value)
    const prior = this.acceptedValue.get(k)
    if (prior !== undefined && prior !== value) {
      this.fail(`A4: two values accepted in slot ${pv.slot} at ballot ${pv.ballot}: ${prior} and ${value}`)
    }
    this.acceptedValue.set(k, value)
    let reported = this.reportedAccepts.get(acceptor)
    if (reported === undefined) this.reportedAccepts.set(acceptor, (reported = new Map()))
    const had = reported.get(pv.slot)
    if (had === undefined || Ballot.greaterThan(pv.ballot, had)) reported.set(pv.slot, pv.ballot)

    const chosen = this.chosen.get(pv.slot)
    if (chosen !== undefined && Ballot.greaterThan(pv.ballot, chosen.ballot) && chosen.value !== value) {
      this.fail(
        `A5: slot ${pv.slot} was chosen as ${chosen.value} at ${chosen.ballot}, yet ${acceptor} accepted ${value} at ${pv.ballot}`
      )
    }
    let list = this.acceptsBySlot.get(pv.slot)
    if (list === undefined) this.acceptsBySlot.set(pv.slot, (list = []))
    list.push({ ballot: pv.ballot, value })

    let voters = this.acceptors.get(k)
    if (voters === undefined) this.acceptors.set(k, (voters = new Set()))
    voters.add(acceptor)
    if (this.majorityAt(pv.slot, voters) && (chosen === undefined || Ballot.lessThan(pv.ballot, chosen.ballot))) {
      if (chosen !== undefined && chosen.value !== value) {
        this.fail(`R1: slot ${pv.slot} chosen twice: ${chosen.value} at ${chosen.ballot} and ${value} at ${pv.ballot}`)
      }
      this.chosen.set(pv.slot, { ballot: pv.ballot, value })
      for (const other of list) {
        if (Ballot.greaterThan(other.ballot, pv.ballot) && other.value !== value) {
          this.fail(
            `A5: slot ${pv.slot} chosen as ${value} at ${pv.ballot}, but ${other.value} was accepted at ${other.ballot}`
          )
        }
      }
    }
  }

  /** Slots each leader left orphaned at its previous tick. */
  private readonly orphans = new Map<string, ReadonlySet<number>>()

  leaderOrphans(leader: string, slots: ReadonlyArray<number>): void {
    // a commander's outcome may still be queued at one tick; two ticks in a row is abandonment
    const before = this.orphans.get(leader)
    for (const s of slots) {
      if (before?.has(s))
        this.fail(`LIVE: active leader ${leader} abandoned slot ${s}: a proposal, no decision, no commander`)
    }
    this.orphans.set(leader, new Set(slots))
  }

  leaderBallot(leader: string, ballot: Ballot.Ballot): void {
    this.orphans.delete(leader)
    if (ballot.leader !== leader) this.fail(`L: leader ${leader} uses ballot ${ballot} of another leader`)
    const before = this.leaderBallots.get(leader)
    if (before !== undefined && !Ballot.greaterThan(ballot, before)) {
      this.fail(
        `L: leader ${leader} started phase 1 with ballot ${ballot} after already using ${before} (ballot reuse)`
      )
    }
    this.leaderBallots.set(leader, ballot)
    if (before !== undefined) this.reelections.push(leader)
  }

  p2aSent(leader: string, ballot: Ballot.Ballot, slot: number, value: Command.SlotValue): void {
    if (!this.decisions.has(slot)) this.undecided.add(slot)
    const k = `${bkey(ballot)}|${slot}`
    const v = Command.valueKey(value)
    const prior = this.p2aValue.get(k)
    if (prior !== undefined && prior !== v) {
      this.fail(`C1: two P2a for slot ${slot} at ballot ${ballot}: ${prior} and ${v} (leader ${leader})`)
    }
    this.p2aValue.set(k, v)
    const chosen = this.chosen.get(slot)
    if (chosen !== undefined && Ballot.greaterThan(ballot, chosen.ballot) && chosen.value !== v) {
      this.fail(
        `C2: leader ${leader} sent P2a ${v} for slot ${slot} at ${ballot}, but ${chosen.value} was chosen at ${chosen.ballot}`
      )
    }
  }

  voteCounted(leader: string, acceptor: string, ballot: Ballot.Ballot, slot: number): void {
    if (this.acceptors.get(`${bkey(ballot)}|${slot}`)?.has(acceptor) !== true) {
      this.fail(
        `D: leader ${leader} counted ${acceptor} as voting for slot ${slot} at ${ballot}, which it never accepted`
      )
    }
  }

  decided(leader: string, ballot: Ballot.Ballot, slot: number, value: Command.SlotValue): void {
    this.undecided.delete(slot)
    const k = `${bkey(ballot)}|${slot}`
    const v = Command.valueKey(value)
    const voters = this.acceptors.get(k)
    if (this.acceptedValue.get(k) !== v || voters === undefined || !this.majorityAt(slot, voters)) {
      const h = this.history()
      this.fail(
        h === undefined
          ? `D: leader ${leader} decided ${v} in slot ${slot} at ${ballot} without a majority of acceptors accepting it`
          : `CFG: leader ${leader} decided ${v} in slot ${slot} at ${ballot} without a majority of the acceptors of that slot's configuration (${Configuration.at(h, slot).acceptors.join(",")}) accepting it (voters: ${[...(voters ?? [])].join(",")})`
      )
    }
    const prior = this.decisions.get(slot)
    if (prior !== undefined && prior !== v) this.fail(`R1: slot ${slot} decided as ${prior} and as ${v}`)
    this.decisions.set(slot, v)
    if (value._tag === "Reconfigure" && !this.changes.has(slot)) {
      this.changes.set(slot, value.members)
      this.cachedHistory = undefined
    }
  }

  decisionLearned(replica: string, slot: number, value: Command.SlotValue): void {
    const v = Command.valueKey(value)
    const d = this.decisions.get(slot)
    if (d !== v) this.fail(`R1: replica ${replica} learned ${v} for slot ${slot}, but the decision is ${d ?? "none"}`)
  }

  private view(replica: string): ReplicaView {
    let v = this.replicas.get(replica)
    if (v === undefined) this.replicas.set(replica, (v = { next: 1, performed: new Map() }))
    return v
  }

  replicaLoaded(replica: string, slotOut: number): void {
    // a restarted replica knows nothing of a divergence it found: it finds out again, or
    // its state (the verified one it saved, with three replicas or more) agrees
    this.quarantined.delete(replica)
    const v = this.view(replica)
    if (slotOut > v.next)
      this.fail(`R4: replica ${replica} restarted at slot ${slotOut} beyond what it performed (${v.next})`)
    for (const [k, s] of v.performed) if (s >= slotOut) v.performed.delete(k)
    v.next = slotOut
    this.replicaSaved(replica, slotOut)
  }

  replicaSaved(replica: string, slotOut: number): void {
    if (slotOut > (this.durable.get(replica) ?? 0)) this.durable.set(replica, slotOut)
  }

  replicaInstalled(replica: string, slotOut: number): void {
    if (replica === this.corruption?.replica) {
      this.tainted = false
      this.due = undefined
    }
    this.installedAt(replica, slotOut, false)
  }

  /** A peer's snapshot replaced the replica's state: ahead of it, or, repairing a divergence, not behind. */
  private installedAt(replica: string, slotOut: number, repair: boolean): void {
    this.installs++
    const v = this.view(replica)
    if (repair ? slotOut < v.next : slotOut <= v.next)
      this.fail(`R: replica ${replica} installed a snapshot at ${slotOut}, not ahead of ${v.next}`)
    for (let s = v.next; s < slotOut; s++) {
      const commands = this.performedAt.get(s)
      if (commands === undefined) {
        this.fail(`R: replica ${replica} installed a snapshot through slot ${slotOut - 1}; no replica performed ${s}`)
        break
      }
      // the snapshot's state performed these: performing one again would be a duplicate
      for (const k of commands) v.performed.set(k, s)
    }
    v.next = slotOut
  }

  performed(replica: string, slot: number, commands: ReadonlyArray<string>): void {
    const v = this.view(replica)
    if (slot !== v.next) this.fail(`R2: replica ${replica} performed slot ${slot} when slot ${v.next} was next`)
    v.next = slot + 1
    if (!this.decisions.has(slot)) this.fail(`R1: replica ${replica} performed slot ${slot}, which was never decided`)
    if (!this.performedAt.has(slot)) this.performedAt.set(slot, commands)
    for (const k of commands) {
      if (!this.submitted.has(k)) this.fail(`R: replica ${replica} performed ${k}, which no client submitted`)
      const before = v.performed.get(k)
      if (before !== undefined) this.fail(`R: replica ${replica} performed ${k} twice (slots ${before} and ${slot})`)
      v.performed.set(k, slot)
    }
  }

  /** Leaders that started a ballot after an earlier one of their own, in order (the nemesis watches it). */
  readonly reelections: Array<string> = []

  /** The leader that started the highest ballot so far: presumably the active one. */
  currentLeader(): string | undefined {
    let best: [string, Ballot.Ballot] | undefined
    for (const [l, b] of this.leaderBallots) if (best === undefined || Ballot.greaterThan(b, best[1])) best = [l, b]
    return best?.[0]
  }

  /** The next slot each replica will perform. */
  progress(): ReadonlyMap<string, number> {
    return new Map([...this.replicas].map(([r, v]) => [r, v.next]))
  }
}

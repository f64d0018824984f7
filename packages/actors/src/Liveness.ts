/**
 * When a passive leader competes for leadership (docs/protocol.md#failure-detector, B14, B15).
 *
 * A passive leader defers to the owner of the highest ballot it has seen and watches its
 * heartbeats. It competes when that leader seems dead (no heartbeat for `timeout`) or
 * seems stuck: proposals keep arriving but the heartbeats' decided counter has not moved
 * for `timeout` (B14: a leader that answers pings but makes no progress).
 *
 * `timeout` adapts like TCP's window, the other way round: it doubles on each preemption
 * (so two leaders stop dueling, B15) and shrinks additively with each success, never
 * below its initial value nor above its bound. Each wait, for silence and for progress
 * alike, gets seeded jitter so leaders with identical settings still break symmetry.
 *
 * Each wait is also at least twice the longest of the recent gaps it measures (between
 * the watched leader's heartbeats, and between its progress), the three longest aside, as
 * a phi-accrual detector learns what is normal: under load with 4 KB values a busy
 * leader's heartbeats came 100–600 ms apart and a slot took up to a second, so a fixed
 * 300 ms judged a working leader dead or stuck, its successor fared no better, and
 * leadership churned until no write committed for seconds. (The gaps include the
 * watcher's own stalls: a process whose event loop stalled wakes to its timer before it
 * reads the heartbeats waiting in its socket.)
 *
 * Pure: time and randomness come in as arguments.
 *
 * @since 0.1.0
 */
import { Ballot, type Message } from "@synod/core"

export interface Settings {
  readonly initialMs: number
  readonly maxMs: number
  /** How long even the preferred leader listens for a working leader before competing at start (default 0). */
  readonly listenMs?: number
  /**
   * This leader's turn among the candidates once the leader of `watched` fails: 0 for the
   * first one after it in the configured order, 1 for the next, and so on (default: 0 for
   * everyone). Waits are staggered by turn, a timeout apart, so with many leaders the
   * next one in line competes alone instead of several at once.
   */
  readonly turn?: (watched: Ballot.Ballot) => number
}

/** How many recent gaps the detector remembers, of heartbeats and of progress alike. */
export const recentGaps = 128

/**
 * The longest gaps a wait ignores: a lone stall (a GC, a burst of traffic) does not stretch
 * the waits, stalls as frequent as under load do.
 */
export const outlierGaps = 3

/** The longest of the last `recentGaps` gaps recorded but the `outlierGaps` longest (0 before enough). */
class RecentMax {
  private readonly gaps: Array<number> = []
  private next = 0

  record(gap: number): void {
    if (this.gaps.length < recentGaps) this.gaps.push(gap)
    else this.gaps[this.next] = gap
    this.next = (this.next + 1) % recentGaps
  }

  max(): number {
    // the few longest, in descending order
    const top: Array<number> = []
    for (const g of this.gaps) {
      if (top.length <= outlierGaps) top.push(g)
      else if (g > top[outlierGaps]!) top[outlierGaps] = g
      else continue
      top.sort((a, b) => b - a)
    }
    return top[outlierGaps] ?? 0
  }
}

export class Liveness {
  /** Current adaptive timeout. */
  timeout: number
  /** The ballot whose leader we defer to. */
  watched: Ballot.Ballot = Ballot.bottom
  private deadline: number
  private lastProgress: number
  private lastDecided = -1
  /** The ballot whose heartbeat reported `lastDecided` (a preemption names a leader before it is heard). */
  private decidedOf: Ballot.Ballot | undefined
  /** The highest slot an active leader's heartbeat reported decided (`Heartbeat.slot`). */
  private decidedSlot = 0
  private pendingSince: number | undefined
  /** How long proposals may wait without progress before this leader suspects the watched one (jittered). */
  private suspectAfter: number
  private readonly settings: Settings
  /** Draws in [0, 1): the jitter source. */
  private readonly random: () => number
  /** When the last heartbeat of the watched ballot came, and when its decided counter last moved. */
  private heardAt: number | undefined
  private progressAt: number | undefined
  private readonly beatGaps = new RecentMax()
  private readonly progressGaps = new RecentMax()

  /**
   * `eager`: compete as soon as `listenMs` passed without a heartbeat (the preferred
   * leader at start-up). A server that rejoins hears the working leader within that
   * time and defers to it instead of deposing it.
   */
  constructor(settings: Settings, now: number, random: () => number, eager: boolean) {
    this.settings = settings
    this.random = random
    this.timeout = settings.initialMs
    this.lastProgress = now
    this.suspectAfter = this.jittered(this.progressGaps)
    this.deadline = eager ? now + (settings.listenMs ?? 0) : now + this.jittered(this.beatGaps)
  }

  /**
   * A wait of one period, plus a period per turn, plus up to half a period of seeded
   * jitter. The period is the timeout, or twice the longest recent gap of `gaps` if that
   * is longer, up to the bound. Turns are a period apart and the jitter spans half of one,
   * so the next turn begins at least half a period after the last wait of the one before:
   * time for that leader's phase 1 and first heartbeat. Half a period apart, turns met,
   * and under load the second in line competed while the first, adopted a few
   * milliseconds before, still had its heartbeat on the way: it was preempted at once
   * and a fail-over took 0.95 s instead of 0.45.
   */
  private jittered(gaps: RecentMax): number {
    const period = Math.max(this.timeout, Math.min(this.settings.maxMs, 2 * gaps.max()))
    const turn = this.settings.turn?.(this.watched) ?? 0
    return period + turn * period + Math.floor((this.random() * period) / 2)
  }

  /** A heartbeat from another leader. */
  heartbeat(now: number, hb: Message.Heartbeat): void {
    if (hb.active && hb.slot > this.decidedSlot) this.decidedSlot = hb.slot
    if (Ballot.lessThan(hb.ballot, this.watched)) return
    const same = Ballot.equals(hb.ballot, this.watched)
    const progress = !same || hb.decided !== this.lastDecided
    // gaps are measured within one leader's heartbeats; those learned stay across a change
    // of leader (the load, and the stalls it causes, are the cluster's)
    if (same && this.heardAt !== undefined) this.beatGaps.record(now - this.heardAt)
    if (same && progress && this.progressAt !== undefined) this.progressGaps.record(now - this.progressAt)
    this.heardAt = now
    if (progress) this.progressAt = now
    // watched first: the waits drawn below take this leader's turn after the new one
    this.watched = hb.ballot
    // the watched leader decides: the timeout a preemption doubled comes back down as it
    // would for this leader's own decisions. Kept doubled for as long as it stayed
    // passive, it made this leader, first in line at the next failure, wait as long as the
    // second in line: the turns no longer kept the two apart
    if (
      hb.active &&
      this.decidedOf !== undefined &&
      Ballot.equals(hb.ballot, this.decidedOf) &&
      hb.decided !== this.lastDecided
    ) {
      this.success()
    }
    if (progress) {
      this.lastProgress = now
      this.lastDecided = hb.decided
      this.decidedOf = hb.ballot
      this.pendingSince = undefined
      this.suspectAfter = this.jittered(this.progressGaps)
    }
    // it holds a value for a slot above the highest it knows decided: work waits there, as
    // if a replica had proposed it here (replicas do not resend what it holds)
    if (hb.active && hb.held !== undefined && hb.held > hb.slot) this.pendingSince ??= now
    this.deadline = now + this.jittered(this.beatGaps)
  }

  /**
   * A proposal for `slot` reached this passive leader: someone is waiting for progress,
   * unless an active leader's heartbeat already reported the slot decided. A replica
   * catching up asks every leader for such slots on its tick; counted as waiting, the asks
   * of one restarted behind a working leader made a passive leader judge that leader stuck
   * at its first slow heartbeat and depose it. (No `slot`: one not known decided.)
   */
  proposal(now: number, slot?: number): void {
    if (slot !== undefined && slot <= this.decidedSlot) return
    this.pendingSince ??= now
  }

  /** Should this passive leader start a scout now? */
  shouldCompete(now: number): boolean {
    return this.suspicion(now) !== undefined
  }

  /**
   * Why this passive leader would compete now: the watched leader fell `silent` (no
   * heartbeat for a timeout) or is `stuck` (heartbeats, but proposals wait without progress).
   */
  suspicion(now: number): "silent" | "stuck" | undefined {
    return now >= this.deadline ? "silent" : this.progressing(now) ? undefined : "stuck"
  }

  /**
   * Is the watched leader making progress? Not when proposals have waited, with its
   * decided counter standing still, for a (jittered) timeout — so passive leaders that
   * suspect it together still start their scouts apart.
   */
  progressing(now: number): boolean {
    return this.pendingSince === undefined || now - Math.max(this.pendingSince, this.lastProgress) < this.suspectAfter
  }

  /** A scout was started: wait a full period before judging again. */
  competing(now: number): void {
    this.watchAfresh(now)
  }

  /**
   * This leader just handed the leadership over: the successor is running phase 1, which
   * under load pages in every accepted value above the GC watermark and sends no
   * heartbeat until adopted. Competing after one timeout would depose it mid-scout (a
   * duel); so it waits the longest timeout, unless the successor's heartbeats say more.
   * The other leaders judge the successor as usual.
   */
  handedOver(now: number): void {
    this.pendingSince = undefined
    this.lastProgress = now
    this.deadline = now + this.settings.maxMs
    this.suspectAfter = this.settings.maxMs
  }

  /**
   * This leader's own process stalled past a timeout (paused, or starved of CPU): the
   * deadline passed while it could not listen, and what the watched leader sent meanwhile
   * may be waiting unread. It watches afresh, as after starting a scout, rather than judge
   * on time it did not watch.
   */
  resumed(now: number): void {
    this.watchAfresh(now)
  }

  /** Preempted by `by`: back off, and watch its leader. */
  preempted(now: number, by: Ballot.Ballot): void {
    this.timeout = Math.min(this.settings.maxMs, this.timeout * 2)
    if (Ballot.greaterThan(by, this.watched)) this.watched = by
    this.watchAfresh(now)
  }

  /**
   * Judges nothing before a full jittered wait from `now`, neither silence nor a lack of
   * progress (the two jitters drawn in that order, as the simulator's seeds expect).
   */
  private watchAfresh(now: number): void {
    this.deadline = now + this.jittered(this.beatGaps)
    this.pendingSince = undefined
    this.lastProgress = now
    this.suspectAfter = this.jittered(this.progressGaps)
  }

  /** A slot got decided or a ballot adopted: trust the current timeout a bit less. */
  success(): void {
    this.timeout = Math.max(this.settings.initialMs, this.timeout - this.settings.initialMs / 8)
  }
}

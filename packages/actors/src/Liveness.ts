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
   * everyone). Waits are staggered by turn, half a timeout apart, so with many leaders the
   * next one in line competes alone instead of several at once.
   */
  readonly turn?: (watched: Ballot.Ballot) => number
}

export class Liveness {
  /** Current adaptive timeout. */
  timeout: number
  /** The ballot whose leader we defer to. */
  watched: Ballot.Ballot = Ballot.bottom
  private deadline: number
  private lastProgress: number
  private lastDecided = -1
  private pendingSince: number | undefined
  /** How long proposals may wait without progress before this leader suspects the watched one (jittered). */
  private suspectAfter: number
  private readonly settings: Settings
  /** Draws in [0, 1): the jitter source. */
  private readonly random: () => number

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
    this.suspectAfter = this.jittered()
    this.deadline = eager ? now + (settings.listenMs ?? 0) : now + this.jittered()
  }

  /** A wait of one timeout, plus half a timeout per turn, plus up to half a timeout of seeded jitter. */
  private jittered(): number {
    const turn = this.settings.turn?.(this.watched) ?? 0
    return this.timeout + Math.floor(((turn + this.random()) * this.timeout) / 2)
  }

  /** A heartbeat from another leader. */
  heartbeat(now: number, hb: Message.Heartbeat): void {
    if (Ballot.lessThan(hb.ballot, this.watched)) return
    const progress = !Ballot.equals(hb.ballot, this.watched) || hb.decided !== this.lastDecided
    // watched first: the waits drawn below take this leader's turn after the new one
    this.watched = hb.ballot
    if (progress) {
      this.lastProgress = now
      this.lastDecided = hb.decided
      this.pendingSince = undefined
      this.suspectAfter = this.jittered()
    }
    this.deadline = now + this.jittered()
  }

  /** A proposal reached this passive leader: someone is waiting for progress. */
  proposal(now: number): void {
    this.pendingSince ??= now
  }

  /** Should this passive leader start a scout now? */
  shouldCompete(now: number): boolean {
    return now >= this.deadline || !this.progressing(now)
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
    this.deadline = now + this.jittered()
    this.pendingSince = undefined
    this.lastProgress = now
    this.suspectAfter = this.jittered()
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

  /** Preempted by `by`: back off, and watch its leader. */
  preempted(now: number, by: Ballot.Ballot): void {
    this.timeout = Math.min(this.settings.maxMs, this.timeout * 2)
    if (Ballot.greaterThan(by, this.watched)) this.watched = by
    this.lastProgress = now
    this.pendingSince = undefined
    this.deadline = now + this.jittered()
    this.suspectAfter = this.jittered()
  }

  /** A slot got decided or a ballot adopted: trust the current timeout a bit less. */
  success(): void {
    this.timeout = Math.max(this.settings.initialMs, this.timeout - this.settings.initialMs / 8)
  }
}

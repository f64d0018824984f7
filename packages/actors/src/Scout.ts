/**
 * The scout: phase 1 for one ballot. Its decisions are a pure tally (`ScoutTally`): a P1b
 * in, `Continue | NextPage | Adopted | Preempted` out. Its fiber, a child of the leader's
 * host, sends P1a to every acceptor (or to a majority first: `Options.first`), resends on
 * a schedule to those that have neither answered nor sent a page since the last resend,
 * asks for each next page, and returns the outcome (docs/protocol.md#scout).
 *
 * - Promises for its ballot are merged per slot by highest ballot (pmax).
 * - An acceptor answers in pages by slot range (`P1b.next`); it counts only when its last
 *   page arrived, and only the page asked for counts (a duplicate adds nothing).
 * - Adopted once a majority sent every page, with the highest GC watermark they reported.
 *   With several configurations (docs/reconfiguration.md, rule 4) it asks every acceptor
 *   of any of them and is adopted once a majority of *each* sent every page; it reports
 *   each acceptor's pvalues apart, so that its leader merges a slot's over that slot's
 *   configuration only.
 *   A configuration all of whose slots lie below a GC watermark a promising acceptor
 *   reported (`until ≤ watermark`) need not promise: no slot it governs will be
 *   commanded (the leader proposes nothing below the watermark), and its acceptors may
 *   be retired and gone (docs/reconfiguration.md, rule 7) — a leader restarted with
 *   watermark 1 would otherwise wait for them forever.
 * - Preempted as soon as one acceptor reports a higher ballot; lower ballots are ignored;
 *   a duplicate promise counts once (B6).
 *
 * @since 0.1.0
 */
import { Address, Ballot, type Command, type Message, Quorum, Trusted } from "@synod/core"
import { Effect, Queue } from "effect"
import * as Phase from "./internal/Phase.ts"

export type Outcome =
  | {
      readonly _tag: "Adopted"
      readonly ballot: Ballot.Ballot
      readonly pvalues: ReadonlyMap<number, Command.PValue>
      /**
       * Each answering acceptor's pvalues, for a merge over one slot's configuration.
       * Absent (tests that build an outcome by hand): `pvalues` holds every slot's merge.
       */
      readonly byAcceptor?: ReadonlyMap<string, ReadonlyArray<Command.PValue>>
      /** The acceptor sets (configurations) a majority of each of which promised (absent: the scout's leader's configurations). */
      readonly configs?: ReadonlyArray<ReadonlyArray<string>>
      /**
       * Those of `configs` a majority of which did promise (absent: all): the others govern
       * only slots below `watermark`. A leader counts only these as adopted, for one of the
       * others may come back in a later change and must then be scouted.
       */
      readonly promised?: ReadonlyArray<ReadonlyArray<string>>
      /** The highest GC watermark the promising acceptors reported: nothing may be proposed below it. */
      readonly watermark: number
      /** The slot it asked from: the acceptors reported nothing below it (absent: tests that build an outcome by hand). */
      readonly from?: number
    }
  | { readonly _tag: "Preempted"; readonly ballot: Ballot.Ballot; readonly by: Ballot.Ballot }

export type Step = { readonly _tag: "Continue" } | { readonly _tag: "NextPage"; readonly acceptor: string } | Outcome

const continue_: Step = { _tag: "Continue" }

/** Merges `pvalues` into `into`, keeping per slot the pvalue with the highest ballot. */
export const mergePmax = (into: Map<number, Command.PValue>, pvalues: Iterable<Command.PValue>): void => {
  for (const pv of pvalues) {
    const old = into.get(pv.slot)
    if (old === undefined || Ballot.greaterThan(pv.ballot, old.ballot)) into.set(pv.slot, pv)
  }
}

/** Phase 1 of one ballot, without I/O. */
export class ScoutTally {
  readonly ballot: Ballot.Ballot
  readonly tally: Quorum.Tally
  private readonly pvalues = new Map<number, Command.PValue>()
  private readonly byAcceptor = new Map<string, Array<Command.PValue>>()
  /** The configurations it must be adopted by: a majority of each. */
  readonly configs: ReadonlyArray<ReadonlyArray<string>>
  /** Per configuration, the slot from which it governs nothing (absent: it governs every slot from `from` on). */
  private readonly until: ReadonlyArray<number> | undefined
  private watermark = 1
  private readonly first: number
  /** The slot below which it asks for pvalues (undefined: every one from `first` on). */
  private readonly before: number | undefined
  /** Per acceptor, the slot its next P1b page starts at. */
  private readonly cursor: Map<string, number>
  /** B6 planted bug: a duplicate promise ends the scout as preempted. */
  private readonly duplicatePreempts: boolean

  constructor(
    ballot: Ballot.Ballot,
    acceptors: ReadonlyArray<string>,
    from = 1,
    duplicatePreempts = false,
    configs: ReadonlyArray<ReadonlyArray<string>> = [acceptors],
    until?: ReadonlyArray<number>,
    before?: number
  ) {
    this.ballot = ballot
    this.before = before
    this.configs = configs
    this.until = until
    this.tally = Quorum.make(acceptors)
    this.first = Math.max(1, from)
    this.cursor = new Map(acceptors.map((a) => [a, this.first]))
    this.duplicatePreempts = duplicatePreempts
  }

  /** The P1a to send `acceptor` now: it asks for the page this scout is waiting for. */
  p1a(acceptor: string): Message.P1a {
    const from = this.cursor.get(acceptor) ?? this.first
    return Trusted.p1a(this.ballot, from <= 1 ? undefined : from, this.before)
  }

  /** A P1b from `acceptor`. */
  p1b(acceptor: string, msg: Message.P1b): Step {
    const ballot = this.ballot
    if (Ballot.greaterThan(msg.ballot, ballot)) return { _tag: "Preempted", ballot, by: msg.ballot }
    if (!Ballot.equals(msg.ballot, ballot)) return continue_
    if (this.tally.has(acceptor)) return this.duplicatePreempts ? { _tag: "Preempted", ballot, by: ballot } : continue_
    const at = this.cursor.get(acceptor)
    // only the page asked for: of this range (another scout of the leader, for other
    // slots, may have asked the same acceptor from the same slot) and at this cursor
    if (at === undefined || (msg.from ?? 1) !== at || msg.before !== this.before) return continue_
    mergePmax(this.pvalues, msg.accepted)
    if (msg.accepted.length > 0) {
      const own = this.byAcceptor.get(acceptor)
      if (own === undefined) this.byAcceptor.set(acceptor, [...msg.accepted])
      else own.push(...msg.accepted)
    }
    if (msg.watermark !== undefined && msg.watermark > this.watermark) this.watermark = msg.watermark
    if (msg.next !== undefined) {
      // a page that does not advance is ignored: the resend asks for it again
      if (msg.next <= at) return continue_
      this.cursor.set(acceptor, msg.next)
      return { _tag: "NextPage", acceptor }
    }
    this.tally.add(acceptor)
    if (!this.adopted()) return continue_
    const promised = this.configs.filter((members) => this.promisedBy(members))
    return {
      _tag: "Adopted",
      ballot,
      pvalues: this.pvalues,
      byAcceptor: this.byAcceptor,
      configs: this.configs,
      ...(promised.length < this.configs.length ? { promised } : {}),
      watermark: this.watermark,
      from: this.first
    }
  }

  private promisedBy(members: ReadonlyArray<string>): boolean {
    let n = 0
    for (const a of members) if (this.tally.has(a)) n++
    return Quorum.isMajority(n, members.length)
  }

  /** Has a majority of every configuration that governs a slot from the watermark on sent every page? */
  private adopted(): boolean {
    for (const [i, members] of this.configs.entries()) {
      if (this.until !== undefined && this.until[i]! <= this.watermark) continue
      if (!this.promisedBy(members)) return false
    }
    return true
  }
}

export interface Options {
  readonly leader: Address.Address
  readonly ballot: Ballot.Ballot
  /** The leader's watermark: acceptors report only pvalues for slots from here on. */
  readonly from?: number
  /** And below this slot (absent: every one from `from` on): phase 1 again below the slots adopted already. */
  readonly before?: number
  readonly acceptors: ReadonlyArray<string>
  /** The configurations (acceptor sets) a majority of each of which must promise (default: `acceptors` alone). */
  readonly configs?: ReadonlyArray<ReadonlyArray<string>>
  /** Per configuration, the slot from which it governs nothing: below a reported watermark it need not promise. */
  readonly until?: ReadonlyArray<number>
  /**
   * The acceptors asked first (default: all): the others are asked once one of these lets
   * a retransmit period pass without a page. A majority of each configuration, so that
   * the others are asked only when one of those is slow or gone.
   */
  readonly first?: ReadonlyArray<string>
  readonly inbox: Queue.Dequeue<Message.Envelope>
  readonly retransmitMs: number
  /** B6 planted bug: a duplicate promise ends the scout as preempted. */
  readonly duplicatePreempts?: boolean
}

/** The scout's fiber: sends, resends and asks for pages until the tally ends. Requires `Transport`. */
export const run = Effect.fnUntraced(function* (options: Options) {
  const scout = new ScoutTally(
    options.ballot,
    options.acceptors,
    options.from,
    options.duplicatePreempts,
    options.configs ?? [options.acceptors],
    options.until,
    options.before
  )
  // Acceptors that sent a page since the last resend: each is asked for its next page as
  // that one arrives, so the resend leaves them out. Resent every period, a page in
  // flight was asked for twice, built, sent and decoded twice: a tail of thousands of
  // slots (a restarted replica's, read again while writes go on) pages for a second or
  // more, one wasted page per acceptor per period, more the slower each page comes.
  const paging = new Set<string>()
  const asked = new Set(options.first ?? options.acceptors)
  const sendTo = yield* Phase.broadcast({
    leader: options.leader,
    acceptors: [...asked],
    tally: scout.tally,
    retransmitMs: options.retransmitMs,
    message: (a) => scout.p1a(a),
    resendTo: () => {
      const missing = scout.tally.missing()
      if (asked.size < options.acceptors.length && missing.some((a) => asked.has(a) && !paging.has(a))) {
        // one asked first sent nothing for a whole period: every acceptor is asked now
        for (const a of options.acceptors) asked.add(a)
      }
      const due = missing.filter((a) => asked.has(a) && !paging.has(a))
      paging.clear()
      return due
    }
  })
  for (;;) {
    const env = yield* Queue.take(options.inbox)
    if (env.message._tag !== "P1b") continue
    const step = scout.p1b(Address.id(env.from), env.message)
    if (step._tag === "Continue") continue
    if (step._tag === "NextPage") {
      paging.add(step.acceptor)
      yield* sendTo([step.acceptor])
    } else return step
  }
})

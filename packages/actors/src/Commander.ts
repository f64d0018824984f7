/**
 * The commander: phase 2 for one (ballot, slot, value). Its decisions are a pure tally
 * (`CommanderTally`): a P2b in, `Continue | Decided | Preempted` out. Its fiber, a child
 * of the leader's host, sends P2a to every acceptor, resends to those that have not
 * answered on a schedule, sends the decision to every replica once a majority accepted
 * (as a `Chosen` without the value to a replica whose server's acceptor voted for it;
 * with `deferChosen` it leaves those and the replicas beside acceptors yet to vote to its
 * leader), and returns the outcome (docs/protocol.md#commander).
 *
 * - A P2b counts only when the acceptor's ballot and the echoed request both equal its
 *   own ballot, the slot matches and the acceptor has not forgotten the slot (B3).
 * - A higher ballot in any reply ends it preempted; lower ballots are ignored (B5);
 *   duplicates count once (B6).
 * - The pvalue is fixed when it is spawned: it never reads its leader's later ballot (C1/C2).
 *
 * @since 0.1.0
 */
import { Address, Ballot, type Command, type Message, Quorum, Trace, Transport, Trusted } from "@synod/core"
import { Effect, Queue, type Tracer } from "effect"
import * as Phase from "./internal/Phase.ts"
import type { Probe } from "./internal/Probe.ts"

export type Outcome =
  | {
      readonly _tag: "Decided"
      readonly ballot: Ballot.Ballot
      readonly slot: number
      readonly value: Command.SlotValue
      /**
       * With `deferChosen`: the replicas owed a `Chosen` it did not send, for its leader to
       * send with its next round or heartbeat (docs/protocol.md#commander).
       */
      readonly owed?: ReadonlyArray<string>
      /**
       * With `deferChosen`: the replicas beside acceptors that have not voted yet, sent
       * nothing: its leader sends each a `Chosen` once that acceptor's vote comes, or else
       * the `Decision` (docs/protocol.md#commander).
       */
      readonly awaiting?: ReadonlyArray<string>
      /** Tracing: the decision's span (`synod.decision`), which the owed `Chosen` continue. */
      readonly span?: Tracer.AnySpan
    }
  | { readonly _tag: "Preempted"; readonly ballot: Ballot.Ballot; readonly by: Ballot.Ballot }

export type Step = { readonly _tag: "Continue" } | { readonly _tag: "Voted"; readonly acceptor: string } | Outcome

const continue_: Step = { _tag: "Continue" }

/** Is `reply` an acceptance of exactly (ballot, slot)? (Not if the acceptor forgot the slot.) */
export const isAcceptance = (reply: Message.P2b, ballot: Ballot.Ballot, slot: number): boolean =>
  reply.slot === slot &&
  Ballot.equals(reply.ballot, ballot) &&
  Ballot.equals(reply.request, ballot) &&
  (reply.watermark === undefined || slot >= reply.watermark)

/** A `Chosen` its leader owes a replica (`Options.deferChosen`), and the decision's span it continues. */
export interface Owed {
  readonly replica: string
  readonly chosen: Message.Chosen
  readonly span?: Tracer.AnySpan | undefined
}

/** The planted bugs a commander can carry (internal/PlantedBugs.ts), by the same names. */
export interface Bugs {
  /** B3: count any P2b whose current ballot equals ours, whatever request it answers. */
  readonly p2bBySlotOnly?: boolean
  /** B4: the ballot to send is the leader's current one, read at each (re)send; never give up. */
  readonly staleChildren?: { readonly currentBallot: () => Ballot.Ballot }
  /** B5: any other ballot ends the commander as preempted. */
  readonly strictAccept?: boolean
  /** B6: a duplicate acceptance ends the commander as preempted. */
  readonly duplicatePreempts?: boolean
}

/** Phase 2 of one (ballot, slot, value), without I/O. */
export class CommanderTally {
  readonly slot: number
  readonly value: Command.SlotValue
  readonly tally: Quorum.Tally
  private readonly spawnedWith: Ballot.Ballot
  private readonly bugs: Bugs

  constructor(
    ballot: Ballot.Ballot,
    slot: number,
    value: Command.SlotValue,
    acceptors: ReadonlyArray<string>,
    bugs: Bugs = {}
  ) {
    this.spawnedWith = ballot
    this.slot = slot
    this.value = value
    this.tally = Quorum.make(acceptors)
    this.bugs = bugs
  }

  /** The ballot it sends and counts: its own, or (B4) the leader's current one. */
  get ballot(): Ballot.Ballot {
    return this.bugs.staleChildren?.currentBallot() ?? this.spawnedWith
  }

  p2a(): Message.P2a {
    return Trusted.p2a(this.ballot, this.slot, this.value)
  }

  /** A P2b from `acceptor`. A B4 commander reports preemption as `Preempted` but keeps going. */
  p2b(acceptor: string, msg: Message.P2b): Step {
    if (msg.slot !== this.slot) return continue_
    const ballot = this.ballot
    const counts = this.bugs.p2bBySlotOnly ? Ballot.equals(msg.ballot, ballot) : isAcceptance(msg, ballot, this.slot)
    if (counts) {
      if (!this.tally.isMember(acceptor)) return continue_
      if (this.tally.has(acceptor)) {
        return this.bugs.duplicatePreempts ? { _tag: "Preempted", ballot, by: ballot } : continue_
      }
      if (!this.tally.add(acceptor)) return { _tag: "Voted", acceptor }
      return { _tag: "Decided", ballot, slot: this.slot, value: this.value }
    }
    if (Ballot.greaterThan(msg.ballot, ballot) || (this.bugs.strictAccept && !Ballot.equals(msg.ballot, ballot))) {
      return { _tag: "Preempted", ballot, by: msg.ballot }
    }
    return continue_
  }
}

export interface Options {
  readonly leader: Address.Address
  readonly ballot: Ballot.Ballot
  readonly slot: number
  readonly value: Command.SlotValue
  readonly acceptors: ReadonlyArray<string>
  readonly replicas: ReadonlyArray<string>
  /** Learners get each decision too (docs/adding-a-role.md). */
  readonly learners?: ReadonlyArray<string>
  /**
   * Leave the `Chosen` of the replicas beside voting acceptors other than its own
   * server's to its leader (`Decided.owed`), which sends them later, with the next
   * round's P2a: a follower then wakes once per slot instead of twice.
   */
  readonly deferChosen?: boolean
  /** `Chosen` its leader owed from earlier slots, each with its decision's span: sent right after its P2a. */
  readonly piggyback?: ReadonlyArray<Owed>
  readonly inbox: Queue.Dequeue<Message.Envelope>
  readonly retransmitMs: number
  readonly probe: Probe | undefined
  readonly bugs?: Bugs
  /** B4: how the never-ending commander still tells its leader it was preempted. */
  readonly reportPreempted?: (by: Ballot.Ballot) => void
  /**
   * Tracing: the commander's span (its P2a messages carry it) and how to make the
   * decision's (`synod.decision`, its child, carried by the Decision messages).
   */
  readonly trace?: { readonly span: Tracer.Span; readonly spans: Trace.Spans } | undefined
}

/** The commander's fiber: sends and resends until the tally ends. Requires `Transport`. */
export const run = Effect.fnUntraced(function* (options: Options) {
  const transport = yield* Transport.Transport
  const { leader, probe } = options
  const me = Address.id(leader)
  const commander = new CommanderTally(options.ballot, options.slot, options.value, options.acceptors, options.bugs)
  yield* Phase.broadcast({
    leader,
    acceptors: options.acceptors,
    tally: commander.tally,
    retransmitMs: options.retransmitMs,
    backoff: true,
    span: options.trace?.span,
    message: () => {
      const p2a = commander.p2a()
      probe?.p2aSent(me, p2a.ballot, p2a.slot, p2a.value)
      return p2a
    }
  })
  // after the P2a: a follower steps its acceptor before its replica performs older slots
  for (const { replica, chosen, span } of options.piggyback ?? []) {
    const to = Address.replica(replica)
    const envelope = Trusted.envelope(leader, to, chosen)
    if (span !== undefined) Trace.attach(envelope, span)
    yield* transport.send(to, envelope)
  }
  for (;;) {
    const env = yield* Queue.take(options.inbox)
    if (env.message._tag !== "P2b") continue
    const from = Address.id(env.from)
    const step = commander.p2b(from, env.message)
    switch (step._tag) {
      case "Continue":
        continue
      case "Voted":
        probe?.voteCounted(me, from, commander.ballot, commander.slot)
        continue
      case "Preempted":
        if (options.bugs?.staleChildren !== undefined) {
          options.reportPreempted?.(step.by)
          continue
        }
        return step
      case "Decided": {
        probe?.voteCounted(me, from, step.ballot, step.slot)
        probe?.decided(me, step.ballot, step.slot, step.value)
        const decision = Trusted.decision(step.slot, step.value, step.ballot)
        // a replica whose server's acceptor voted takes the value from it (`Chosen`)
        const chosen = Trusted.chosen(step.slot, step.ballot)
        const trace = options.trace
        const span =
          trace === undefined
            ? undefined
            : trace.spans.start("synod.decision", trace.span, {
                "synod.slot": step.slot,
                "synod.ballot": `${step.ballot}`
              })
        const send = (to: Address.Address, message: Message.Decision | Message.Chosen) => {
          const envelope = Trusted.envelope(leader, to, message)
          if (span !== undefined) Trace.attach(envelope, span)
          return transport.send(to, envelope)
        }
        const owed: Array<string> = []
        const awaiting: Array<string> = []
        for (const id of options.replicas) {
          if (commander.tally.has(id)) {
            if (options.deferChosen && id !== me) owed.push(id)
            else yield* send(Address.replica(id), chosen)
          } else if (options.deferChosen && id !== me && commander.tally.isMember(id)) {
            // its acceptor has the P2a and will most likely vote in a moment: a Chosen
            // then, not the whole batch again now (the slower follower decoded every
            // batch twice, and nats-server carried it three times from the leader)
            awaiting.push(id)
          } else yield* send(Address.replica(id), decision)
        }
        for (const id of options.learners ?? []) yield* send(Address.learner(id), decision)
        if (span !== undefined) trace!.spans.end(span)
        if (owed.length === 0 && awaiting.length === 0) return step
        return {
          ...step,
          ...(owed.length === 0 ? {} : { owed }),
          ...(awaiting.length === 0 ? {} : { awaiting }),
          ...(span === undefined ? {} : { span })
        }
      }
    }
  }
})

/**
 * The commander: phase 2 for one (ballot, slot, value), a child fiber of its leader. It
 * sends P2a to every acceptor, resends to those that have not answered on a schedule,
 * and counts a P2b only when the acceptor's ballot and the echoed request both equal its
 * own ballot and the slot matches (B3). With a majority it sends the decision to every
 * replica and ends `decided`; a higher ballot in any reply ends it `preempted`; lower
 * ballots are ignored (B5) and duplicates count once (B6).
 *
 * The pvalue is fixed when the commander is spawned (C1/C2: it never reads its leader's
 * later ballot).
 *
 * @since 0.1.0
 */
import { Address, Ballot, type Command, Message, Quorum, Transport } from "@synod/core"
import { Effect, Queue } from "effect"
import * as Phase from "./internal/Phase.ts"
import type { Probe } from "./internal/Probe.ts"

export type Outcome =
  | {
      readonly _tag: "Decided"
      readonly ballot: Ballot.Ballot
      readonly slot: number
      readonly value: Command.SlotValue
    }
  | { readonly _tag: "Preempted"; readonly ballot: Ballot.Ballot; readonly by: Ballot.Ballot }

export interface Options {
  readonly leader: Address.Address
  readonly ballot: Ballot.Ballot
  readonly slot: number
  readonly value: Command.SlotValue
  readonly acceptors: ReadonlyArray<string>
  readonly replicas: ReadonlyArray<string>
  readonly inbox: Queue.Dequeue<Message.Envelope>
  readonly retransmitMs: number
  readonly probe: Probe | undefined
  /** Planted bugs, see internal/PlantedBugs.ts. */
  readonly bugs?: {
    /** B3: count any P2b whose current ballot equals ours, whatever request it answers. */
    readonly ignoreRequest?: boolean
    /** B4: read the ballot to send from the leader at each (re)send, and never give up. */
    readonly currentBallot?: () => Ballot.Ballot
    /** B4: how the never-ending commander still tells its leader it was preempted. */
    readonly reportPreempted?: (by: Ballot.Ballot) => void
    /** B5: any other ballot ends the commander as preempted. */
    readonly strict?: boolean
    /** B6: a duplicate acceptance ends the commander as preempted. */
    readonly duplicatePreempts?: boolean
  }
}

/** Is `reply` an acceptance of exactly (ballot, slot)? (Not if the acceptor forgot the slot.) */
export const isAcceptance = (reply: Message.P2b, ballot: Ballot.Ballot, slot: number): boolean =>
  reply.slot === slot &&
  Ballot.equals(reply.ballot, ballot) &&
  Ballot.equals(reply.request, ballot) &&
  (reply.watermark === undefined || slot >= reply.watermark)

export const run = Effect.fnUntraced(function* (options: Options) {
  const transport = yield* Transport.Transport
  const { leader, slot, value, probe } = options
  const bugs = options.bugs ?? {}
  const ballotNow = bugs.currentBallot ?? (() => options.ballot)
  const tally = Quorum.make(options.acceptors)
  yield* Phase.broadcast({
    leader,
    acceptors: options.acceptors,
    tally,
    retransmitMs: options.retransmitMs,
    message: () => {
      const ballot = ballotNow()
      probe?.p2aSent(Address.id(leader), ballot, slot, value)
      return new Message.P2a({ ballot, slot, value })
    }
  })
  for (;;) {
    const env = yield* Queue.take(options.inbox)
    const msg = env.message
    if (msg._tag !== "P2b" || msg.slot !== slot) continue
    const ballot = ballotNow()
    const counts = bugs.ignoreRequest ? Ballot.equals(msg.ballot, ballot) : isAcceptance(msg, ballot, slot)
    if (counts) {
      const from = Address.id(env.from)
      if (tally.has(from)) {
        if (bugs.duplicatePreempts) return { _tag: "Preempted", ballot, by: ballot } satisfies Outcome
        continue
      }
      probe?.voteCounted(Address.id(leader), from, ballot, slot)
      if (tally.add(from)) {
        probe?.decided(Address.id(leader), ballot, slot, value)
        const decision = new Message.Decision({ slot, value, ballot })
        for (const r of options.replicas) {
          const to = Address.replica(r)
          yield* transport.send(to, new Message.Envelope({ from: leader, to, message: decision }))
        }
        return { _tag: "Decided", ballot, slot, value } satisfies Outcome
      }
    } else if (Ballot.greaterThan(msg.ballot, ballot) || (bugs.strict && !Ballot.equals(msg.ballot, ballot))) {
      if (bugs.currentBallot === undefined) return { _tag: "Preempted", ballot, by: msg.ballot } satisfies Outcome
      bugs.reportPreempted?.(msg.ballot)
    }
  }
})

/**
 * The scout: phase 1 for one ballot, a child fiber of its leader. It sends P1a to every
 * acceptor, resends to those that have not answered on a schedule, and merges the
 * pvalues of every promise for its ballot (per slot, highest ballot: pmax). An acceptor
 * answers in pages by slot range (`P1b.next`); the scout asks for each next page at once
 * and counts the acceptor only when its last page arrived. It ends with `adopted` once a
 * majority promised and sent every page (with the highest GC watermark they reported), or
 * `preempted` as soon as one acceptor reports a higher ballot. Replies with a lower ballot
 * are ignored; duplicates count once (B6).
 *
 * The leader routes P1b to the scout by the ballot they echo; the scout never sees
 * another ballot's replies.
 *
 * @since 0.1.0
 */
import { Address, Ballot, type Command, Message, Quorum } from "@synod/core"
import { Effect, Queue } from "effect"
import * as Phase from "./internal/Phase.ts"

export type Outcome =
  | {
      readonly _tag: "Adopted"
      readonly ballot: Ballot.Ballot
      readonly pvalues: ReadonlyMap<number, Command.PValue>
      /** The highest GC watermark the promising acceptors reported: nothing may be proposed below it. */
      readonly watermark: number
    }
  | { readonly _tag: "Preempted"; readonly ballot: Ballot.Ballot; readonly by: Ballot.Ballot }

export interface Options {
  readonly leader: Address.Address
  readonly ballot: Ballot.Ballot
  /** The leader's watermark: acceptors report only pvalues for slots from here on. */
  readonly from?: number
  readonly acceptors: ReadonlyArray<string>
  readonly inbox: Queue.Dequeue<Message.Envelope>
  readonly retransmitMs: number
  /** B6 planted bug: a duplicate promise ends the scout as preempted. */
  readonly duplicatePreempts?: boolean
}

/** Merges `pvalues` into `into`, keeping per slot the pvalue with the highest ballot. */
export const mergePmax = (into: Map<number, Command.PValue>, pvalues: Iterable<Command.PValue>): void => {
  for (const pv of pvalues) {
    const old = into.get(pv.slot)
    if (old === undefined || Ballot.greaterThan(pv.ballot, old.ballot)) into.set(pv.slot, pv)
  }
}

export const run = Effect.fnUntraced(function* (options: Options) {
  const { ballot, leader } = options
  const tally = Quorum.make(options.acceptors)
  const pvalues = new Map<number, Command.PValue>()
  let watermark = 1
  const first = Math.max(1, options.from ?? 1)
  /** Per acceptor, the slot its next P1b page starts at. */
  const cursor = new Map<string, number>(options.acceptors.map((a) => [a, first]))
  const p1a = (acceptor: string) => {
    const from = cursor.get(acceptor) ?? first
    return new Message.P1a(from <= 1 ? { ballot } : { ballot, from })
  }
  const sendTo = yield* Phase.broadcast({
    leader,
    acceptors: options.acceptors,
    tally,
    retransmitMs: options.retransmitMs,
    message: p1a
  })
  for (;;) {
    const env = yield* Queue.take(options.inbox)
    const msg = env.message
    if (msg._tag !== "P1b") continue
    if (Ballot.equals(msg.ballot, ballot)) {
      const from = Address.id(env.from)
      if (tally.has(from)) {
        if (options.duplicatePreempts) return { _tag: "Preempted", ballot, by: ballot } satisfies Outcome
        continue
      }
      // only the page asked for: a duplicate or a late answer to an earlier page adds nothing
      const at = cursor.get(from)
      if (at === undefined || (msg.from ?? 1) !== at) continue
      mergePmax(pvalues, msg.accepted)
      if (msg.watermark !== undefined && msg.watermark > watermark) watermark = msg.watermark
      if (msg.next !== undefined) {
        if (msg.next <= at) continue // a page that does not advance: ignore it, the resend asks again
        cursor.set(from, msg.next)
        yield* sendTo([from])
        continue
      }
      if (tally.add(from)) return { _tag: "Adopted", ballot, pvalues, watermark } satisfies Outcome
    } else if (Ballot.greaterThan(msg.ballot, ballot)) {
      return { _tag: "Preempted", ballot, by: msg.ballot } satisfies Outcome
    }
  }
})

/**
 * The acceptor: Paxos's memory. It promises not to accept ballots below its promise and
 * remembers, per slot, the highest-ballot pvalue it accepted (state reduction, PROTOCOL.md
 * §2.3).
 *
 * Rules (PROTOCOL.md §1.4): on P1a it raises its promise to a higher ballot; on P2a it
 * accepts when the ballot is **at least** its promise and adopts it (the `>=` variant: an
 * acceptor that missed a P1a can still vote, B5). Every reply carries its current promise
 * and echoes the request, so the leader can route it and detect preemption.
 *
 * The fiber drains its whole mailbox at once, makes the batch's changes durable with one
 * append (group commit), and only then replies (B2).
 *
 * @since 0.1.0
 */
import {
  Address,
  Ballot,
  type ClusterConfig,
  type Command,
  Command as Cmd,
  Message,
  Storage,
  Transport
} from "@synod/core"
import { Clock, Effect, Metric, Queue } from "effect"
import { PlantedBugs } from "./internal/PlantedBugs.ts"
import { Probe } from "./internal/Probe.ts"
import * as Metrics from "./Metrics.ts"

/** The acceptor's decisions, without I/O. Mutable: one instance per running acceptor. */
export class AcceptorCore {
  promised: Ballot.Ballot
  readonly accepted: Map<number, Command.PValue>
  /** B5 planted bug: accept only when the ballot equals the promise. */
  private readonly strict: boolean
  /** How long an accept from the current leader protects it from other leaders' scouts (ms; 0: off). */
  private readonly leaseMs: number
  private readonly now: () => number
  /** When this acceptor last accepted a P2a under its current promise. */
  private lastAccept = Number.NEGATIVE_INFINITY

  constructor(
    state: Storage.AcceptorState,
    options: { readonly strictAccept?: boolean; readonly leaseMs?: number; readonly now?: () => number } = {}
  ) {
    this.promised = state.promised
    this.accepted = new Map(state.accepted)
    this.strict = options.strictAccept === true
    this.leaseMs = options.leaseMs ?? 0
    this.now = options.now ?? (() => 0)
  }

  /**
   * Handles a P1a; the P1b to send back. A higher ballot of *another* leader is not
   * promised while the current leader has had a P2a accepted within the lease: a leader
   * coming back from a long isolation must not depose a working one (B15). The refusal
   * answers with the current promise, which the scout ignores as lower and retries later.
   * Refusing a promise is always safe; it only delays a scout by at most the lease.
   */
  p1a(ballot: Ballot.Ballot, from = 1): Message.P1b {
    const leased = ballot.leader !== this.promised.leader && this.now() - this.lastAccept < this.leaseMs
    if (Ballot.greaterThan(ballot, this.promised) && !leased) this.promised = ballot
    const accepted: Array<Command.PValue> = []
    for (const pv of this.accepted.values()) if (pv.slot >= from) accepted.push(pv)
    return new Message.P1b({ ballot: this.promised, request: ballot, accepted })
  }

  /** Handles a P2a; the P2b to send back and the pvalue accepted, if any. */
  p2a(msg: Message.P2a): { readonly reply: Message.P2b; readonly accepted: Command.PValue | undefined } {
    const ok = this.strict ? Ballot.equals(msg.ballot, this.promised) : !Ballot.lessThan(msg.ballot, this.promised)
    let accepted: Command.PValue | undefined
    if (ok) {
      this.promised = msg.ballot
      this.lastAccept = this.now()
      accepted = new Cmd.PValue({ ballot: msg.ballot, slot: msg.slot, value: msg.value })
      this.accepted.set(msg.slot, accepted)
    }
    return { reply: new Message.P2b({ ballot: this.promised, request: msg.ballot, slot: msg.slot }), accepted }
  }
}

export interface Status {
  readonly id: string
  readonly promised: Ballot.Ballot
  /** Slots with an accepted pvalue. */
  readonly accepted: number
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
  probe?.acceptorLoaded(id, loaded.promised, loaded.accepted)
  const clock = yield* Clock.Clock
  const core = new AcceptorCore(loaded, {
    strictAccept: bugs.strictAccept,
    leaseMs: config.timeouts.leaderTimeoutMs,
    now: () => clock.currentTimeMillisUnsafe()
  })
  const mailbox = yield* transport.listen(self)
  const promisedRound = Metrics.of(Metrics.promisedRound, id)
  yield* Metric.update(promisedRound, core.promised.round)

  const handleBatch = Effect.fnUntraced(function* (batch: ReadonlyArray<Message.Envelope>) {
    const before = core.promised
    // each reply with the pvalue it reports accepted (for the probe), captured when handled:
    // a later P2a of the same batch may replace that slot's pvalue
    const replies: Array<readonly [Address.Address, Message.P1b | Message.P2b, Command.PValue | undefined]> = []
    const accepted: Array<Command.PValue> = []
    for (const env of batch) {
      const msg = env.message
      if (msg._tag === "P1a") {
        replies.push([env.from, core.p1a(msg.ballot, msg.from), undefined])
      } else if (msg._tag === "P2a") {
        const r = core.p2a(msg)
        if (r.accepted !== undefined) accepted.push(r.accepted)
        replies.push([env.from, r.reply, r.accepted])
      }
    }
    const dirty = accepted.length > 0 || !Ballot.equals(before, core.promised)
    const record = { promised: core.promised, accepted }
    if (dirty && !bugs.replyBeforeDurable) yield* store.append(record)
    for (const [to, reply, pv] of replies) {
      if (probe !== undefined) {
        probe.acceptorPromised(id, reply.ballot)
        if (pv !== undefined) probe.acceptorAccepted(id, pv)
      }
      yield* transport.send(to, new Message.Envelope({ from: self, to, message: reply }))
    }
    if (dirty && bugs.replyBeforeDurable) yield* store.append(record)
    if (!Ballot.equals(before, core.promised)) yield* Metric.update(promisedRound, core.promised.round)
  })

  yield* Queue.takeAll(mailbox).pipe(
    Effect.flatMap(handleBatch),
    Effect.forever,
    Effect.tapCause((cause) => Effect.logError("acceptor stopped", cause)),
    Effect.annotateLogs({ role: "acceptor", id }),
    Effect.orDie,
    Effect.forkScoped
  )
  return {
    status: Effect.sync((): Status => ({ id, promised: core.promised, accepted: core.accepted.size }))
  }
})

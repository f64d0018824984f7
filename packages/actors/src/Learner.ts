/**
 * The learner: follows the decisions in slot order without voting, proposing commands or
 * applying them — a read-only copy of the log for whoever wants to watch it (an audit
 * trail, a change feed, a dashboard). It is the worked example of docs/adding-a-role.md:
 * one core, one line of hosting in `Server.ts`, one test file.
 *
 * - Commanders send every decision to the learners of the configuration as well as to
 *   the replicas. Decisions may arrive in any order and more than once; the learner
 *   reports each slot once, in order (`Learned`).
 * - The active leader's heartbeats say how far slots are decided. On its timer the
 *   learner asks the leaders for a slot it is missing the way a replica does: with a
 *   no-op proposal, which a leader that knows the decision answers with it (and which
 *   can only ever be decided if nothing else was, so it changes nothing that was chosen).
 * - Below the acceptors' GC watermark decisions are gone; a learner that falls that far
 *   behind skips to the watermark and says so (`Skipped`) — it has no state to transfer.
 *
 * @since 0.2.0
 */
import { Address, type ClusterConfig, type Command, Command as Cmd, Message } from "@synod/core"
import { Effect } from "effect"
import * as Host from "./internal/Host.ts"

/** What the learner is fed: a message of its inbound union, or its timer. */
export type Input =
  | { readonly _tag: "Message"; readonly from: Address.Address; readonly message: Message.LearnerInbound }
  | { readonly _tag: "Tick" }

/** What observers learn: the log, in slot order. */
export type Event =
  | { readonly _tag: "Learned"; readonly slot: number; readonly value: Command.SlotValue }
  | { readonly _tag: "Skipped"; readonly from: number; readonly to: number }

/** The learner's decisions, without I/O. */
export class LearnerCore {
  readonly out = new Host.Outbox<never, never, Event>()
  /** Every slot below this one was learned (or skipped). */
  slotOut = 1
  /** The highest slot known to be decided, from heartbeats. */
  knownMax = 0
  /** Decisions that arrived ahead of `slotOut`. */
  private readonly ahead = new Map<number, Command.SlotValue>()
  private leader: Address.Address | undefined
  private readonly leaders: ReadonlyArray<Address.Address>
  private readonly window: number

  constructor(config: ClusterConfig.ClusterConfig) {
    this.leaders = config.leaders.map(Address.leader)
    this.window = config.window
  }

  step(input: Input) {
    if (input._tag === "Tick") return this.tick()
    const msg = input.message
    switch (msg._tag) {
      case "Decision":
        return this.decision(msg.slot, msg.value)
      case "Heartbeat":
        return this.heartbeat(msg)
    }
  }

  private decision(slot: number, value: Command.SlotValue) {
    if (slot > this.knownMax) this.knownMax = slot
    if (slot < this.slotOut) return
    this.ahead.set(slot, value)
    for (let v = this.ahead.get(this.slotOut); v !== undefined; v = this.ahead.get(this.slotOut)) {
      this.ahead.delete(this.slotOut)
      this.out.event({ _tag: "Learned", slot: this.slotOut, value: v })
      this.slotOut++
    }
  }

  private heartbeat(hb: Message.Heartbeat) {
    if (hb.slot > this.knownMax) this.knownMax = hb.slot
    if (hb.active) this.leader = Address.leader(hb.ballot.leader)
    if (hb.watermark > this.slotOut) {
      // those decisions are forgotten everywhere: nothing to learn there any more
      this.out.event({ _tag: "Skipped", from: this.slotOut, to: hb.watermark })
      for (const slot of this.ahead.keys()) if (slot < hb.watermark) this.ahead.delete(slot)
      this.slotOut = hb.watermark
      this.decision(this.slotOut, this.ahead.get(this.slotOut) ?? Cmd.noop)
    }
  }

  /** Asks for the slots it misses, a window at a time (a leader that knows one answers with it). */
  private tick() {
    const top = Math.min(this.knownMax, this.slotOut + this.window - 1)
    const to = this.leader === undefined ? this.leaders : [this.leader]
    for (let slot = this.slotOut; slot <= top; slot++) {
      if (this.ahead.has(slot)) continue
      const ask = new Message.Propose({ slot, value: Cmd.noop })
      for (const leader of to) this.out.send(leader, ask)
    }
  }
}

const isInbound = (m: Message.Message): m is Message.LearnerInbound => m._tag === "Decision" || m._tag === "Heartbeat"

/**
 * Runs learner `id` until the scope closes; `onLearned` sees each decision once, in slot
 * order. Answers where it stands. Requires `Transport`.
 */
export const run = Effect.fn("Learner.run")(function* (
  id: string,
  config: ClusterConfig.ClusterConfig,
  onLearned: (slot: number, value: Command.SlotValue) => void = () => {}
) {
  const self = Address.learner(id)
  const core = new LearnerCore(config)
  yield* Host.run({
    self,
    core,
    accepts: isInbound,
    message: (from, message): Input => ({ _tag: "Message", from, message }),
    tick: { everyMs: config.timeouts.retransmitMs, input: { _tag: "Tick" } },
    observe: (events) =>
      Effect.forEach(
        events,
        (e) =>
          e._tag === "Learned"
            ? Effect.sync(() => onLearned(e.slot, e.value))
            : Effect.logWarning("behind the GC watermark: skipped slots", { from: e.from, to: e.to }),
        { discard: true }
      )
  }).pipe(Effect.annotateLogs({ role: "learner", id }))
  return { status: Effect.sync(() => ({ id, slotOut: core.slotOut })) }
})

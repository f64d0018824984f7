/**
 * The leader: turns replicas' proposals into decisions. It owns at most one scout and one
 * commander per (ballot, slot), as child fibers it interrupts when preempted (DESIGN.md).
 *
 * - Passive, it records proposals and watches the active leader (`Liveness`); when that
 *   one seems dead or stuck it picks a ballot above every ballot it has seen, stores the
 *   round durably, and only then starts a scout with it (B1).
 * - Adopted, it overrides its proposals with the acceptors' pvalues (`update`, pmax ◁),
 *   fills every hole below the highest known slot with a no-op (B10), spawns a commander
 *   per undecided slot, and from then on skips phase 1 for new slots.
 * - Preempted by a higher ballot, it interrupts every child and goes back to watching.
 *   Adopted/Preempted reports that do not match its current ballot are ignored (B4).
 * - A proposal for a slot it has seen decided is answered with the decision: that is how
 *   a replica that missed a decision recovers it.
 * - Below the acceptors' GC watermark (learned from P1b, P2b and the active leader's
 *   heartbeats) it proposes nothing and remembers nothing: those slots are decided and
 *   enough replicas hold them durably (B11).
 *
 * P1b and P2b arrive on the leader's own address and are routed in-process to the child
 * whose ballot (and slot) they echo.
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
  Monotonic,
  Quorum,
  Storage,
  Transport
} from "@synod/core"
import { Effect, Fiber, FiberHandle, FiberSet, Metric, Queue, Random, Schedule } from "effect"
import * as Commander from "./Commander.ts"
import { PlantedBugs } from "./internal/PlantedBugs.ts"
import { Probe } from "./internal/Probe.ts"
import { Liveness } from "./Liveness.ts"
import * as Metrics from "./Metrics.ts"
import * as Scout from "./Scout.ts"

/**
 * The update operator `proposals ◁ pmax(pvalues)`: the acceptors' reported value wins in
 * every slot they report; the leader's own proposals stand elsewhere (PROTOCOL.md §1.7).
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

type Event =
  | { readonly _tag: "Message"; readonly envelope: Message.Envelope }
  | { readonly _tag: "Tick" }
  | Scout.Outcome
  | Commander.Outcome

const key = (ballot: Ballot.Ballot, slot: number) => `${ballot.round}.${ballot.leader}|${slot}`

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

/** Runs leader `id` until the scope closes; answers its status. Requires `Transport` and `Storage`. */
export const run = Effect.fn("Leader.run")(function* (id: string, config: ClusterConfig.ClusterConfig) {
  const transport = yield* Transport.Transport
  const storage = yield* Storage.Storage
  const bugs = yield* PlantedBugs
  const probe = yield* Probe
  const now = yield* Monotonic.Monotonic
  const rng = yield* Random.Random
  const self = Address.leader(id)
  const store = yield* storage.leader(id)
  const { retransmitMs, heartbeatMs } = config.timeouts

  /** The highest ballot this leader has used (or would have used: its stored round). */
  let ballot = Ballot.make(bugs.ballotReuse ? 0 : yield* store.loadRound, id)
  let active = false
  let highestSeen = Ballot.bottom
  const proposals = new Map<number, Command.SlotValue>()
  const decided = new Map<number, Message.Decision>()
  let decidedCount = 0
  let maxDecided = 0
  /**
   * The GC watermark, as the acceptors report it (in P1b and P2b, or through the active
   * leader's heartbeats): acceptors forgot every slot below it, and enough replicas hold
   * those slots durably that none will need their decisions again. The leader proposes
   * nothing there (B11), asks acceptors for nothing there, stops its commanders there and
   * forgets its own proposals and decisions there. Skipping slots is always safe.
   */
  let watermark = 1
  const raiseWatermark = Effect.fnUntraced(function* (w: number) {
    if (w <= watermark) return
    watermark = w
    for (const slot of proposals.keys()) if (slot < watermark) proposals.delete(slot)
    for (const slot of decided.keys()) if (slot < watermark) decided.delete(slot)
    const stale: Array<Fiber.Fiber<unknown, unknown>> = []
    for (const c of commanders.values()) if (c.slot < watermark && c.fiber !== undefined) stale.push(c.fiber)
    if (stale.length > 0) yield* Fiber.interruptAll(stale)
  })
  const liveness = new Liveness(
    {
      initialMs: config.timeouts.leaderTimeoutMs,
      maxMs: config.timeouts.maxLeaderTimeoutMs,
      // long enough to hear a working leader's heartbeats before competing with it
      listenMs: 2 * heartbeatMs
    },
    now(),
    () => rng.nextDoubleUnsafe(),
    config.leaders[0] === id
  )
  /** The ballot this leader last stepped down from: its children's later reports of the same preemption change nothing. */
  let steppedDownFrom: Ballot.Ballot | undefined
  /** When each acceptor last answered this leader (any P1b or P2b): an active leader that hears no majority steps down. */
  const heardAt = new Map<string, number>()
  /** Since when commanders have been running without a break: the abdication clock starts there. */
  let busySince = 0
  /**
   * Slots an adoption found to re-propose, in slot order: spawned a window at a time as
   * commanders finish, so a new leader does not send hundreds of P2a at once.
   */
  let backlog: Array<readonly [number, Command.SlotValue]> = []

  const metrics = {
    round: Metrics.of(Metrics.ballotRound, id),
    active: Metrics.of(Metrics.leaderActive, id),
    preemptions: Metrics.of(Metrics.preemptions, id)
  }
  yield* Metric.update(metrics.round, ballot.round)
  yield* Metric.update(metrics.active, 0)
  const events = yield* Queue.unbounded<Event>()
  const scoutFiber = yield* FiberHandle.make()
  const commanderFibers = yield* FiberSet.make()
  let scout: { readonly ballot: Ballot.Ballot; readonly inbox: Queue.Queue<Message.Envelope> } | undefined
  const commanders = new Map<
    string,
    { readonly inbox: Queue.Queue<Message.Envelope>; readonly slot: number; fiber?: Fiber.Fiber<unknown, unknown> }
  >()
  const bySlot = new Map<number, Queue.Queue<Message.Envelope>>() // for the B3 planted bug only

  const send = (to: Address.Address, message: Message.Message) =>
    transport.send(to, new Message.Envelope({ from: self, to, message }))

  const spawnCommander = Effect.fnUntraced(function* (slot: number, value: Command.SlotValue) {
    const k = key(ballot, slot)
    if (commanders.has(k)) return // C1: one commander per (ballot, slot)
    if (commanders.size === 0) busySince = now()
    const inbox = yield* Queue.unbounded<Message.Envelope>()
    const spawnedAt = ballot
    const entry: { inbox: Queue.Queue<Message.Envelope>; slot: number; fiber?: Fiber.Fiber<unknown, unknown> } = {
      inbox,
      slot
    }
    commanders.set(k, entry)
    bySlot.set(slot, inbox)
    const options: Commander.Options = {
      leader: self,
      ballot,
      slot,
      value,
      acceptors: config.acceptors,
      replicas: config.replicas,
      inbox,
      retransmitMs,
      probe,
      bugs: {
        ignoreRequest: bugs.p2bBySlotOnly,
        strict: bugs.strictAccept,
        duplicatePreempts: bugs.duplicatePreempts,
        ...(bugs.staleChildren
          ? {
              currentBallot: () => ballot,
              reportPreempted: (by: Ballot.Ballot) =>
                Queue.offerUnsafe(events, { _tag: "Preempted", ballot: spawnedAt, by })
            }
          : {})
      }
    }
    entry.fiber = yield* FiberSet.run(
      commanderFibers,
      Commander.run(options).pipe(
        Effect.flatMap((outcome) => Queue.offer(events, outcome)),
        Effect.ensuring(
          Effect.sync(() => {
            if (commanders.get(k) === entry) commanders.delete(k)
            if (bySlot.get(slot) === inbox) bySlot.delete(slot)
          })
        )
      )
    )
  })

  const startScout = Effect.fnUntraced(function* () {
    const next = Ballot.make(Math.max(ballot.round, highestSeen.round) + 1, id)
    // the round is durable before any P1a carries it: a restarted leader never reuses a ballot (B1)
    if (!bugs.ballotReuse) yield* store.saveRound(next.round)
    ballot = next
    probe?.leaderBallot(id, ballot)
    yield* Metric.update(metrics.round, ballot.round)
    yield* Effect.logInfo("competing for leadership", { ballot: `${ballot}`, watched: `${liveness.watched}` })
    liveness.competing(now())
    const inbox = yield* Queue.unbounded<Message.Envelope>()
    scout = { ballot, inbox }
    yield* FiberHandle.run(
      scoutFiber,
      Scout.run({
        leader: self,
        ballot,
        from: watermark,
        acceptors: config.acceptors,
        inbox,
        retransmitMs,
        duplicatePreempts: bugs.duplicatePreempts
      }).pipe(Effect.flatMap((outcome) => Queue.offer(events, outcome)))
    )
  })

  const stepDown = Effect.fnUntraced(function* (by: Ballot.Ballot) {
    if (Ballot.greaterThan(by, highestSeen)) highestSeen = by
    // each in-flight commander reports the same preemption: back off once per ballot
    if (steppedDownFrom !== undefined && Ballot.equals(steppedDownFrom, ballot)) return
    steppedDownFrom = ballot
    backlog = []
    active = false
    yield* Metric.update(metrics.preemptions, 1)
    yield* Metric.update(metrics.active, 0)
    yield* Effect.logInfo("preempted", { ballot: `${ballot}`, by: `${by}` })
    scout = undefined
    liveness.preempted(now(), by)
    yield* FiberHandle.clear(scoutFiber)
    // (the planted B3 and B4 bugs keep old commanders running, as the paper does)
    if (!bugs.staleChildren && !bugs.p2bBySlotOnly) {
      yield* FiberSet.clear(commanderFibers)
      commanders.clear()
      bySlot.clear()
    }
  })

  /** Active, but no majority of acceptors answered for a lease period while work waits: stop leading. */
  const abdicate = Effect.fnUntraced(function* () {
    steppedDownFrom = ballot
    backlog = []
    active = false
    yield* Metric.update(metrics.active, 0)
    yield* Effect.logWarning("no majority of acceptors heard for a lease period: stepping down", {
      ballot: `${ballot}`
    })
    liveness.competing(now())
    yield* FiberSet.clear(commanderFibers)
    commanders.clear()
    bySlot.clear()
  })

  /** Spawns commanders for the backlog while fewer than a window of them run. */
  const drainBacklog = Effect.fnUntraced(function* () {
    while (backlog.length > 0 && commanders.size < config.window) {
      const [slot, value] = backlog.shift()!
      if (slot < watermark || decided.has(slot)) continue
      yield* spawnCommander(slot, value)
    }
  })

  const onAdopted = Effect.fnUntraced(function* (adopted: Extract<Scout.Outcome, { _tag: "Adopted" }>) {
    if (!Ballot.equals(adopted.ballot, ballot)) return // a stale scout
    scout = undefined
    yield* raiseWatermark(adopted.watermark)
    active = true
    yield* Metric.update(metrics.active, 1)
    liveness.success()
    if (bugs.updateReversed) {
      for (const [slot, pv] of adopted.pvalues) if (!proposals.has(slot)) proposals.set(slot, pv.value)
    } else {
      update(proposals, adopted.pvalues)
    }
    // an acceptor of the quorum may report slots another one already forgot
    for (const slot of proposals.keys()) if (slot < watermark) proposals.delete(slot)
    if (!bugs.noHoleFilling) {
      let top = maxDecided
      for (const slot of proposals.keys()) if (slot > top) top = slot
      fillHoles(proposals, watermark, top, (s) => decided.has(s))
    }
    backlog = [...proposals].filter(([slot]) => !decided.has(slot)).sort(([a], [b]) => a - b)
    const slots = backlog.length
    yield* drainBacklog()
    yield* Effect.logInfo("adopted: leading", { ballot: `${ballot}`, slots, reported: adopted.pvalues.size })
  })

  const onMessage = Effect.fnUntraced(function* (env: Message.Envelope) {
    const msg = env.message
    switch (msg._tag) {
      case "Propose": {
        if (msg.slot < watermark) return // every replica has it durably
        const known = decided.get(msg.slot)
        if (known !== undefined) return yield* send(env.from, known)
        if (!proposals.has(msg.slot)) {
          proposals.set(msg.slot, msg.value)
          if (active) yield* spawnCommander(msg.slot, msg.value)
        }
        if (!active) liveness.proposal(now())
        return
      }
      case "P1b": {
        heardAt.set(Address.id(env.from), now())
        if (scout !== undefined && Ballot.equals(msg.request, scout.ballot)) Queue.offerUnsafe(scout.inbox, env)
        return
      }
      case "P2b": {
        heardAt.set(Address.id(env.from), now())
        if (msg.watermark !== undefined) yield* raiseWatermark(msg.watermark)
        if (msg.slot < watermark) return
        const inbox = bugs.p2bBySlotOnly ? bySlot.get(msg.slot) : commanders.get(key(msg.request, msg.slot))?.inbox
        if (inbox !== undefined) Queue.offerUnsafe(inbox, env)
        return
      }
      case "Heartbeat": {
        if (env.from === self) return
        if (Ballot.greaterThan(msg.ballot, highestSeen)) highestSeen = msg.ballot
        yield* raiseWatermark(msg.watermark)
        liveness.heartbeat(now(), msg)
        if (!msg.active || !Ballot.greaterThan(msg.ballot, ballot)) return
        // a higher ballot leads: an active leader was deposed without hearing it yet
        if (active) return yield* stepDown(msg.ballot)
        // a scout yields only to a higher ballot whose leader is making progress (B15); the
        // failure detector decides again whether it is dead or stuck
        if (scout !== undefined && liveness.progressing(now())) {
          scout = undefined
          yield* FiberHandle.clear(scoutFiber)
        }
        return
      }
    }
  })

  const hearsMajority = (): boolean => {
    const since = now() - config.timeouts.leaderTimeoutMs
    if (busySince > since) return true // not busy for a whole lease period yet
    let heard = 0
    for (const at of heardAt.values()) if (at >= since) heard++
    return Quorum.isMajority(heard, config.acceptors.length)
  }

  const onTick = Effect.fnUntraced(function* () {
    if (active) {
      yield* drainBacklog()
      if (probe !== undefined) {
        const queued = new Set(backlog.map(([slot]) => slot))
        const orphans: Array<number> = []
        for (const slot of proposals.keys())
          if (!decided.has(slot) && !commanders.has(key(ballot, slot)) && !queued.has(slot)) orphans.push(slot)
        probe.leaderOrphans(id, orphans)
      }
      if (commanders.size > 0 && !hearsMajority()) return yield* abdicate()
      const hb = new Message.Heartbeat({ ballot, active: true, decided: decidedCount, slot: maxDecided, watermark })
      for (const l of config.leaders) if (l !== id) yield* send(Address.leader(l), hb)
      for (const r of config.replicas) yield* send(Address.replica(r), hb)
    } else if (scout === undefined && liveness.shouldCompete(now())) {
      yield* startScout()
    }
  })

  const handle = Effect.fnUntraced(function* (event: Event) {
    switch (event._tag) {
      case "Message":
        return yield* onMessage(event.envelope)
      case "Tick":
        return yield* onTick()
      case "Adopted":
        return yield* onAdopted(event)
      case "Preempted":
        if (Ballot.greaterThan(event.by, ballot)) yield* stepDown(event.by)
        return
      case "Decided": {
        if (!decided.has(event.slot)) {
          decided.set(event.slot, new Message.Decision({ slot: event.slot, value: event.value, ballot: event.ballot }))
          decidedCount++
          if (event.slot > maxDecided) maxDecided = event.slot
          liveness.success()
        }
        if (active) yield* drainBacklog()
        return
      }
    }
  })

  const mailbox = yield* transport.listen(self)
  yield* Queue.takeAll(mailbox).pipe(
    Effect.flatMap((batch) =>
      Queue.offerAll(
        events,
        batch.map((envelope) => ({ _tag: "Message", envelope }) as const)
      )
    ),
    Effect.forever,
    Effect.forkScoped
  )
  yield* Queue.offer(events, { _tag: "Tick" }).pipe(Effect.repeat(Schedule.spaced(heartbeatMs)), Effect.forkScoped)
  yield* Queue.takeAll(events).pipe(
    Effect.flatMap((batch) => Effect.forEach(batch, handle, { discard: true })),
    Effect.forever,
    Effect.annotateLogs({ role: "leader", id }),
    Effect.orDie,
    Effect.forkScoped
  )
  return {
    status: Effect.sync(
      (): Status => ({
        id,
        ballot,
        active,
        decided: decidedCount,
        timeoutMs: liveness.timeout,
        watermark,
        retained: proposals.size + decided.size
      })
    )
  }
})

import { assert, describe, it } from "@effect/vitest"
import { Ballot, ClusterConfig, Command, Message, type Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { Effect, Exit, Metric, Option, Scope } from "effect"
import * as fc from "fast-check"
import {
  Acceptor,
  ClientTable,
  Commander,
  Leader,
  Liveness,
  Metrics,
  Replica,
  Scout,
  StateTransfer
} from "@synod/actors"
import { ballotArb, pvalueArb } from "@synod/testing/Arbitraries"
import * as zlib from "node:zlib"
import { doneOf, runToEnd, stateRequest } from "./ReplicaNet.ts"

const b = (round: number, leader = "l1") => Ballot.make(round, leader)
const cmd = (client: string, seq: number, op: unknown = { _tag: "Get", key: "k" }) =>
  new Command.Command({ client, seq, acked: 0, op: op as never })
const batch = (...cs: Array<Command.Command>) => new Command.Batch({ commands: cs })
const empty: Storage.AcceptorState = { promised: Ballot.bottom, watermark: 1, accepted: new Map() }

describe("acceptor rules", () => {
  it("promises only higher ballots and always answers with its promise", () => {
    const a = new Acceptor.AcceptorCore(empty)
    assert.deepStrictEqual(a.p1a(b(2)).ballot, b(2))
    const lower = a.p1a(b(1))
    assert.deepStrictEqual(lower.ballot, b(2), "a lower P1a does not lower the promise")
    assert.deepStrictEqual(lower.request, b(1), "the reply echoes the request")
    assert.deepStrictEqual(a.p1a(b(2, "l2")).ballot, b(2, "l2"))
  })

  it("accepts a P2a at or above its promise, adopting it, and rejects lower ones", () => {
    const a = new Acceptor.AcceptorCore(empty)
    a.p1a(b(3))
    const low = a.p2a(new Message.P2a({ ballot: b(2), slot: 1, value: Command.noop }))
    assert.isUndefined(low.accepted)
    assert.deepStrictEqual(low.reply.ballot, b(3))
    assert.deepStrictEqual(low.reply.request, b(2))
    // a P2a above the promise (the acceptor missed that ballot's P1a) is accepted: B5
    const high = a.p2a(new Message.P2a({ ballot: b(5), slot: 1, value: batch(cmd("c", 1)) }))
    assert.isDefined(high.accepted)
    assert.deepStrictEqual(a.promised, b(5))
    assert.deepStrictEqual(high.reply.ballot, high.reply.request)
    // per slot only the highest-ballot pvalue is kept and reported
    a.p2a(new Message.P2a({ ballot: b(5), slot: 2, value: Command.noop }))
    const p1b = a.p1a(b(6))
    assert.deepStrictEqual(p1b.accepted.map((pv) => [pv.slot, pv.ballot.round]).sort(), [
      [1, 5],
      [2, 5]
    ])
  })

  it("reports only the pvalues at or above the leader's watermark", () => {
    const a = new Acceptor.AcceptorCore(empty)
    for (let s = 1; s <= 10; s++) a.p2a(new Message.P2a({ ballot: b(1), slot: s, value: Command.noop }))
    assert.strictEqual(a.p1a(b(2)).accepted.length, 10)
    assert.deepStrictEqual(
      a
        .p1a(b(3), 8)
        .accepted.map((pv) => pv.slot)
        .sort((x, y) => x - y),
      [8, 9, 10]
    )
  })

  it("forgets the slots below what f + 1 replicas hold durably, and says so in P1b and P2b (B11)", () => {
    const cluster = { acceptors: ["a1", "a2", "a3"], replicas: ["r1", "r2", "r3"] }
    const a = new Acceptor.AcceptorCore(empty, { cluster })
    for (let s = 1; s <= 10; s++) a.p2a(new Message.P2a({ ballot: b(1), slot: s, value: Command.noop }))
    assert.isUndefined(a.progress("r1", 8), "one replica is not enough (f + 1 = 2)")
    assert.isUndefined(a.progress("leader-or-stranger", 9), "only the configured replicas count")
    assert.strictEqual(a.progress("r2", 6), 6, "the second highest report is held by two replicas")
    assert.strictEqual(a.watermark, 6)
    assert.deepStrictEqual(
      [...a.accepted.keys()].sort((x, y) => x - y),
      [6, 7, 8, 9, 10]
    )
    assert.isUndefined(a.progress("r2", 5), "the watermark never goes back")
    const p1b = a.p1a(b(2))
    assert.strictEqual(p1b.watermark, 6)
    assert.deepStrictEqual(
      p1b.accepted.map((pv) => pv.slot).sort((x, y) => x - y),
      [6, 7, 8, 9, 10]
    )
    // a P2a for a forgotten slot is refused, and the reply is no acceptance even at the promised ballot
    const old = a.p2a(new Message.P2a({ ballot: b(2), slot: 3, value: Command.noop }))
    assert.isUndefined(old.accepted)
    assert.strictEqual(old.reply.watermark, 6)
    assert.isFalse(Commander.isAcceptance(old.reply, b(2), 3))
    assert.isFalse(a.accepted.has(3))
    assert.isTrue(
      Commander.isAcceptance(a.p2a(new Message.P2a({ ballot: b(2), slot: 6, value: Command.noop })).reply, b(2), 6)
    )
  })

  it("restarts with its watermark and without the slots below it", () => {
    const a = new Acceptor.AcceptorCore(
      { promised: b(3), watermark: 5, accepted: new Map() },
      {
        cluster: { acceptors: ["a1"], replicas: ["r1"] }
      }
    )
    assert.strictEqual(a.p1a(b(4)).watermark, 5)
    assert.isUndefined(a.p2a(new Message.P2a({ ballot: b(4), slot: 4, value: Command.noop })).accepted)
  })

  it("the strict rule of the paper (the B5 planted bug) refuses a higher ballot it never promised", () => {
    const a = new Acceptor.AcceptorCore(empty, { strictAccept: true })
    a.p1a(b(3))
    assert.isUndefined(a.p2a(new Message.P2a({ ballot: b(5), slot: 1, value: Command.noop })).accepted)
    assert.isDefined(a.p2a(new Message.P2a({ ballot: b(3), slot: 1, value: Command.noop })).accepted)
  })
})

describe("pmax and the update operator", () => {
  it("pmax keeps, per slot, the pvalue with the highest ballot (set-builder definition)", () => {
    fc.assert(
      fc.property(
        fc.array(
          pvalueArb.map((pv) => new Command.PValue({ ...pv, slot: (pv.slot % 5) + 1 })),
          { maxLength: 30 }
        ),
        (pvs) => {
          const got = new Map<number, Command.PValue>()
          Scout.mergePmax(got, pvs)
          const slots = new Set(pvs.map((pv) => pv.slot))
          assert.strictEqual(got.size, slots.size)
          for (const s of slots) {
            const best = got.get(s)!
            for (const pv of pvs) if (pv.slot === s) assert.isFalse(Ballot.greaterThan(pv.ballot, best.ballot))
            assert.isTrue(pvs.includes(best))
          }
        }
      ),
      { numRuns: 300 }
    )
  })

  it("x ◁ y takes y wherever y has the slot, x elsewhere", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 20 })),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 20 }), ballotArb)),
        (own, reported) => {
          const proposals = new Map<number, Command.SlotValue>(own.map((s) => [s, batch(cmd("own", s))]))
          const pm = new Map<number, Command.PValue>()
          for (const [s, bal] of reported)
            pm.set(s, new Command.PValue({ ballot: bal, slot: s, value: batch(cmd("acc", s)) }))
          const before = new Map(proposals)
          const out = Leader.update(proposals, pm)
          for (const s of new Set([...before.keys(), ...pm.keys()])) {
            const expected = pm.has(s) ? pm.get(s)!.value : before.get(s)
            assert.deepStrictEqual(out.get(s), expected)
          }
          assert.strictEqual(out.size, new Set([...before.keys(), ...pm.keys()]).size)
        }
      )
    )
  })

  it("a chosen value overrides the new leader's own proposal for that slot (B8 scenario)", () => {
    const proposals = new Map<number, Command.SlotValue>([[1, batch(cmd("mine", 1))]])
    const pm = new Map([[1, new Command.PValue({ ballot: b(2), slot: 1, value: batch(cmd("chosen", 1)) })]])
    assert.deepStrictEqual(Leader.update(proposals, pm).get(1), batch(cmd("chosen", 1)))
  })

  it("hole filling puts a no-op in every unknown slot and nowhere else", () => {
    const proposals = new Map<number, Command.SlotValue>([
      [2, batch(cmd("a", 1))],
      [5, batch(cmd("b", 1))]
    ])
    Leader.fillHoles(proposals, 1, 5, (s) => s === 3)
    assert.deepStrictEqual([...proposals.keys()].sort(), [1, 2, 4, 5])
    assert.strictEqual(proposals.get(1)!._tag, "Noop")
    assert.strictEqual(proposals.get(2)!._tag, "Batch")
  })
})

/**
 * A passive leader l1 of acceptors a1-a3 whose replicas r1 performed every slot below 14
 * and r2 (restarted from an older snapshot) below 11, r2 asking for slot 12; its clock
 * `clock.now`, at 0 (past the listening period once the caller moves it on).
 */
const laggingReplica = () => {
  const members = ["a1", "a2", "a3"]
  const clock = { now: 0 }
  const leader = new Leader.LeaderCore(
    "l1",
    ClusterConfig.make({ acceptors: members, leaders: ["l1", "l2"], replicas: ["r1", "r2"] }),
    { round: 2, now: () => clock.now, random: () => 0 }
  )
  const history = [
    { from: 1, decidedAt: 0, members: { acceptors: members, leaders: ["l1", "l2"], replicas: ["r1", "r2"] } }
  ]
  leader.step({ _tag: "Message", from: "replica/r1", message: new Message.History({ history, slotOut: 14 }) })
  leader.step({ _tag: "Message", from: "replica/r2", message: new Message.History({ history, slotOut: 11 }) })
  leader.step({ _tag: "Message", from: "replica/r2", message: new Message.Propose({ slot: 12, value: Command.noop }) })
  return { leader, clock, members }
}

/**
 * Past the listening period `leader` competes (its first tick judges nothing, the second
 * competes; the caller set its clock past it), and its scout is adopted with these
 * acceptors' reports: its ballot.
 */
const adoptWith = (
  leader: Leader.LeaderCore,
  byAcceptor: ReadonlyArray<readonly [string, ReadonlyArray<Command.PValue>]>,
  configs: ReadonlyArray<ReadonlyArray<string>>,
  from: number
): Ballot.Ballot => {
  leader.step({ _tag: "Tick" })
  leader.step({ _tag: "Tick" })
  const ballot = leader.ballot
  leader.out.drain()
  leader.step({
    _tag: "ScoutEnded",
    outcome: {
      _tag: "Adopted",
      ballot,
      pvalues: new Map(),
      byAcceptor: new Map(byAcceptor),
      configs,
      watermark: 1,
      from
    }
  })
  return ballot
}

/** `acceptor` confirms round `round` at `ballot`, its promise. */
const confirmTo = (leader: Leader.LeaderCore, acceptor: string, ballot: Ballot.Ballot, round: number) =>
  leader.step({
    _tag: "Message",
    from: `acceptor/${acceptor}`,
    message: new Message.Confirmed({ ballot, request: ballot, round })
  })

describe("leader: phase 1 in several scouts at one ballot", () => {
  it("a later scout's reports never replace a slot's higher pvalue with a lower one (C2)", () => {
    // The simulator's seed 58 with staggered digests: a configuration change was decided
    // while the leader scouted; its second scout, for the new acceptors, heard one
    // acceptor of the old configuration report slot 30 at an old ballot, and the leader
    // replaced the no-op chosen there (reported to its first scout by another acceptor).
    const entry = (from: number, decidedAt: number, acceptors: Array<string>) => ({
      from,
      decidedAt,
      members: { acceptors, leaders: ["l1", "l2"], replicas: ["r1", "r2"] }
    })
    const old = ["a1", "a2", "a3"]
    const joined = ["a1", "a2", "a3", "a4"]
    const next = ["a1", "a2", "a4"]
    const history = (slotOut: number, ...entries: Array<ReturnType<typeof entry>>) =>
      ({
        _tag: "Message",
        from: "replica/r1",
        message: new Message.History({ history: entries, slotOut })
      }) as const
    let now = 0
    const leader = new Leader.LeaderCore(
      "l1",
      ClusterConfig.make({ acceptors: old, leaders: ["l1", "l2"], replicas: ["r1", "r2"] }),
      {
        round: 2,
        now: () => now,
        random: () => 0
      }
    )
    // r1 performed up to 20 only: slot 30 is not known decided, so it is commanded again
    leader.step(history(20, entry(1, 0, old), entry(35, 31, joined)))
    now = 10_000
    // past the listening period: the first tick judges nothing, the second competes
    leader.step({ _tag: "Tick" })
    leader.step({ _tag: "Tick" })
    const ballot = leader.ballot
    const pv = (slot: number, at: Ballot.Ballot, value: Command.SlotValue) =>
      new Command.PValue({ ballot: at, slot, value })
    const chosen = pv(30, b(2, "l2"), Command.noop)
    const stale = pv(30, b(1, "l1"), batch(cmd("c", 4)))
    leader.step({
      _tag: "ScoutEnded",
      outcome: {
        _tag: "Adopted",
        ballot,
        pvalues: new Map([[30, chosen]]),
        byAcceptor: new Map([
          ["a1", [stale]],
          ["a2", [chosen]]
        ]),
        configs: [old, joined],
        watermark: 1,
        from: 1
      }
    })
    assert.isTrue(leader.active)
    assert.deepStrictEqual(leader.proposals.get(30), Command.noop)
    leader.out.drain()
    // the next change is decided: a scout for its acceptors, at the same ballot
    leader.step(history(38, entry(1, 0, old), entry(35, 31, joined), entry(41, 37, next)))
    const started = leader.out.drain().start.filter(({ spec }) => spec._tag === "Scout")
    assert.strictEqual(started.length, 1, "one scout for the new configuration")
    leader.step({
      _tag: "ScoutEnded",
      outcome: {
        _tag: "Adopted",
        ballot,
        pvalues: new Map([[30, stale]]),
        byAcceptor: new Map([
          ["a1", [stale]],
          ["a4", []]
        ]),
        configs: [next],
        watermark: 1,
        from: 1
      }
    })
    assert.deepStrictEqual(leader.proposals.get(30), Command.noop, "slot 30 keeps the no-op chosen at 2.l2")
    // slot 30 is below `known` (38) now, but the second scout heard only a1 of its
    // configuration: not a majority, so nothing is learnt from it
    assert.isUndefined(leader.decided.get(30))
    for (const { spec } of leader.out.drain().start) {
      if (spec._tag === "Commander" && spec.slot === 30) assert.deepStrictEqual(spec.value, Command.noop)
    }
  })

  it("below known, a slot is learnt from a majority of its own configuration: the highest ballot reported", () => {
    // r1 performed every slot below 14; r2, restarted from an older snapshot, below 11,
    // asks for slot 12 while the leader is passive
    const { leader, clock, members } = laggingReplica()
    clock.now = 10_000
    const pv = (slot: number, at: Ballot.Ballot, value: Command.SlotValue) =>
      new Command.PValue({ ballot: at, slot, value })
    const c = (n: number) => batch(cmd("c", n))
    const ballot = adoptWith(
      leader,
      [
        ["a1", [pv(11, b(1, "l1"), c(1)), pv(12, b(1, "l1"), c(9)), pv(14, b(2, "l2"), c(4))]],
        ["a2", [pv(11, b(1, "l1"), c(1)), pv(12, b(2, "l2"), c(2)), pv(13, b(2, "l2"), c(3))]]
      ],
      [members],
      11
    )
    assert.isTrue(leader.active)
    // below 14 every slot is decided: each takes the value of the highest ballot
    // reported (12: c2 at 2.l2, not c9 at 1.l1), learnt, not commanded again
    assert.deepStrictEqual(leader.decided.get(11)?.value, c(1))
    assert.deepStrictEqual(leader.decided.get(12)?.value, c(2))
    assert.deepStrictEqual(leader.decided.get(13)?.value, c(3))
    const ready = leader.out.drain()
    const commanded = ready.start.flatMap(({ spec }) => (spec._tag === "Commander" ? [spec] : []))
    assert.deepStrictEqual(
      commanded.map((spec) => spec.slot),
      [14]
    )
    // slot 14 (no replica performed it) is commanded with the reported value, as before
    assert.isUndefined(leader.decided.get(14))
    assert.isTrue(Command.sameValue(commanded[0]!.value, c(4)))
    // r2, which asked for slot 12, hears its decision once a majority of the acceptors
    // confirmed they promise no higher ballot (the adoption may be stale: seed 1841919)
    const decisionTo = (send: ReadonlyArray<{ to: string; message: Message.Message }>) =>
      send.some(({ to, message }) => to === "replica/r2" && message._tag === "Decision" && message.slot === 12)
    assert.isFalse(decisionTo(ready.send))
    const confirm = ready.send.find(({ message }) => message._tag === "Confirm")?.message as Message.Confirm
    assert.isDefined(confirm)
    const confirmed = (acceptor: string) => confirmTo(leader, acceptor, ballot, confirm.round)
    confirmed("a1")
    assert.isFalse(decisionTo(leader.out.drain().send))
    confirmed("a3")
    assert.isTrue(decisionTo(leader.out.drain().send))
  })
})

describe("learning from phase 1", () => {
  it("each learnt decision goes out once a majority of its own configuration confirmed", () => {
    const first = ["a1", "a2", "a3"]
    const second = ["a4", "a5", "a6"]
    let now = 0
    const leader = new Leader.LeaderCore(
      "l1",
      ClusterConfig.make({ acceptors: first, leaders: ["l1", "l2"], replicas: ["r1", "r2"] }),
      { round: 2, now: () => now, random: () => 0 }
    )
    const group = (acceptors: Array<string>) => ({ acceptors, leaders: ["l1", "l2"], replicas: ["r1", "r2"] })
    // slots from 11 on belong to the second configuration; r1 performed every slot below 20
    const history = [
      { from: 1, decidedAt: 0, members: group(first) },
      { from: 11, decidedAt: 3, members: group(second) }
    ]
    leader.step({ _tag: "Message", from: "replica/r1", message: new Message.History({ history, slotOut: 20 }) })
    for (const slot of [5, 15]) {
      leader.step({ _tag: "Message", from: "replica/r2", message: new Message.Propose({ slot, value: Command.noop }) })
    }
    now = 10_000
    const pv = (slot: number, value: Command.SlotValue) => new Command.PValue({ ballot: b(1, "l2"), slot, value })
    const ballot = adoptWith(
      leader,
      [
        ["a1", [pv(5, batch(cmd("c", 5)))]],
        ["a2", []],
        ["a4", [pv(15, batch(cmd("c", 15)))]],
        ["a5", []]
      ],
      [first, second],
      1
    )
    assert.isTrue(leader.active)
    const decided = (send: ReadonlyArray<{ to: string; message: Message.Message }>) =>
      send.flatMap(({ to, message }) => (to === "replica/r2" && message._tag === "Decision" ? [message.slot] : []))
    const ready = leader.out.drain()
    assert.deepStrictEqual(decided(ready.send), [])
    const confirm = ready.send.find(({ message }) => message._tag === "Confirm")!.message as Message.Confirm
    // every acceptor of both configurations is asked
    assert.deepStrictEqual(
      ready.send.filter(({ message }) => message._tag === "Confirm").map(({ to }) => to),
      [...first, ...second].map((a) => `acceptor/${a}`)
    )
    const confirmed = (acceptor: string) => confirmTo(leader, acceptor, ballot, confirm.round)
    // a majority of the first configuration: slot 5 goes out, slot 15 (the second's) waits
    confirmed("a1")
    confirmed("a3")
    assert.deepStrictEqual(decided(leader.out.drain().send), [5])
    // an acceptor of the first configuration counts nothing for the second
    confirmed("a2")
    assert.deepStrictEqual(decided(leader.out.drain().send), [])
    confirmed("a4")
    confirmed("a6")
    assert.deepStrictEqual(decided(leader.out.drain().send), [15])
  })
})

describe("learning from phase 1: which answers count", () => {
  const members = ["a1", "a2", "a3"]
  const noopAt = (slot: number) => new Command.PValue({ ballot: b(1, "l2"), slot, value: Command.noop })
  /** A leader adopted from slot 11, r1 having performed every slot below 14 and r2 asking for 12: slot 12 learnt. */
  const learnt12 = () => {
    const { leader, clock } = laggingReplica()
    clock.now = 10_000
    const ballot = adoptWith(
      leader,
      [
        ["a1", [noopAt(12)]],
        ["a2", []]
      ],
      [members],
      11
    )
    assert.isTrue(leader.active)
    assert.isDefined(leader.decided.get(12))
    const ready = leader.out.drain()
    const confirm = ready.send.find(({ message }) => message._tag === "Confirm")!.message as Message.Confirm
    return { leader, clock, ballot, round: confirm.round }
  }
  /** r2 asks for slot 5, below where phase 1 began: phase 1 again at the same ballot, which learns it. */
  const learn5 = (leader: Leader.LeaderCore, ballot: Ballot.Ballot) => {
    leader.step({ _tag: "Message", from: "replica/r2", message: new Message.Propose({ slot: 5, value: Command.noop }) })
    const scouts = leader.out.drain().start.flatMap(({ spec }) => (spec._tag === "Scout" ? [spec] : []))
    assert.strictEqual(scouts.length, 1)
    leader.step({
      _tag: "ScoutEnded",
      outcome: {
        _tag: "Adopted",
        ballot,
        pvalues: new Map(),
        byAcceptor: new Map([
          ["a1", [noopAt(5)]],
          ["a2", []]
        ]),
        configs: [members],
        watermark: 1,
        from: scouts[0]!.from ?? 1
      }
    })
  }
  const decisionsTo = (leader: Leader.LeaderCore, replica: string) =>
    leader.out
      .drain()
      .send.flatMap(({ to, message }) => (to === replica && message._tag === "Decision" ? [message.slot] : []))

  it("a round releases only the slots learnt before it began", () => {
    const { leader, clock, ballot, round } = learnt12()
    learn5(leader, ballot)
    assert.isDefined(leader.decided.get(5), "slot 5 learnt")
    leader.out.drain()
    // answers to the round that began before slot 5 was learnt may have been sent before
    // slot 5 was decided: they vouch for slot 12 only
    confirmTo(leader, "a1", ballot, round)
    confirmTo(leader, "a2", ballot, round)
    assert.deepStrictEqual(decisionsTo(leader, "replica/r2"), [12])
    // the next round (the one in flight is done) vouches for slot 5
    leader.out.drain()
    clock.now += 1_000
    leader.step({ _tag: "Tick" })
    const confirms = leader.out.drain().send.flatMap(({ message }) => (message._tag === "Confirm" ? [message] : []))
    assert.isAbove(confirms.length, 0)
    const later = confirms[0]!.round
    assert.isAbove(later, round)
    confirmTo(leader, "a1", ballot, later)
    confirmTo(leader, "a3", ballot, later)
    assert.deepStrictEqual(decisionsTo(leader, "replica/r2"), [5])
  })

  it("answers that echo another round number release nothing", () => {
    const { leader, ballot, round } = learnt12()
    // answers to another round (a read round's, a later learning round's) may predate the slot's choice
    confirmTo(leader, "a1", ballot, round + 2)
    confirmTo(leader, "a3", ballot, round + 1)
    confirmTo(leader, "a2", ballot, round + 7)
    assert.deepStrictEqual(decisionsTo(leader, "replica/r2"), [])
    confirmTo(leader, "a1", ballot, round)
    confirmTo(leader, "a3", ballot, round)
    assert.deepStrictEqual(decisionsTo(leader, "replica/r2"), [12])
  })

  it("on the tick a round asks again only those that have not answered", () => {
    const { leader, clock, ballot, round } = learnt12()
    confirmTo(leader, "a1", ballot, round)
    leader.out.drain()
    clock.now += 50 // within the resend period (the default retransmitMs, 100): nothing yet
    leader.step({ _tag: "Tick" })
    const asked = () =>
      leader.out
        .drain()
        .send.flatMap(({ to, message }) => (message._tag === "Confirm" && message.round === round ? [to] : []))
    assert.deepStrictEqual(asked(), [])
    clock.now += 1_000
    leader.step({ _tag: "Tick" })
    assert.deepStrictEqual(asked(), ["acceptor/a2", "acceptor/a3"])
    confirmTo(leader, "a3", ballot, round)
    assert.deepStrictEqual(decisionsTo(leader, "replica/r2"), [12])
  })

  it("a round that no answer completed gives way on the tick to one for every slot learnt since", () => {
    const { leader, clock, ballot, round } = learnt12()
    learn5(leader, ballot)
    leader.out.drain()
    clock.now += 1_000
    leader.step({ _tag: "Tick" })
    const confirms = leader.out
      .drain()
      .send.flatMap(({ to, message }) => (message._tag === "Confirm" ? [[to, message.round] as const] : []))
    const next = confirms[0]![1]
    assert.isAbove(next, round)
    assert.deepStrictEqual(
      confirms.map(([to]) => to),
      ["acceptor/a1", "acceptor/a2", "acceptor/a3"]
    )
    // the old round's answers count no more; the new one's release both slots
    confirmTo(leader, "a1", ballot, round)
    confirmTo(leader, "a2", ballot, round)
    assert.deepStrictEqual(decisionsTo(leader, "replica/r2"), [])
    confirmTo(leader, "a1", ballot, next)
    confirmTo(leader, "a3", ballot, next)
    assert.deepStrictEqual(
      decisionsTo(leader, "replica/r2").sort((a, b) => a - b),
      [5, 12]
    )
  })

  it("a round whose slots all fell below the watermark stops asking", () => {
    const { leader, clock, round } = learnt12()
    // a2 and a3 are silent; the GC watermark passes slot 12
    leader.step({
      _tag: "Message",
      from: "leader/l2",
      message: new Message.Heartbeat({ ballot: b(1, "l2"), active: false, decided: 0, slot: 0, watermark: 13 })
    })
    assert.strictEqual(leader.watermark, 13)
    const asked: Array<number> = []
    for (let i = 0; i < 4; i++) {
      clock.now += 1_000
      leader.step({ _tag: "Tick" })
      asked.push(
        leader.out.drain().send.filter(({ message }) => message._tag === "Confirm" && message.round === round).length
      )
    }
    assert.deepStrictEqual(asked, [0, 0, 0, 0])
    assert.isTrue(leader.active, "still leading: the round ended, not the leadership")
  })
})

describe("commander counting", () => {
  it("counts only replies that echo its own ballot and slot (B3)", () => {
    const mine = b(4)
    const ok = new Message.P2b({ ballot: mine, request: mine, slot: 7 })
    assert.isTrue(Commander.isAcceptance(ok, mine, 7))
    // an acceptor that promised b(4) rejecting an old P2a(b(3)) for the same slot
    assert.isFalse(Commander.isAcceptance(new Message.P2b({ ballot: mine, request: b(3), slot: 7 }), mine, 7))
    assert.isFalse(Commander.isAcceptance(new Message.P2b({ ballot: mine, request: mine, slot: 8 }), mine, 7))
    assert.isFalse(Commander.isAcceptance(new Message.P2b({ ballot: b(5), request: mine, slot: 7 }), mine, 7))
  })
})

const config = ClusterConfig.make({
  acceptors: ["a1", "a2", "a3"],
  leaders: ["l1", "l2"],
  replicas: ["r1", "r2"],
  window: 2,
  batch: { maxSize: 2 }
})
const kv = (key: string, value: string) => ({ _tag: "Put", key, value })
const proposes = (out: ReadonlyArray<Replica.Outbound>) =>
  out.filter((o) => o.message._tag === "Propose" && o.to === "leader/l1").map((o) => o.message as Message.Propose)
const responses = (out: ReadonlyArray<Replica.Outbound>) =>
  out.filter((o) => o.message._tag === "Response").map((o) => [o.to, (o.message as Message.Response).seq] as const)

describe("replica slot logic", () => {
  it("proposes batches within the window and performs decisions in slot order", () => {
    const r = new Replica.ReplicaCore("r1", config, Kv.machine, Option.none())
    for (let i = 1; i <= 5; i++) r.request(cmd("c", i, kv("k", `v${i}`)))
    const first = proposes(r.drain())
    assert.deepStrictEqual(
      first.map((p) => p.slot),
      [1, 2],
      "window 2: slots 1 and 2 only"
    )
    // with a free window a request goes out at once; the rest wait for the window
    assert.deepStrictEqual(
      first.map((p) => (p.value as Command.Batch).commands.length),
      [1, 1]
    )
    // decision for slot 2 first: nothing performed until slot 1
    r.decision(2, first[1]!.value)
    assert.strictEqual(r.slotOut, 1)
    assert.deepStrictEqual(responses(r.drain()), [])
    r.decision(1, first[0]!.value)
    assert.strictEqual(r.slotOut, 3)
    const out = r.drain()
    assert.deepStrictEqual(
      responses(out).map(([, s]) => s),
      [1, 2]
    )
    const next = proposes(out)
    assert.deepStrictEqual(
      next.map((p) => p.slot),
      [3, 4],
      "the window moved on"
    )
    assert.deepStrictEqual(
      next.map((p) => (p.value as Command.Batch).commands.length),
      [2, 1],
      "waiting requests batch up"
    )
  })

  it("a partial batch lingers up to lingerMs for more commands, a full one goes at once", () => {
    let now = 0
    const lingering = ClusterConfig.make({ ...config, batch: { maxSize: 3, lingerMs: 5 } })
    const r = new Replica.ReplicaCore("r1", lingering, Kv.machine, Option.none(), { now: () => now })
    r.request(cmd("c", 1, kv("k", "1")))
    assert.deepStrictEqual(proposes(r.drain()), [], "one command waits")
    assert.strictEqual(r.wakeAt(), 5)
    now = 3
    r.request(cmd("c", 2, kv("k", "2")))
    assert.deepStrictEqual(proposes(r.drain()), [])
    now = 5
    r.propose()
    const [p] = proposes(r.drain())
    assert.strictEqual((p!.value as Command.Batch).commands.length, 2, "after the linger the partial batch goes")
    for (let i = 3; i <= 5; i++) r.request(cmd("c", i, kv("k", `${i}`)))
    const [full] = proposes(r.drain())
    assert.strictEqual((full!.value as Command.Batch).commands.length, 3, "a full batch does not wait")
  })

  it("re-proposes commands whose slot another proposal won, and performs a command decided twice once (B9)", () => {
    const r = new Replica.ReplicaCore("r1", config, Kv.machine, Option.none())
    r.request(cmd("c", 1, kv("k", "mine")))
    const [p1] = proposes(r.drain())
    const other = batch(cmd("d", 1, kv("k", "theirs")))
    r.decision(1, other)
    const out = r.drain()
    assert.deepStrictEqual(responses(out), [], "d asked another replica: that one answers")
    const again = proposes(out)
    assert.deepStrictEqual(
      again.map((p) => p.slot),
      [2],
      "the lost command is proposed again"
    )
    assert.deepStrictEqual(again[0]!.value, p1!.value)
    r.decision(2, again[0]!.value)
    r.decision(3, again[0]!.value) // the same command decided again in slot 3
    assert.deepStrictEqual(responses(r.drain()), [["client/c", 1]], "performed and answered once")
    assert.strictEqual(r.slotOut, 4)
    // a retry of an answered command is answered from the client table, not proposed
    r.request(cmd("c", 1, kv("k", "mine")))
    const retry = r.drain()
    assert.deepStrictEqual(responses(retry), [["client/c", 1]])
    assert.deepStrictEqual(proposes(retry), [])
  })

  it("resends outstanding proposals and asks for missing decisions on its timer (B10)", () => {
    let now = 0
    const r = new Replica.ReplicaCore("r1", config, Kv.machine, Option.none(), { now: () => now })
    r.request(cmd("c", 1, kv("k", "v")))
    r.drain()
    r.tick()
    assert.deepStrictEqual(proposes(r.drain()), [], "not yet: sent less than retransmitMs ago")
    now = config.timeouts.retransmitMs
    r.tick()
    assert.deepStrictEqual(
      proposes(r.drain()).map((p) => [p.slot, p.value._tag]),
      [[1, "Batch"]]
    )
    // then it backs off: twice the wait before the next resend
    now += config.timeouts.retransmitMs
    r.tick()
    assert.deepStrictEqual(proposes(r.drain()), [])
    now += config.timeouts.retransmitMs
    r.tick()
    assert.strictEqual(proposes(r.drain()).length, 1)
    const idle = new Replica.ReplicaCore("r2", config, Kv.machine, Option.none())
    idle.decision(2, batch(cmd("x", 1, kv("k", "v"))))
    idle.tick()
    assert.deepStrictEqual(
      proposes(idle.drain()).map((p) => [p.slot, p.value._tag]),
      [[1, "Noop"]]
    )
  })

  it("a snapshot restores state, slotOut and client table together", () => {
    const r = new Replica.ReplicaCore("r1", config, Kv.machine, Option.none())
    r.request(cmd("c", 1, kv("k", "v")))
    const [p] = proposes(r.drain())
    r.decision(1, p!.value)
    const copy = new Replica.ReplicaCore("r1", config, Kv.machine, Option.some(r.snapshot()))
    assert.strictEqual(copy.slotOut, 2)
    copy.request(cmd("c", 1, kv("k", "v")))
    assert.deepStrictEqual(responses(copy.drain()), [["client/c", 1]], "the restored table answers the retry")
    copy.request(cmd("c", 2, { _tag: "Get", key: "k" }))
    const [get] = proposes(copy.drain())
    copy.decision(2, get!.value)
    const resp = copy.drain().find((o) => o.message._tag === "Response")!.message as Message.Response
    assert.deepStrictEqual(resp.result, { _tag: "Value", value: "v", version: 1 })
  })

  it("a command the state machine cannot decode is decided, changes nothing, and is answered with an error", () => {
    const r = new Replica.ReplicaCore("r1", config, Kv.machine, Option.none())
    r.request(cmd("c", 1, { _tag: "Explode" }))
    const [p] = proposes(r.drain())
    r.decision(1, p!.value)
    const resp = r.drain().find((o) => o.message._tag === "Response")!.message as Message.Response
    assert.include(resp.error ?? "", "invalid command")
  })
})

/** `source.serve`, with the host's part played: an encoding it asks for is made at once. */
const serveNow = (
  source: StateTransfer.Source,
  from: string,
  request: Message.StateRequest,
  state: Storage.ReplicaSnapshot
): Array<Message.StateChunk> => {
  const served = source.serve(from as never, request, { slotOut: state.slotOut, floor: 1, now: 0 })
  if (!served.encode) return [...served.chunks]
  return source
    .prepared(state.slotOut, runToEnd(StateTransfer.encodeForTransfer(state, source.chunkChars)), 0)
    .map((o) => o.message)
}

describe("state transfer", () => {
  const snapshotOf = (n: number) => {
    const r = new Replica.ReplicaCore("r2", config, Kv.machine, Option.none())
    for (let i = 1; i <= n; i++) r.decision(i, batch(cmd("c", i, kv(`k${i}`, "x".repeat(50)))))
    r.drain()
    return r
  }
  const chunked = ClusterConfig.make({ ...config, transferChunkBytes: 40 })

  it("a replica below the watermark ignores clients, pulls a peer's snapshot in chunks and installs it", () => {
    const peer = new Replica.ReplicaCore("r2", chunked, Kv.machine, Option.some(snapshotOf(20).snapshot()))
    const behind = new Replica.ReplicaCore("r1", chunked, Kv.machine, Option.none())
    behind.heartbeat(new Message.Heartbeat({ ballot: b(1), active: true, decided: 20, slot: 20, watermark: 15 }))
    assert.isTrue(behind.catchingUp)
    behind.request(cmd("d", 1, kv("k", "v")))
    assert.deepStrictEqual(behind.drain(), [], "no proposal, no answer while catching up")
    behind.tick()
    let messages = behind.drain().filter((o) => o.message._tag === "StateRequest")
    assert.strictEqual(messages.length, 1)
    let rounds = 0
    let dropped = 0
    while (messages.length > 0 && rounds++ < 1000) {
      const next: Array<Replica.Outbound> = []
      for (const o of messages) {
        if (o.message._tag === "StateRequest") {
          stateRequest(peer, "replica/r1", o.message)
          next.push(...peer.drain())
        } else if (o.message._tag === "StateChunk") {
          // lose every fifth chunk: the asker must ask again for it
          if (++dropped % 5 === 0) continue
          assert.isAtMost(o.message.count * 40, 40 * Math.ceil(JSON.stringify(peer.snapshot()).length / 40))
          assert.isUndefined(behind.stateChunk("replica/r2", o.message))
          next.push(...behind.drain())
        }
      }
      if (next.length === 0 && behind.catchingUp) {
        behind.tick()
        behind.tick()
        next.push(...behind.drain().filter((o) => o.message._tag === "StateRequest"))
      }
      messages = next
    }
    assert.isFalse(behind.catchingUp)
    assert.strictEqual(behind.slotOut, 21)
    assert.isTrue(behind.installed, "the caller must save the installed snapshot")
    assert.deepStrictEqual(behind.snapshot(), peer.snapshot())
    behind.request(cmd("c", 3, kv("k3", "y")))
    assert.deepStrictEqual(responses(behind.drain()), [["client/c", 3]], "the copied client table answers retries")
  })

  it("the peer serves nothing when it is not ahead", () => {
    const peer = new Replica.ReplicaCore("r2", config, Kv.machine, Option.some(snapshotOf(5).snapshot()))
    stateRequest(peer, "replica/r1", new Message.StateRequest({ slotOut: 6, chunks: [] }))
    assert.deepStrictEqual(peer.drain(), [])
  })

  it("a late peer's chunks are taken while the peer asked since sent none; never once it did", () => {
    const source = new StateTransfer.Source(30)
    const state = snapshotOf(3).snapshot()
    const sink = new StateTransfer.Sink(["replica/r2", "replica/r3"])
    const [ask] = sink.tick(1)
    assert.strictEqual(ask!.to, "replica/r2")
    // r2 is slow: after five ticks without a chunk the sink asks r3, which is down
    let asked: Array<string> = []
    for (let i = 0; i < 6; i++) asked = sink.tick(1).map((o) => o.to)
    assert.deepStrictEqual(asked, ["replica/r3"])
    // then r2's answer comes: taken, and the transfer goes on with r2 to the end
    let result: StateTransfer.Received | undefined
    let pending = serveNow(source, "replica/r1", ask!.message, state)
    for (let round = 0; round < 100 && result === undefined; round++) {
      const next: Array<Message.StateChunk> = []
      for (const c of pending) {
        const r = sink.chunk("replica/r2", c, 1)
        if (r.received !== undefined) result = r.received
        for (const o of r.send) {
          assert.strictEqual(o.to, "replica/r2")
          next.push(...serveNow(source, "replica/r1", o.message, state))
        }
      }
      pending = next
    }
    assert.strictEqual(result?._tag, "Snapshot")
    // once a peer sent a chunk, another's are not mixed in
    const other = new StateTransfer.Sink(["replica/r2", "replica/r3"])
    const [first] = other.tick(1)
    const chunks = serveNow(source, "replica/r1", first!.message, state)
    other.chunk("replica/r2", chunks[0]!, 1)
    assert.strictEqual(other.taken, 1)
    other.chunk("replica/r3", chunks[1]!, 1)
    other.chunk("replica/r9", chunks[1]!, 1)
    assert.strictEqual(other.taken, 1, "chunks of r3 (not the peer sending) and r9 (no peer) are not taken")
  })

  it("a damaged transfer is rejected, never installed", () => {
    const source = new StateTransfer.Source(30)
    const state = snapshotOf(3).snapshot()
    const sink = new StateTransfer.Sink(["replica/r2"])
    const [ask] = sink.tick(1)
    const chunks = serveNow(source, "replica/r1", ask!.message, state)
    let result: StateTransfer.Received | undefined
    let pending = chunks.map((c, i) => (i === 1 ? new Message.StateChunk({ ...c, data: c.data.replace(/x/, "y") }) : c))
    for (let round = 0; round < 100 && result === undefined; round++) {
      const next: Array<Message.StateChunk> = []
      for (const c of pending) {
        const r = sink.chunk("replica/r2", c, 1)
        if (r.received !== undefined) result = r.received
        for (const o of r.send) next.push(...serveNow(source, "replica/r1", o.message, state))
      }
      pending = next
    }
    assert.deepStrictEqual(result, { _tag: "Rejected", reason: "checksum mismatch" })
  })

  it("a peer encodes its state off its loop: it answers a request with a job, every asker waiting meanwhile with the first chunks", () => {
    const peer = new Replica.ReplicaCore("r2", chunked, Kv.machine, Option.some(snapshotOf(20).snapshot()))
    const ask = new Message.StateRequest({ slotOut: 1, chunks: [] })
    peer.stateRequest("replica/r1", ask)
    let ready = peer.out.drain()
    assert.deepStrictEqual(ready.send, [], "no chunk from the loop")
    assert.deepStrictEqual(
      ready.work.map((j) => [j._tag, j.captured.slotOut]),
      [["Encode", 21]]
    )
    const [job] = ready.work
    // a second asker while the encoding is being made waits for it: no second job
    peer.stateRequest("replica/r3", ask)
    peer.stateRequest("replica/r1", ask)
    ready = peer.out.drain()
    assert.deepStrictEqual([ready.send, ready.work], [[], []])
    peer.step(doneOf(job!))
    const sent = peer.out.drain().send
    const text = JSON.stringify(peer.snapshot())
    const count = Math.ceil(text.length / 40)
    assert.deepStrictEqual(
      sent.map((o) => [o.to, (o.message as Message.StateChunk).index]),
      ["replica/r1", "replica/r3"].flatMap((to) =>
        Array.from({ length: Math.min(StateTransfer.PULL, count) }, (_, i) => [to, i])
      ),
      "each asker gets the first chunks once"
    )
    const first = sent[0]!.message as Message.StateChunk
    assert.deepStrictEqual(first.transfer, { slotOut: 21, checksum: zlib.crc32(text) })
    assert.strictEqual(first.count, count)
    // the next asker is served at once from the same encoding
    peer.stateRequest("replica/r4", ask)
    ready = peer.out.drain()
    assert.deepStrictEqual(ready.work, [])
    assert.strictEqual(ready.send.length, Math.min(StateTransfer.PULL, count))
  })

  it("a complete transfer whose text is JSON but no snapshot is rejected, whatever field is missing or wrong", () => {
    const receive = (text: string) => {
      const sink = new StateTransfer.Sink(["replica/r2"])
      sink.tick(1)
      const chunk = new Message.StateChunk({
        transfer: { slotOut: 3, checksum: zlib.crc32(text) },
        index: 0,
        count: 1,
        data: text
      })
      return sink.chunk("replica/r2", chunk, 1).received
    }
    const good = { slotOut: 3, state: { revision: 0, entries: [] }, clients: [] }
    assert.strictEqual(receive(JSON.stringify(good))?._tag, "Snapshot")
    for (const bad of [
      { slotOut: 3, clients: [] },
      { ...good, slotOut: 0 },
      { ...good, clients: {} },
      { ...good, digestBytes: -1 },
      [good]
    ]) {
      const r = receive(JSON.stringify(bad))
      assert.strictEqual(r?._tag, "Rejected", JSON.stringify(bad))
      if (r?._tag === "Rejected") assert.include(r.reason, "not a snapshot")
    }
  })

  it("a copy begins with a peer other than the one beside the active leader, and falls back to it", () => {
    const sink = new StateTransfer.Sink(["replica/r2", "replica/r3"])
    const [first] = sink.tick(1, "replica/r2")
    assert.strictEqual(first?.to, "replica/r3", "r2's process serves the writes")
    let asked: Array<string> = []
    for (let i = 0; i < 6; i++) asked = sink.tick(1, "replica/r2").map((o) => o.to)
    assert.deepStrictEqual(asked, ["replica/r2"], "r3 sent nothing: r2 after all")
    const alone = new StateTransfer.Sink(["replica/r2"])
    assert.deepStrictEqual(
      alone.tick(1, "replica/r2").map((o) => o.to),
      ["replica/r2"],
      "the only peer is asked, busy or not"
    )
  })

  it("an encoding asked of the host and never handed back is asked again once it is overdue", () => {
    let now = 0
    const source = new StateTransfer.Source(40)
    const ask = new Message.StateRequest({ slotOut: 1, chunks: [] })
    const own = () => ({ slotOut: 9, floor: 1, now })
    assert.isTrue(source.serve("replica/r1", ask, own()).encode)
    now += 5_000
    assert.isFalse(source.serve("replica/r1", ask, own()).encode, "still being made")
    now += 6_000
    assert.isTrue(source.serve("replica/r1", ask, own()).encode, "dropped by the host's worker, or lost: asked again")
    // an encoding older than the one served is not taken
    assert.lengthOf(source.prepared(9, { chunks: ["{}"], checksum: zlib.crc32("{}") }, now), 1)
    assert.deepStrictEqual(source.prepared(8, { chunks: ["[]"], checksum: 0 }, now), [])
    const [chunk] = source.serve("replica/r5", ask, own()).chunks
    assert.deepStrictEqual(chunk?.transfer, { slotOut: 9, checksum: zlib.crc32("{}") })
  })

  it("a transfer's chunks spell the snapshot's JSON, whatever the chunk size, and its CRC-32 is the whole text's", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ unit: "binary", maxLength: 40 }), fc.string({ unit: "binary", maxLength: 90 })), {
          maxLength: 30
        }),
        fc.integer({ min: 1, max: 70 }),
        (entries, chunkChars) => {
          const r = new Replica.ReplicaCore("r2", config, Kv.machine, Option.none())
          for (const [i, [key, value]] of entries.entries()) r.decision(i + 1, batch(cmd("c", i + 1, kv(key, value))))
          r.drain()
          const snapshot = r.snapshot()
          const encoding = runToEnd(StateTransfer.encodeForTransfer(snapshot, chunkChars))
          const text = JSON.stringify(snapshot)
          assert.strictEqual(encoding.chunks.join(""), text)
          assert.isTrue(encoding.chunks.every((c, i, all) => c.length === chunkChars || i === all.length - 1))
          assert.strictEqual(encoding.checksum, zlib.crc32(text))
        }
      ),
      { numRuns: 60 }
    )
  })
})

describe("client table", () => {
  it("remembers results until the client acknowledges them", () => {
    const t = new ClientTable.ClientTable()
    assert.isUndefined(t.lookup("c", 1))
    t.record("c", 1, 0, { slot: 1, result: "a" })
    t.record("c", 2, 0, { slot: 2, result: "b" })
    assert.deepStrictEqual(t.lookup("c", 1), { slot: 1, result: "a" })
    t.record("c", 3, 2, { slot: 3, result: "c" })
    assert.strictEqual(t.lookup("c", 1), "acked", "forgotten but known performed")
    assert.deepStrictEqual(t.lookup("c", 2), { slot: 2, result: "b" })
    assert.isFalse(t.isPerformed("c", 4))
    const back = ClientTable.ClientTable.fromSnapshot(t.toSnapshot())
    assert.deepStrictEqual(back.toSnapshot(), t.toSnapshot())
  })

  it("answers every lookup as a table that keeps every outcome would, however acked moves", () => {
    // the model: every outcome ever recorded, and the highest acked seen, per client
    const records = fc.array(
      fc.record({
        client: fc.constantFrom("a", "b"),
        seq: fc.integer({ min: 1, max: 60 }),
        ackedStep: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 80 }))
      }),
      { maxLength: 120 }
    )
    fc.assert(
      fc.property(records, (rs) => {
        const t = new ClientTable.ClientTable()
        const acked = new Map<string, number>()
        const outcomes = new Map<string, ClientTable.Outcome>()
        for (const [i, r] of rs.entries()) {
          // a replica records a command only when the table says it was not performed
          if (t.isPerformed(r.client, r.seq)) continue
          const a = Math.min(r.seq, (acked.get(r.client) ?? 0) + r.ackedStep)
          const outcome = { slot: i + 1, result: `${r.client}${r.seq}` }
          t.record(r.client, r.seq, a, outcome)
          outcomes.set(`${r.client}#${r.seq}`, outcome)
          acked.set(r.client, Math.max(acked.get(r.client) ?? 0, a))
          for (const client of ["a", "b"]) {
            for (let seq = 1; seq <= 60; seq++) {
              const expected = seq < (acked.get(client) ?? 0) ? "acked" : outcomes.get(`${client}#${seq}`)
              assert.deepStrictEqual(t.lookup(client, seq), expected)
            }
          }
        }
        // what it keeps is bounded by what is not acked yet
        for (const entry of t.toSnapshot()) for (const r of entry.results) assert.isAtLeast(r.seq, entry.acked)
      }),
      { numRuns: 300 }
    )
  })
})

describe("leader liveness", () => {
  const settings = { initialMs: 100, maxMs: 800 }
  const hb = (round: number, decided: number) =>
    new Message.Heartbeat({ ballot: b(round, "l2"), active: true, decided, slot: decided, watermark: 1 })

  it("competes when the watched leader falls silent, not while it beats", () => {
    const l = new Liveness.Liveness(settings, 0, () => 0, false)
    assert.isFalse(l.shouldCompete(50))
    l.heartbeat(90, hb(1, 0))
    assert.isFalse(l.shouldCompete(180))
    assert.isTrue(l.shouldCompete(191))
  })

  it("waits twice the longest recent gap between heartbeats when that is longer than its timeout, up to the bound", () => {
    const l = new Liveness.Liveness(settings, 0, () => 0, false)
    // a busy leader beats 150 ms apart: a fixed 100 ms judges it dead after every beat;
    // once more than `outlierGaps` gaps were that long the wait is 300 ms
    l.heartbeat(0, hb(1, 0))
    assert.isTrue(l.shouldCompete(100))
    for (let t = 150; t <= 150 * (Liveness.outlierGaps + 1); t += 150) l.heartbeat(t, hb(1, t))
    assert.strictEqual(150 * (Liveness.outlierGaps + 1), 600)
    assert.isFalse(l.shouldCompete(899))
    assert.isTrue(l.shouldCompete(900), "dead after twice the longest gap")
    // a lone long gap is an outlier: the wait stays at twice 150 ms
    l.heartbeat(1600, hb(1, 1600))
    assert.isFalse(l.shouldCompete(1899))
    assert.isTrue(l.shouldCompete(1900))
    // gaps past half the bound, more than `outlierGaps` of them: the wait stops at the bound
    for (let t = 2600; t <= 1600 + Liveness.outlierGaps * 1000; t += 1000) l.heartbeat(t, hb(1, t))
    const last = 1600 + Liveness.outlierGaps * 1000
    assert.isFalse(l.shouldCompete(last + 799))
    assert.isTrue(l.shouldCompete(last + 800))
    // once the last `recentGaps` gaps are short again, so is the wait
    let t = last
    for (let i = 0; i < Liveness.recentGaps; i++) l.heartbeat((t += 50), hb(1, t))
    assert.isFalse(l.shouldCompete(t + 99))
    assert.isTrue(l.shouldCompete(t + 100))
  })

  it("competes when the watched leader beats but makes no progress while proposals wait (B14)", () => {
    const l = new Liveness.Liveness(settings, 0, () => 0, false)
    for (let t = 10; t <= 400; t += 10) {
      l.heartbeat(t, hb(1, 5)) // alive, decided counter stuck
      if (t === 100) l.proposal(t)
      if (t < 200) assert.isFalse(l.shouldCompete(t), `t=${t}`)
    }
    assert.isTrue(l.shouldCompete(400))
    const healthy = new Liveness.Liveness(settings, 0, () => 0, false)
    for (let t = 10; t <= 400; t += 10) {
      healthy.heartbeat(t, hb(1, t)) // progress
      healthy.proposal(t)
      assert.isFalse(healthy.shouldCompete(t))
    }
  })

  it("after handing over, waits the longest timeout for the successor's phase 1, then judges it by its heartbeats", () => {
    const l = new Liveness.Liveness(settings, 0, () => 0, false)
    l.heartbeat(0, hb(1, 0))
    l.handedOver(10)
    l.proposal(20)
    // the successor scouts without heartbeats: one timeout would have made it compete
    assert.isFalse(l.shouldCompete(500))
    assert.isFalse(l.shouldCompete(809))
    assert.isTrue(l.shouldCompete(810), "a successor that never leads is judged dead after the longest timeout")
    // a successor that leads: back to the usual timeout from its heartbeats
    const m = new Liveness.Liveness(settings, 0, () => 0, false)
    m.handedOver(10)
    m.heartbeat(300, hb(2, 1))
    assert.isFalse(m.shouldCompete(399))
    assert.isTrue(m.shouldCompete(400))
  })

  it("backs off on preemption up to a bound and shrinks on success", () => {
    const l = new Liveness.Liveness(settings, 0, () => 0, true)
    assert.isTrue(l.shouldCompete(0), "the preferred leader starts at once")
    for (let i = 0; i < 10; i++) l.preempted(0, b(i + 1, "l2"))
    assert.strictEqual(l.timeout, 800)
    for (let i = 0; i < 100; i++) l.success()
    assert.strictEqual(l.timeout, 100)
  })
})

describe("role metrics", () => {
  it.effect("a series read from the role's own count: what it holds when exported, gone when the role stops", () =>
    Effect.gen(function* () {
      let performed = 0
      const committed = Metrics.of(Metrics.commandsCommitted, "r-read")
      const scope = yield* Scope.make()
      yield* Metrics.counterFrom(committed, () => performed).pipe(Scope.provide(scope))
      assert.strictEqual((yield* Metric.value(committed)).count, 0)
      performed = 7
      assert.strictEqual((yield* Metric.value(committed)).count, 7, "read when asked, not pushed")
      const exported = (yield* Metric.snapshot).filter((s) => s.attributes?.id === "r-read")
      assert.deepStrictEqual(
        exported.map((s) => s.state),
        [{ count: 7, incremental: true }]
      )
      yield* Scope.close(scope, Exit.void)
      assert.lengthOf(
        (yield* Metric.snapshot).filter((s) => s.attributes?.id === "r-read"),
        0,
        "removed with the role"
      )
    })
  )
})

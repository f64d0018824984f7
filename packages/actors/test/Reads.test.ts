/**
 * Read-index reads (docs/protocol.md#reads), rule by rule on the pure cores: the acceptor
 * answers a confirmation with its promise and writes nothing; the leader answers a read
 * index only when active and only after a majority confirmed, in a round that started
 * after the question arrived, batching questions per round; the replica serves a read only
 * once it applied up to the index, and only the machine's read-only queries.
 */
import { assert, describe, it } from "@effect/vitest"
import { Address, Ballot, ClusterConfig, Command, type Message, Message as M, type Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { Option } from "effect"
import { Acceptor, Leader, Replica } from "@synod/actors"

// read-index rounds for every read: the read-lease rules have their own describe below
const config = ClusterConfig.make({
  acceptors: ["a1", "a2", "a3"],
  leaders: ["l1", "l2"],
  replicas: ["r1", "r2"],
  window: 2,
  batch: { maxSize: 2 },
  reads: { lease: false }
})
const leaseConfig = ClusterConfig.make({ ...config, reads: { lease: true, clockDrift: 0.01 } })
const empty: Storage.AcceptorState = { promised: Ballot.bottom, watermark: 1, accepted: new Map() }

type Sent = { readonly to: string; readonly message: Message.Message }
const sent = <T extends Message.Message["_tag"]>(out: ReadonlyArray<Sent>, tag: T) =>
  out.filter((o) => o.message._tag === tag) as Array<{
    readonly to: string
    readonly message: Extract<Message.Message, { _tag: T }>
  }>

/** A leader `l1` made active at its first ballot, with `slots` re-proposed from the acceptors. */
const activeLeader = (
  options: {
    readonly slots?: number
    readonly staleRead?: boolean
    readonly readLeaseForever?: boolean
    readonly config?: ClusterConfig.ClusterConfig
  } = {}
) => {
  let now = 0
  const leader = new Leader.LeaderCore("l1", options.config ?? config, {
    round: 0,
    now: () => now,
    random: () => 0,
    bugs: { staleRead: options.staleRead === true, readLeaseForever: options.readLeaseForever === true }
  })
  now = 10_000 // past the listening period: it competes at its second tick (the first judges nothing)
  leader.step({ _tag: "Tick" })
  leader.step({ _tag: "Tick" })
  const ballot = leader.ballot
  const pvalues = new Map<number, Command.PValue>()
  for (let s = 1; s <= (options.slots ?? 0); s++) {
    pvalues.set(s, new Command.PValue({ ballot: Ballot.make(0, "l0"), slot: s, value: Command.noop }))
  }
  leader.step({ _tag: "ScoutEnded", outcome: { _tag: "Adopted", ballot, pvalues, watermark: 1 } })
  assert.isTrue(leader.active)
  leader.out.drain()
  return {
    leader,
    ballot,
    advance: (ms: number) => {
      now += ms
    }
  }
}

const ask = (leader: Leader.LeaderCore, replica: string, id: number) =>
  leader.step({ _tag: "Message", from: Address.replica(replica), message: new M.ReadIndex({ id }) })
const confirm = (
  leader: Leader.LeaderCore,
  acceptor: string,
  promise: Ballot.Ballot,
  request: Ballot.Ballot,
  round: number
) =>
  leader.step({
    _tag: "Message",
    from: Address.acceptor(acceptor),
    message: new M.Confirmed({ ballot: promise, request, round })
  })

describe("acceptor: confirmation", () => {
  it("answers a Confirm with its promise as it is, echoing ballot and round, and persists nothing", () => {
    const a = new Acceptor.AcceptorCore(empty)
    a.p1a(Ballot.make(3, "l1"))
    a.out.drain()
    a.step({ from: Address.leader("l2"), message: new M.Confirm({ ballot: Ballot.make(2, "l2"), round: 7 }) })
    const ready = a.out.drain()
    assert.deepStrictEqual(ready.persist, [], "a promise is durable before any reply reveals it: nothing to write")
    const [reply] = sent(ready.send, "Confirmed")
    assert.strictEqual(reply!.to, "leader/l2")
    assert.deepStrictEqual(reply!.message.ballot, Ballot.make(3, "l1"))
    assert.deepStrictEqual(reply!.message.request, Ballot.make(2, "l2"))
    assert.strictEqual(reply!.message.round, 7)
    assert.deepStrictEqual(a.promised, Ballot.make(3, "l1"), "a confirmation never raises the promise")
  })
})

describe("leader: read index", () => {
  it("a passive leader does not answer", () => {
    const leader = new Leader.LeaderCore("l1", config, { round: 0, now: () => 0, random: () => 0 })
    ask(leader, "r1", 1)
    assert.deepStrictEqual(leader.out.drain().send, [])
  })

  it("answers only once a majority confirmed, with the slot after every proposal it knows", () => {
    const { leader, ballot } = activeLeader({ slots: 3 })
    ask(leader, "r1", 41)
    // the index (4) lies beyond the slots whose configuration it knows (known 1 + window 2):
    // no round until a replica's report says slots 1..2 are performed
    assert.deepStrictEqual(sent(leader.out.drain().send, "Confirm"), [], "an index it may not command waits")
    leader.learn(leader.history, 3)
    leader.step({ _tag: "Tick" })
    const confirms = sent(leader.out.drain().send, "Confirm")
    // a bare majority first: none heard from yet, so the first two of the configuration
    assert.deepStrictEqual(
      confirms.map((c) => c.to),
      ["acceptor/a1", "acceptor/a2"]
    )
    const round = confirms[0]!.message.round
    confirm(leader, "a1", ballot, ballot, round)
    assert.deepStrictEqual(sent(leader.out.drain().send, "ReadIndexReply"), [], "one acceptor is no majority")
    confirm(leader, "a1", ballot, ballot, round) // a duplicate counts once
    assert.deepStrictEqual(sent(leader.out.drain().send, "ReadIndexReply"), [])
    // an acceptor that missed the adoption (promise below the ballot) confirms as well:
    // no higher ballot can have a majority without it; and one not asked (a3) counts
    // like any: which acceptors a round asks changes no answer
    confirm(leader, "a3", Ballot.make(0, "l0"), ballot, round)
    const [reply] = sent(leader.out.drain().send, "ReadIndexReply")
    assert.strictEqual(reply!.to, "replica/r1")
    assert.strictEqual(reply!.message.id, 41)
    assert.strictEqual(reply!.message.slot, 4, "slots 1..3 were reported at adoption: a read waits for them")
    assert.deepStrictEqual(reply!.message.ballot, ballot)
  })

  it("counts a new proposal in the index, and ignores answers of another round or ballot", () => {
    const { leader, ballot } = activeLeader()
    leader.step({
      _tag: "Message",
      from: Address.replica("r2"),
      message: new M.Propose({ slot: 5, value: Command.noop })
    })
    leader.out.drain()
    // slots 1..4 performed, as a replica's report says: slot 6's configuration is known
    leader.learn(leader.history, 5)
    ask(leader, "r1", 1)
    const round = sent(leader.out.drain().send, "Confirm")[0]!.message.round
    confirm(leader, "a1", ballot, ballot, round + 1)
    confirm(leader, "a2", ballot, Ballot.make(ballot.round - 1, "l1"), round)
    assert.deepStrictEqual(sent(leader.out.drain().send, "ReadIndexReply"), [])
    confirm(leader, "a1", ballot, ballot, round)
    confirm(leader, "a2", ballot, ballot, round)
    assert.strictEqual(sent(leader.out.drain().send, "ReadIndexReply")[0]!.message.slot, 6)
  })

  it("a promise above its ballot deposes it: no answer, and the round is dropped", () => {
    const { leader, ballot } = activeLeader()
    ask(leader, "r1", 1)
    const round = sent(leader.out.drain().send, "Confirm")[0]!.message.round
    confirm(leader, "a1", ballot, ballot, round)
    confirm(leader, "a2", Ballot.make(ballot.round + 1, "l2"), ballot, round)
    assert.isFalse(leader.active)
    confirm(leader, "a3", ballot, ballot, round)
    assert.deepStrictEqual(sent(leader.out.drain().send, "ReadIndexReply"), [])
  })

  it("questions that arrive during a round wait for the next one, and share it", () => {
    const { leader, ballot } = activeLeader()
    ask(leader, "r1", 1)
    const first = sent(leader.out.drain().send, "Confirm")[0]!.message.round
    ask(leader, "r2", 2)
    ask(leader, "r1", 3)
    ask(leader, "r1", 3) // a resend
    assert.deepStrictEqual(sent(leader.out.drain().send, "Confirm"), [], "one round in flight at a time")
    confirm(leader, "a1", ballot, ballot, first)
    confirm(leader, "a2", ballot, ballot, first)
    const out = leader.out.drain().send
    assert.deepStrictEqual(
      sent(out, "ReadIndexReply").map((r) => r.message.id),
      [1],
      "the round answers only what was asked before it started"
    )
    const second = sent(out, "Confirm")
    assert.strictEqual(second.length, 2, "the next round starts at once, asking a bare majority")
    confirm(leader, "a2", ballot, ballot, second[0]!.message.round)
    confirm(leader, "a3", ballot, ballot, second[0]!.message.round)
    assert.deepStrictEqual(
      sent(leader.out.drain().send, "ReadIndexReply").map((r) => [r.to, r.message.id]),
      [
        ["replica/r2", 2],
        ["replica/r1", 3]
      ]
    )
  })

  it("asks a bare majority first: its own server's acceptor, then those heard from most recently", () => {
    const { leader, ballot, advance } = activeLeader()
    ask(leader, "r1", 1)
    const first = sent(leader.out.drain().send, "Confirm")[0]!.message.round
    confirm(leader, "a2", ballot, ballot, first)
    advance(1)
    confirm(leader, "a3", ballot, ballot, first)
    assert.strictEqual(sent(leader.out.drain().send, "ReadIndexReply").length, 1)
    ask(leader, "r1", 2)
    assert.deepStrictEqual(
      sent(leader.out.drain().send, "Confirm").map((c) => c.to),
      ["acceptor/a3", "acceptor/a2"],
      "a1 never answered: the two heard from, latest first"
    )
    // a leader whose server runs an acceptor asks it first, however long ago it answered
    let now = 0
    const own = new Leader.LeaderCore("a1", ClusterConfig.make({ ...config, leaders: ["a1", "l2"] }), {
      round: 0,
      now: () => now,
      random: () => 0
    })
    now = 10_000 // past the listening period: it competes at its second tick
    own.step({ _tag: "Tick" })
    own.step({ _tag: "Tick" })
    own.step({
      _tag: "ScoutEnded",
      outcome: { _tag: "Adopted", ballot: own.ballot, pvalues: new Map(), watermark: 1 }
    })
    own.out.drain()
    own.step({
      _tag: "Message",
      from: Address.acceptor("a3"),
      message: new M.Confirmed({ ballot: own.ballot, request: own.ballot, round: 1 })
    })
    ask(own, "r1", 3)
    assert.deepStrictEqual(
      sent(own.out.drain().send, "Confirm").map((c) => c.to),
      ["acceptor/a1", "acceptor/a3"]
    )
  })

  it("resends the Confirm to the acceptors that have not confirmed, every retransmit period", () => {
    const { leader, ballot, advance } = activeLeader()
    ask(leader, "r1", 1)
    const round = sent(leader.out.drain().send, "Confirm")[0]!.message.round
    confirm(leader, "a2", ballot, ballot, round)
    leader.out.drain()
    advance(config.timeouts.retransmitMs)
    leader.step({ _tag: "Tick" })
    const again = sent(leader.out.drain().send, "Confirm")
    assert.deepStrictEqual(
      again.map((c) => c.to),
      ["acceptor/a1", "acceptor/a3"]
    )
    assert.isTrue(again.every((c) => c.message.round === round))
  })

  it("the staleRead planted bug answers at once, unconfirmed", () => {
    const { leader } = activeLeader({ slots: 2, staleRead: true })
    ask(leader, "r1", 9)
    const out = leader.out.drain().send
    assert.deepStrictEqual(sent(out, "Confirm"), [])
    assert.strictEqual(sent(out, "ReadIndexReply")[0]!.message.slot, 3)
  })
})

describe("read leases", () => {
  // the acceptors hold others off for leaderTimeoutMs on their clocks; the leader counts
  // on L (1 − ρ) / (1 + ρ) of its own from the round's first Confirm
  const L = leaseConfig.timeouts.leaderTimeoutMs
  const D = (L * (1 - 0.01)) / (1 + 0.01)
  /** A leased leader: a round a1 and a2 granted, started at time 10,000 + 5 (answered 5 ms later). */
  const leased = (options: { readonly readLeaseForever?: boolean } = {}) => {
    const l = activeLeader({ config: leaseConfig, ...options })
    l.advance(5)
    ask(l.leader, "r1", 1)
    const round = sent(l.leader.out.drain().send, "Confirm")[0]!.message.round
    l.advance(5)
    confirm(l.leader, "a1", l.ballot, l.ballot, round)
    confirm(l.leader, "a2", l.ballot, l.ballot, round)
    assert.strictEqual(sent(l.leader.out.drain().send, "ReadIndexReply").length, 1)
    return l
  }

  it("after a round a majority granted, answers at once, with the index as it is then", () => {
    const { leader } = leased()
    ask(leader, "r2", 2)
    const out = leader.out.drain().send
    assert.deepStrictEqual(sent(out, "Confirm"), [], "no round trip to the acceptors")
    assert.deepStrictEqual(
      sent(out, "ReadIndexReply").map((r) => [r.to, r.message.id, r.message.slot]),
      [["replica/r2", 2, 1]]
    )
    leader.step({
      _tag: "Message",
      from: Address.replica("r2"),
      message: new M.Propose({ slot: 1, value: Command.noop })
    })
    leader.out.drain()
    ask(leader, "r2", 3)
    assert.strictEqual(sent(leader.out.drain().send, "ReadIndexReply")[0]!.message.slot, 2, "a new proposal counts")
  })

  it("renews half a lease ahead while reads come, and runs out D after the round's first Confirm", () => {
    const { leader, advance, ballot } = leased()
    // the round started 5 ms before the answers: the lease ends at start + D
    advance(D / 2 - 6)
    ask(leader, "r1", 2)
    let out = leader.out.drain().send
    assert.strictEqual(sent(out, "ReadIndexReply").length, 1)
    assert.deepStrictEqual(sent(out, "Confirm"), [], "more than half a lease left: no renewal yet")
    advance(2)
    ask(leader, "r1", 3)
    out = leader.out.drain().send
    assert.strictEqual(sent(out, "ReadIndexReply").length, 1, "still leased")
    const renewal = sent(out, "Confirm")
    assert.strictEqual(renewal.length, 2, "less than half a lease left: a round with no question waiting")
    // the renewal goes unanswered: the lease runs out at start + D, to the millisecond
    advance(D / 2 - 2)
    ask(leader, "r2", 4)
    assert.strictEqual(sent(leader.out.drain().send, "ReadIndexReply").length, 1, "1 ms before the end")
    advance(1)
    ask(leader, "r2", 5)
    assert.deepStrictEqual(sent(leader.out.drain().send, "ReadIndexReply"), [], "over: the question waits")
    // the renewal round's answers come: they answer the question and lease again
    const round = renewal[0]!.message.round
    confirm(leader, "a1", ballot, ballot, round)
    confirm(leader, "a3", ballot, ballot, round)
    out = leader.out.drain().send
    assert.deepStrictEqual(
      sent(out, "ReadIndexReply").map((r) => r.message.id),
      [5]
    )
  })

  it("an acceptor whose promise is below the ballot confirms but grants nothing", () => {
    const { leader, ballot } = activeLeader({ config: leaseConfig })
    ask(leader, "r1", 1)
    const round = sent(leader.out.drain().send, "Confirm")[0]!.message.round
    confirm(leader, "a1", ballot, ballot, round)
    confirm(leader, "a2", Ballot.make(0, "l0"), ballot, round)
    assert.strictEqual(sent(leader.out.drain().send, "ReadIndexReply").length, 1, "confirmed")
    ask(leader, "r1", 2)
    const out = leader.out.drain().send
    assert.deepStrictEqual(sent(out, "ReadIndexReply"), [], "no lease: a majority did not grant it")
    assert.strictEqual(sent(out, "Confirm").length, 2)
  })

  it("stepping down ends it, and with leases off every read pays a round", () => {
    const { leader, ballot } = leased()
    leader.preempted(Ballot.make(ballot.round + 1, "l2"))
    ask(leader, "r1", 2)
    assert.deepStrictEqual(leader.out.drain().send, [], "passive: no answer")
    const off = activeLeader()
    ask(off.leader, "r1", 1)
    const round = sent(off.leader.out.drain().send, "Confirm")[0]!.message.round
    confirm(off.leader, "a1", off.ballot, off.ballot, round)
    confirm(off.leader, "a2", off.ballot, off.ballot, round)
    off.leader.out.drain()
    ask(off.leader, "r1", 2)
    assert.deepStrictEqual(sent(off.leader.out.drain().send, "ReadIndexReply"), [])
  })

  it("the readLeaseForever planted bug answers at once long after the lease ran out", () => {
    const { leader, advance } = leased({ readLeaseForever: true })
    advance(100 * L)
    ask(leader, "r1", 2)
    assert.strictEqual(sent(leader.out.drain().send, "ReadIndexReply").length, 1)
  })

  describe("acceptor", () => {
    const b1 = Ballot.make(1, "l1")
    const b2 = Ballot.make(2, "l2")
    const acceptor = (
      state: Storage.AcceptorState,
      readLeases = true,
      planted: { readonly confirmGrantsNothing?: boolean; readonly restartHoldsNothing?: boolean } = {}
    ) => {
      let now = 1000
      const a = new Acceptor.AcceptorCore(state, { leaseMs: L, readLeases, now: () => now, ...planted })
      return { a, advance: (ms: number) => (now += ms) }
    }
    const confirmAt = (a: Acceptor.AcceptorCore, ballot: Ballot.Ballot) => {
      a.step({ from: Address.leader(ballot.leader), message: new M.Confirm({ ballot, round: 1 }) })
      a.out.drain()
    }

    it("confirming the ballot it promised holds every other leader's P1a off for a lease", () => {
      const { a, advance } = acceptor(empty)
      a.p1a(b1)
      advance(10 * L) // long after: no lease from the promise itself
      confirmAt(a, b1)
      advance(L - 1)
      assert.deepStrictEqual(a.p1a(b2).ballot, b1, "refused while the lease runs")
      assert.deepStrictEqual(a.p1a(Ballot.make(3, "l1")).ballot, Ballot.make(3, "l1"), "its own leader's is not")
      confirmAt(a, Ballot.make(3, "l1"))
      advance(L)
      assert.deepStrictEqual(a.p1a(b2).ballot, Ballot.make(3, "l1"), "the lease ran out... not yet: renewed")
      advance(1)
      assert.deepStrictEqual(a.p1a(Ballot.make(4, "l2")).ballot, Ballot.make(4, "l2"), "over: promised")
    })

    it("a Confirm above its promise grants nothing, nor with read leases off", () => {
      const { a, advance } = acceptor(empty)
      a.p1a(b1)
      advance(10 * L)
      confirmAt(a, Ballot.make(5, "l3"))
      assert.deepStrictEqual(a.p1a(b2).ballot, b2)
      const off = acceptor(empty, false)
      off.a.p1a(b1)
      off.advance(10 * L)
      confirmAt(off.a, b1)
      assert.deepStrictEqual(off.a.p1a(b2).ballot, b2)
    })

    it("restarted with a promise, it holds other leaders off for a lease from its start; never promised, not", () => {
      const { a, advance } = acceptor({ promised: b1, watermark: 1, accepted: new Map() })
      assert.deepStrictEqual(a.p1a(b2).ballot, b1, "it may have granted a lease it no longer remembers")
      advance(L)
      assert.deepStrictEqual(a.p1a(b2).ballot, b2)
      const fresh = acceptor(empty)
      assert.deepStrictEqual(fresh.a.p1a(b2).ballot, b2)
    })

    // the switches the simulator's "rival" fault is shown to catch (plantedBugs.ts): each
    // undoes exactly one of the two holds above
    it("the confirmGrantsNothing planted bug: a Confirm at its promise holds no one off; a restart still does", () => {
      const { a, advance } = acceptor(empty, true, { confirmGrantsNothing: true })
      a.p1a(b1)
      advance(10 * L)
      confirmAt(a, b1)
      assert.deepStrictEqual(a.p1a(b2).ballot, b2)
      const restarted = acceptor({ promised: b1, watermark: 1, accepted: new Map() }, true, {
        confirmGrantsNothing: true
      })
      assert.deepStrictEqual(restarted.a.p1a(b2).ballot, b1)
    })

    it("the restartHoldsNothing planted bug: restarted with a promise, it promises another leader at once; a Confirm still holds", () => {
      const { a, advance } = acceptor({ promised: b1, watermark: 1, accepted: new Map() }, true, {
        restartHoldsNothing: true
      })
      assert.deepStrictEqual(a.p1a(b2).ballot, b2)
      advance(10 * L)
      confirmAt(a, b2)
      assert.deepStrictEqual(a.p1a(Ballot.make(3, "l1")).ballot, b2, "the Confirm's hold is untouched")
    })
  })
})

describe("replica: reads", () => {
  const put = (seq: number, value: string) =>
    new Command.Batch({
      commands: [new Command.Command({ client: "w", seq, acked: 0, op: { _tag: "Put", key: "k", value } })]
    })
  const read = (r: Replica.ReplicaCore<Kv.State, Kv.Command, Kv.Result>, id: number, op: unknown) =>
    r.step({ _tag: "Message", from: Address.client("c"), message: new M.Read({ client: "c", id, op: op as never }) })
  const reply = (r: Replica.ReplicaCore<Kv.State, Kv.Command, Kv.Result>, id: number, slot: number) =>
    r.step({
      _tag: "Message",
      from: Address.leader("l1"),
      message: new M.ReadIndexReply({ id, slot, ballot: Ballot.make(1, "l1") })
    })

  it("asks for a read index, waits until it applied up to it, then answers from its state", () => {
    const r = new Replica.ReplicaCore("r1", config, Kv.machine, Option.none(), { random: () => 0.5 })
    read(r, 1, { _tag: "Get", key: "k" })
    const [question] = sent(r.drain(), "ReadIndex")
    assert.isDefined(question)
    read(r, 2, { _tag: "Get", key: "k" })
    assert.deepStrictEqual(sent(r.drain(), "ReadIndex"), [], "one question in flight; the next read waits for it")
    reply(r, question!.message.id + 1, 1) // not the question in flight: ignored
    assert.deepStrictEqual(sent(r.drain(), "ReadResponse"), [])
    reply(r, question!.message.id, 2)
    const out = r.drain()
    assert.deepStrictEqual(sent(out, "ReadResponse"), [], "slot 1 is not applied yet")
    assert.strictEqual(sent(out, "ReadIndex").length > 0, true, "the read that waited is asked about now")
    r.decision(1, put(1, "v1"))
    const [answer] = sent(r.drain(), "ReadResponse")
    assert.strictEqual(answer!.to, "client/c")
    assert.strictEqual(answer!.message.id, 1)
    assert.strictEqual(answer!.message.slot, 1)
    assert.deepStrictEqual(answer!.message.result, { _tag: "Value", value: "v1", version: 1 })
  })

  it("answers a command that is not a read-only query with an error, and changes nothing", () => {
    const r = new Replica.ReplicaCore("r1", config, Kv.machine, Option.none())
    read(r, 1, { _tag: "Put", key: "k", value: "v" })
    const id = sent(r.drain(), "ReadIndex")[0]!.message.id
    reply(r, id, 1)
    const [answer] = sent(r.drain(), "ReadResponse")
    assert.include(answer!.message.error!, "not a read-only query")
    assert.strictEqual(r.slotOut, 1)
    assert.strictEqual(Kv.summary(r.state).revision, 0)
  })

  it("question ids start at a random base per incarnation, so an earlier life's answers do not match", () => {
    const first = new Replica.ReplicaCore("r1", config, Kv.machine, Option.none(), { random: () => 0.25 })
    const second = new Replica.ReplicaCore("r1", config, Kv.machine, Option.none(), { random: () => 0.75 })
    read(first, 1, { _tag: "Get", key: "k" })
    read(second, 1, { _tag: "Get", key: "k" })
    const a = sent(first.drain(), "ReadIndex")[0]!.message.id
    const b = sent(second.drain(), "ReadIndex")[0]!.message.id
    assert.notStrictEqual(a, b)
    reply(second, a, 1)
    assert.deepStrictEqual(sent(second.drain(), "ReadResponse"), [])
  })

  it("holds a bounded number of reads: beyond it a read is dropped (its client retries)", () => {
    const r = new Replica.ReplicaCore("r1", config, Kv.machine, Option.none())
    for (let i = 1; i <= Replica.maxWaitingReads + 1; i++) read(r, i, { _tag: "Get", key: "k" })
    assert.strictEqual(r.readsDropped, 1)
    // the first read went with the first question, the others wait for the second
    reply(r, sent(r.drain(), "ReadIndex")[0]!.message.id, 1)
    const first = r.drain()
    assert.strictEqual(sent(first, "ReadResponse").length, 1)
    reply(r, sent(first, "ReadIndex")[0]!.message.id, 1)
    assert.strictEqual(sent(r.drain(), "ReadResponse").length, Replica.maxWaitingReads - 1)
    read(r, 1, { _tag: "Get", key: "k" })
    assert.strictEqual(r.readsDropped, 1, "served reads make room")
  })

  it("resends an unanswered question to every leader, and asks for the slots below an index it waits for", () => {
    let now = 0
    const r = new Replica.ReplicaCore("r1", config, Kv.machine, Option.none(), { now: () => now })
    read(r, 1, { _tag: "Get", key: "k" })
    const id = sent(r.drain(), "ReadIndex")[0]!.message.id
    now += config.timeouts.retransmitMs
    r.step({ _tag: "Tick" })
    const resent = sent(r.drain(), "ReadIndex")
    assert.deepStrictEqual(
      resent.map((q) => [q.to, q.message.id]),
      [
        ["leader/l1", id],
        ["leader/l2", id]
      ]
    )
    reply(r, id, 3)
    r.drain()
    r.step({ _tag: "Tick" })
    // slots 1 and 2 will be decided (the leader knew of them): asked for like known decisions
    assert.deepStrictEqual(
      sent(r.drain(), "Propose")
        .filter((p) => p.to === "leader/l1")
        .map((p) => [p.message.slot, p.message.value._tag]),
      [
        [1, "Noop"],
        [2, "Noop"]
      ]
    )
  })
})

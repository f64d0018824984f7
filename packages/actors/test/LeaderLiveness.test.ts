/**
 * One real leader on the in-memory bus, its acceptors and rivals played by the test: how
 * it backs off, when it yields, and when it steps down. Real time with short timeouts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Address, Ballot, ClusterConfig, Command, InMemoryBus, Message, Storage, Transport } from "@synod/core"
import { Kv } from "@synod/kv"
import { Effect, Layer, Option, Queue } from "effect"
import { Leader, Liveness, Replica } from "@synod/actors"

const config = ClusterConfig.make({
  acceptors: ["a1", "a2", "a3"],
  leaders: ["l1", "l2"],
  replicas: ["r1"],
  window: 64,
  // the abdication bound (maxLeaderTimeoutMs) well above the rest: a loaded machine that
  // answers slowly must not make a leader abdicate where a test expects another step-down
  timeouts: { retransmitMs: 1000, heartbeatMs: 10, leaderTimeoutMs: 60, maxLeaderTimeoutMs: 1500 }
})

const env = Layer.merge(InMemoryBus.layer(), Storage.layerMemory())

/** Plays the acceptors: their mailboxes, and a way to answer as one of them. */
const acceptors = Effect.gen(function* () {
  const transport = yield* Transport.Transport
  const boxes = yield* Effect.forEach(config.acceptors, (a) => transport.listen(Address.acceptor(a)))
  const reply = (from: string, message: Message.Message) =>
    transport.send("leader/l1", new Message.Envelope({ from: Address.acceptor(from), to: "leader/l1", message }))
  /** Waits for the next message of `tag` at acceptor `i`. */
  const next = <T extends Message.Message["_tag"]>(i: number, tag: T) =>
    Effect.gen(function* () {
      for (;;) {
        const e = yield* Queue.take(boxes[i]!)
        if (e.message._tag === tag) return e.message as Extract<Message.Message, { _tag: T }>
      }
    })
  return { reply, next, transport }
})

/** Starts l1 and has a majority promise its first ballot: it is active. */
const activeLeader = Effect.gen(function* () {
  const a = yield* acceptors
  const leader = yield* Leader.run("l1", config)
  const p1a = yield* a.next(0, "P1a")
  for (const id of ["a1", "a2"])
    yield* a.reply(id, new Message.P1b({ ballot: p1a.ballot, request: p1a.ballot, accepted: [] }))
  for (let i = 0; i < 100 && !(yield* leader.status).active; i++) yield* Effect.sleep(5)
  assert.isTrue((yield* leader.status).active)
  return { ...a, leader, ballot: p1a.ballot }
})

describe("a leader's liveness", () => {
  it.live("a step-down backs off once per ballot, however many commanders report the preemption", () =>
    Effect.gen(function* () {
      const { leader, ballot, reply, next, transport } = yield* activeLeader
      const before = (yield* leader.status).timeoutMs
      // 40 commanders in flight
      for (let slot = 1; slot <= 40; slot++) {
        const value = new Command.Batch({
          commands: [new Command.Command({ client: "c", seq: slot, acked: 0, op: null })]
        })
        yield* transport.send(
          "leader/l1",
          new Message.Envelope({ from: "replica/r1", to: "leader/l1", message: new Message.Propose({ slot, value }) })
        )
      }
      const higher = Ballot.make(ballot.round + 5, "l2")
      // every acceptor rejects every P2a: 120 preemption reports
      for (let n = 0; n < 40; n++) {
        const p2a = yield* next(0, "P2a")
        for (const id of config.acceptors)
          yield* reply(id, new Message.P2b({ ballot: higher, request: p2a.ballot, slot: p2a.slot }))
      }
      // every report handled (polling: the machine may be busy), then one back-off only
      for (let i = 0; i < 200 && (yield* leader.status).active; i++) yield* Effect.sleep(10)
      yield* Effect.sleep(50)
      const after = yield* leader.status
      assert.isFalse(after.active)
      assert.strictEqual(after.timeoutMs, Math.min(2 * before, config.timeouts.maxLeaderTimeoutMs))
    }).pipe(Effect.scoped, Effect.provide(env))
  )

  it.live("an active leader that hears a higher active ballot steps down at once", () =>
    Effect.gen(function* () {
      const { leader, ballot, transport } = yield* activeLeader
      const hb = new Message.Heartbeat({
        ballot: Ballot.make(ballot.round + 1, "l2"),
        active: true,
        decided: 0,
        slot: 0,
        watermark: 1
      })
      yield* transport.send("leader/l1", new Message.Envelope({ from: "leader/l2", to: "leader/l1", message: hb }))
      for (let i = 0; i < 100 && (yield* leader.status).active; i++) yield* Effect.sleep(10)
      assert.isFalse((yield* leader.status).active)
    }).pipe(Effect.scoped, Effect.provide(env))
  )

  it.live("an active leader that hears no majority for the longest timeout while busy steps down", () =>
    Effect.gen(function* () {
      const { leader, transport } = yield* activeLeader
      const value = new Command.Batch({ commands: [new Command.Command({ client: "c", seq: 1, acked: 0, op: null })] })
      yield* transport.send(
        "leader/l1",
        new Message.Envelope({ from: "replica/r1", to: "leader/l1", message: new Message.Propose({ slot: 1, value }) })
      )
      // no acceptor answers its P2a; the bound is maxLeaderTimeoutMs (1500 ms here)
      yield* Effect.sleep(100)
      assert.isTrue((yield* leader.status).active, "still within the bound")
      for (let i = 0; i < 300 && (yield* leader.status).active; i++) yield* Effect.sleep(10)
      assert.isFalse((yield* leader.status).active, "stepped down")
    }).pipe(Effect.scoped, Effect.provide(env))
  )

  it.live("an idle leader keeps leading without answers: it has nothing to wait for", () =>
    Effect.gen(function* () {
      const { leader } = yield* activeLeader
      yield* Effect.sleep(400)
      assert.isTrue((yield* leader.status).active)
    }).pipe(Effect.scoped, Effect.provide(env))
  )

  it.live("a starting leader listens first and defers to a working leader instead of deposing it", () =>
    Effect.gen(function* () {
      const transport = yield* Transport.Transport
      const a1 = yield* transport.listen("acceptor/a1")
      // l2 leads and beats; l1 (the preferred leader) starts in the middle of it
      const beat = Effect.gen(function* () {
        const hb = new Message.Heartbeat({
          ballot: Ballot.make(3, "l2"),
          active: true,
          decided: 0,
          slot: 0,
          watermark: 1
        })
        for (;;) {
          yield* transport.send("leader/l1", new Message.Envelope({ from: "leader/l2", to: "leader/l1", message: hb }))
          yield* Effect.sleep(10)
        }
      })
      yield* Effect.forkScoped(beat)
      yield* Effect.sleep(15)
      // a listening period of 100 ms (2 heartbeats) against beats every 10 ms: room for a busy machine
      const slow = ClusterConfig.make({ ...config, timeouts: { ...config.timeouts, heartbeatMs: 50 } })
      yield* Leader.run("l1", slow)
      yield* Effect.sleep(200)
      const sent = yield* Queue.clear(a1)
      assert.deepStrictEqual(
        sent.filter((e) => e.message._tag === "P1a"),
        [],
        "no scout while l2 beats"
      )
    }).pipe(Effect.scoped, Effect.provide(env))
  )
})

describe("the failure detector", () => {
  const settings = { initialMs: 100, maxMs: 1000 }

  it("suspects a leader that makes no progress after a jittered wait, so rivals start apart", () => {
    const waits = [0, 0.5, 0.99].map((draw) => {
      const live = new Liveness.Liveness(settings, 0, () => draw, false)
      live.heartbeat(
        0,
        new Message.Heartbeat({ ballot: Ballot.make(1, "l2"), active: true, decided: 1, slot: 1, watermark: 1 })
      )
      live.proposal(0)
      let t = 0
      while (live.progressing(t)) t++
      return t
    })
    assert.deepStrictEqual(waits, [100, 125, 149])
  })

  it("staggers candidates by their turn after the failed leader, a timeout apart", () => {
    const leaders = ["s1", "s2", "s3", "s4", "s5"]
    assert.deepStrictEqual(
      leaders.map((l) => Leader.turnAfter(leaders, "s2", l)),
      [3, 4, 0, 1, 2],
      "s3 goes first after s2, then s4, s5, s1"
    )
    assert.deepStrictEqual(
      leaders.map((l) => Leader.turnAfter(leaders, "", l)),
      [0, 1, 2, 3, 4],
      "no leader known: the configured order"
    )
    const silence = (self: string, draw: number) => {
      const live = new Liveness.Liveness(
        { ...settings, turn: (w) => Leader.turnAfter(leaders, w.leader, self) },
        0,
        () => draw,
        false
      )
      live.heartbeat(
        0,
        new Message.Heartbeat({ ballot: Ballot.make(1, "s2"), active: true, decided: 0, slot: 0, watermark: 1 })
      )
      let t = 0
      while (!live.shouldCompete(t)) t++
      return t
    }
    const order = ["s3", "s4", "s5", "s1"]
    assert.deepStrictEqual(
      order.map((l) => silence(l, 0)),
      [100, 200, 300, 400]
    )
    // even with the largest jitter, each turn's window ends half a timeout before the next
    // one's begins: time for the leader before to adopt and be heard
    assert.deepStrictEqual(
      order.map((l) => silence(l, 0.99)),
      [149, 249, 349, 449]
    )
  })

  it("a timeout a preemption doubled comes back down while the watched leader decides, not while it stands still", () => {
    const live = new Liveness.Liveness(settings, 0, () => 0, false)
    const beat = (t: number, decided: number) =>
      live.heartbeat(
        t,
        new Message.Heartbeat({ ballot: Ballot.make(2, "l2"), active: true, decided, slot: decided, watermark: 1 })
      )
    live.preempted(0, Ballot.make(2, "l2"))
    assert.strictEqual(live.timeout, 200)
    beat(10, 5)
    beat(20, 5)
    beat(30, 5)
    assert.strictEqual(live.timeout, 200, "a new ballot and heartbeats without decisions leave it")
    for (let i = 1; i <= 4; i++) beat(30 + 10 * i, 5 + i)
    assert.strictEqual(live.timeout, 150, "an eighth of the initial timeout per heartbeat whose counter moved")
    for (let i = 5; i <= 20; i++) beat(30 + 10 * i, 5 + i)
    assert.strictEqual(live.timeout, 100, "never below the initial timeout")
  })

  it("the preferred leader competes only after its listening period", () => {
    const live = new Liveness.Liveness({ ...settings, listenMs: 20 }, 0, () => 0, true)
    assert.isFalse(live.shouldCompete(19))
    assert.isTrue(live.shouldCompete(20))
  })
})

describe("a replica", () => {
  it("follows the highest active ballot it hears, and forgets a leader silent for a leader timeout", () => {
    let now = 0
    const r = new Replica.ReplicaCore("r1", config, Kv.machine, Option.none(), { now: () => now })
    const hb = (round: number, leader: string, active = true) =>
      new Message.Heartbeat({ ballot: Ballot.make(round, leader), active, decided: 0, slot: 0, watermark: 1 })
    r.heartbeat(hb(3, "l2"))
    assert.strictEqual(r.leader, "leader/l2")
    // a deposed leader that has not noticed yet still beats as active, at a lower ballot
    r.heartbeat(hb(2, "l1"))
    assert.strictEqual(r.leader, "leader/l2")
    r.heartbeat(hb(4, "l1"))
    assert.strictEqual(r.leader, "leader/l1")
    // a leader that says it stepped down is no longer followed
    r.heartbeat(hb(4, "l1", false))
    assert.isUndefined(r.leader)
    r.heartbeat(hb(5, "l2"))
    now = config.timeouts.leaderTimeoutMs + 1
    assert.isUndefined(r.leader, "silent for a leader timeout: proposals go to every leader again")
  })

  it("resends to the active leader only while slots get decided, to every leader when none was, and at once to a new leader", () => {
    let now = 0
    const timing = ClusterConfig.make({
      ...config,
      timeouts: { retransmitMs: 50, heartbeatMs: 10, leaderTimeoutMs: 300, maxLeaderTimeoutMs: 5000 }
    })
    const r = new Replica.ReplicaCore("r1", timing, Kv.machine, Option.none(), { now: () => now })
    const hb = (round: number, leader: string) =>
      new Message.Heartbeat({ ballot: Ballot.make(round, leader), active: true, decided: 0, slot: 0, watermark: 1 })
    const put = (seq: number) =>
      new Command.Command({ client: "c", seq, acked: 0, op: { _tag: "Put", key: "k", value: `${seq}` } })
    const proposals = () =>
      r
        .drain()
        .filter((o) => o.message._tag === "Propose")
        .map((o) => `${o.to}:${(o.message as Message.Propose).slot}`)
    r.heartbeat(hb(1, "l1"))
    r.request(put(1))
    r.request(put(2))
    assert.deepStrictEqual(proposals(), ["leader/l1:1", "leader/l1:2"])
    // slot 1 is decided: decisions flow, so slot 2 is resent to l1 alone
    now = 50
    r.decision(1, new Command.Batch({ commands: [put(1)] }))
    r.drain()
    now = timing.timeouts.retransmitMs
    r.heartbeat(hb(1, "l1"))
    r.tick()
    assert.deepStrictEqual(proposals(), ["leader/l1:2"])
    // l2 takes over: it gets slot 2 at once
    r.heartbeat(hb(2, "l2"))
    assert.deepStrictEqual(proposals(), ["leader/l2:2"])
    // nothing decided for a leader timeout: every leader hears it
    now = 50 + timing.timeouts.leaderTimeoutMs
    r.heartbeat(hb(2, "l2"))
    r.tick()
    assert.deepStrictEqual(proposals().sort(), ["leader/l1:2", "leader/l2:2"])
  })
})

/**
 * Every message fits the transport's limit: P1b pages, batches capped by bytes, commands
 * refused at intake, answers too large to send, and the acceptor's lease renewed only by
 * new work.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  Address,
  Ballot,
  ClusterConfig,
  Codec,
  Command,
  InMemoryBus,
  Limits,
  Message,
  Storage,
  Transport
} from "@synod/core"
import { Kv } from "@synod/kv"
import { Effect, Exit, Fiber, Layer, Option, Queue } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { Acceptor, Client, Replica, Scout, Server } from "@synod/actors"
import { recording } from "./Recording.ts"

const b = (round: number, leader = "l1") => Ballot.make(round, leader)
const empty: Storage.AcceptorState = { promised: Ballot.bottom, watermark: 1, accepted: new Map() }
const put = (client: string, seq: number, value: string) =>
  new Command.Command({ client, seq, acked: 0, op: { _tag: "Put", key: "k", value } })
const batchOf = (...values: Array<string>) => new Command.Batch({ commands: values.map((v, i) => put("c", i + 1, v)) })

/** Every page of `acceptor`'s answer to a P1a at `ballot`, following `next`. */
const pages = (acceptor: Acceptor.AcceptorCore, ballot: Ballot.Ballot, from = 1): Array<Message.P1b> => {
  const out: Array<Message.P1b> = []
  let at: number | undefined = from
  while (at !== undefined) {
    const page = acceptor.p1a(ballot, at)
    out.push(page)
    assert.strictEqual(page.from ?? 1, at, "a page echoes where it starts")
    if (page.next !== undefined) assert.isAbove(page.next, at, "each page advances")
    at = page.next
  }
  return out
}

describe("P1b pages", () => {
  it("hold every pvalue from the asked slot on, in slot order, each page within the limit", () => {
    const limits = Limits.fromMessageBytes(Limits.minMaxMessageBytes)
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 400 }), { maxLength: 60 }),
        fc.array(fc.integer({ min: 0, max: 2000 }), { minLength: 60, maxLength: 60 }),
        fc.integer({ min: 1, max: 200 }),
        (slots, sizes, from) => {
          const a = new Acceptor.AcceptorCore(empty, { pageBytes: limits.pageBytes })
          slots.forEach((slot, i) => {
            // multi-byte text: limits are UTF-8 bytes, not characters
            a.p2a(new Message.P2a({ ballot: b(1), slot, value: batchOf("é".repeat(sizes[i]!)) }))
          })
          const all = pages(a, b(2), from)
          const reported = all.flatMap((p) => p.accepted.map((pv) => pv.slot))
          assert.deepStrictEqual(
            reported,
            slots.filter((s) => s >= from).sort((x, y) => x - y)
          )
          for (const page of all) {
            const envelope = new Message.Envelope({ from: "acceptor/a1", to: "leader/l1", message: page })
            assert.isAtMost(Limits.utf8Bytes(Codec.encode(envelope)), limits.messageBytes)
          }
        }
      )
    )
  })

  it("the planted B18 answers in one page, however large", () => {
    const a = new Acceptor.AcceptorCore(empty)
    for (let slot = 1; slot <= 20; slot++)
      a.p2a(new Message.P2a({ ballot: b(1), slot, value: batchOf("x".repeat(4000)) }))
    const page = a.p1a(b(2))
    assert.strictEqual(page.accepted.length, 20)
    assert.isUndefined(page.next)
  })
})

describe("the acceptor's lease (B15)", () => {
  it("is renewed by new work only, not by a retransmitted P2a", () => {
    let now = 0
    const a = new Acceptor.AcceptorCore(empty, { leaseMs: 100, now: () => now })
    a.p1a(b(1, "l1"))
    a.p2a(new Message.P2a({ ballot: b(1, "l1"), slot: 1, value: Command.noop }))
    now = 60
    // the same P2a again: a leader that sends but cannot hear retransmits it forever
    a.p2a(new Message.P2a({ ballot: b(1, "l1"), slot: 1, value: Command.noop }))
    now = 120
    assert.deepStrictEqual(a.p1a(b(2, "l2")).ballot, b(2, "l2"), "the lease lapsed 100 ms after the new work")
  })

  it("holds off another leader while new work arrives", () => {
    let now = 0
    const a = new Acceptor.AcceptorCore(empty, { leaseMs: 100, now: () => now })
    a.p1a(b(1, "l1"))
    for (let slot = 1; slot <= 3; slot++) {
      now += 60
      a.p2a(new Message.P2a({ ballot: b(1, "l1"), slot, value: Command.noop }))
    }
    now += 60
    assert.deepStrictEqual(a.p1a(b(2, "l2")).ballot, b(1, "l1"), "refused within the lease")
  })
})

/** `acceptor`'s P1b page at `ballot` from `start` (one pvalue there), with `next` when another follows. */
const offerPage = (
  inbox: Queue.Queue<Message.Envelope>,
  ballot: Ballot.Ballot,
  acceptor: string,
  start: number,
  next: number | undefined
) =>
  Queue.offer(
    inbox,
    new Message.Envelope({
      from: Address.acceptor(acceptor),
      to: "leader/l1",
      message: new Message.P1b({
        ballot,
        request: ballot,
        accepted: [new Command.PValue({ ballot: b(1), slot: start, value: Command.noop })],
        ...(start > 1 ? { from: start } : {}),
        ...(next === undefined ? {} : { next })
      })
    })
  )

/**
 * A scout at ballot 2.l1 over `acceptors` (asking `first` first), its P1a recorded; `page`
 * offers it `acceptor`'s P1b page from `start`, with `next` when another follows.
 */
const scoutOver = (acceptors: ReadonlyArray<string>, retransmitMs: number, first?: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const { sent, layer } = recording()
    const inbox = yield* Queue.unbounded<Message.Envelope>()
    const ballot = b(2)
    const fiber = yield* Scout.run({
      leader: Address.leader("l1"),
      ballot,
      acceptors,
      ...(first === undefined ? {} : { first }),
      inbox,
      retransmitMs
    }).pipe(Effect.provide(layer), Effect.forkChild)
    yield* Effect.yieldNow
    const page = (acceptor: string, start: number, next: number | undefined) =>
      offerPage(inbox, ballot, acceptor, start, next)
    return { sent, inbox, ballot, fiber, page }
  })

describe("a scout", () => {
  it.effect("asks for each next page at once and adopts only with every page from a majority", () =>
    Effect.gen(function* () {
      const { sent, inbox, ballot, fiber } = yield* scoutOver(["a1", "a2", "a3"], 1000)
      const pv = (slot: number) => new Command.PValue({ ballot: b(1), slot, value: Command.noop })
      const reply = (from: string, fields: Partial<ConstructorParameters<typeof Message.P1b>[0]>) =>
        Queue.offer(
          inbox,
          new Message.Envelope({
            from: Address.acceptor(from),
            to: "leader/l1",
            message: new Message.P1b({ ballot, request: ballot, accepted: [], ...fields })
          })
        )
      yield* reply("a1", { accepted: [pv(1)], next: 5 })
      yield* reply("a2", { accepted: [pv(1), pv(2)] })
      yield* Effect.yieldNow
      const asked = sent.filter((e) => e.to === "acceptor/a1" && e.message._tag === "P1a")
      assert.deepStrictEqual(
        asked.map((e) => (e.message as Message.P1a).from),
        [undefined, 5],
        "a1 is asked for the page from slot 5"
      )
      assert.isUndefined(fiber.pollUnsafe(), "a1 has not sent its last page: no majority yet")
      // a duplicate of the first page is not the page asked for
      yield* reply("a1", { accepted: [pv(1)], next: 5 })
      yield* Effect.yieldNow
      assert.isUndefined(fiber.pollUnsafe())
      yield* reply("a1", { accepted: [pv(7)], from: 5 })
      const outcome = yield* Fiber.join(fiber)
      assert.strictEqual(outcome._tag, "Adopted")
      if (outcome._tag === "Adopted") assert.deepStrictEqual([...outcome.pvalues.keys()].sort(), [1, 2, 7])
    })
  )

  it.effect("asked a majority first, asks the others once one of it sends nothing for a period", () =>
    Effect.gen(function* () {
      const { sent, fiber, page } = yield* scoutOver(["a1", "a2", "a3", "a4", "a5"], 100, ["a1", "a2", "a3"])
      const asked = () =>
        sent
          .filter((e) => e.message._tag === "P1a")
          .map((e) => `${Address.id(e.to)}@${(e.message as Message.P1a).from ?? 1}`)
      assert.deepStrictEqual(asked(), ["a1@1", "a2@1", "a3@1"])
      // a1 and a2 page along; a3 is silent for a period: now a4 and a5 are asked too
      yield* page("a1", 1, 5)
      yield* page("a2", 1, 5)
      yield* TestClock.adjust(100)
      assert.deepStrictEqual(asked().slice(3), ["a1@5", "a2@5", "a3@1", "a4@1", "a5@1"])
      yield* page("a1", 5, undefined)
      yield* page("a4", 1, undefined)
      yield* page("a5", 1, undefined)
      const outcome = yield* Fiber.join(fiber)
      assert.strictEqual(outcome._tag, "Adopted")
    })
  )

  it.effect("asked a majority first, leaves the others alone while it answers", () =>
    Effect.gen(function* () {
      const { sent, fiber, page } = yield* scoutOver(["a1", "a2", "a3"], 100, ["a1", "a2"])
      for (let at = 1; at < 20; at += 4) {
        yield* page("a1", at, at + 4)
        yield* page("a2", at, at + 4)
        yield* TestClock.adjust(60)
      }
      yield* page("a1", 21, undefined)
      yield* page("a2", 21, undefined)
      const outcome = yield* Fiber.join(fiber)
      assert.strictEqual(outcome._tag, "Adopted")
      assert.isFalse(
        sent.some((e) => e.to === Address.acceptor("a3")),
        "a3 is never asked"
      )
    })
  )

  it.effect("asks an acceptor again only when no page came from it for a whole period", () =>
    Effect.gen(function* () {
      const { sent, fiber, page } = yield* scoutOver(["a1", "a2", "a3"], 100)
      const askedOf = (acceptor: string) =>
        sent
          .filter((e) => e.to === Address.acceptor(acceptor) && e.message._tag === "P1a")
          .map((e) => (e.message as Message.P1a).from ?? 1)
      // a1 answers a page every 60 ms; a2 and a3 say nothing
      yield* page("a1", 1, 5)
      yield* TestClock.adjust(60)
      yield* page("a1", 5, 9)
      yield* TestClock.adjust(40)
      assert.deepStrictEqual(askedOf("a1"), [1, 5, 9], "a1, paging, is not asked for page 9 twice")
      assert.deepStrictEqual(askedOf("a2"), [1, 1], "a silent acceptor is asked again each period")
      // no page from a1 for a whole period: its request may be lost, so it goes again
      yield* TestClock.adjust(100)
      assert.deepStrictEqual(askedOf("a1"), [1, 5, 9, 9])
      yield* page("a1", 9, undefined)
      yield* page("a2", 1, undefined)
      const outcome = yield* Fiber.join(fiber)
      assert.strictEqual(outcome._tag, "Adopted")
    })
  )
})

const config = ClusterConfig.make({
  acceptors: ["a1", "a2", "a3"],
  leaders: ["l1"],
  replicas: ["r1"],
  window: 4
})

describe("replica batches", () => {
  const limits = Limits.fromMessageBytes(Limits.minMaxMessageBytes)
  const replica = () =>
    new Replica.ReplicaCore("r1", config, Kv.machine, Option.none(), {
      maxMessageBytes: Limits.minMaxMessageBytes
    })

  it("are capped by bytes as well as by count, so every Propose fits a message", () => {
    const r = replica()
    // about 1,900 UTF-8 bytes each: three fit the 6 KiB batch, four do not
    for (let i = 1; i <= 12; i++) r.request(put("c", i, "漢".repeat(600)))
    const first = r.drain().filter((o) => o.message._tag === "Propose")
    // the first eagerSlots (2) take one command each as they come; past them only full
    // batches go, and the window (4) fills with them
    assert.strictEqual(first.length, 4)
    const proposals = [...first]
    for (let slot = 1; slot <= 3; slot++) {
      r.decision(slot, (first[slot - 1]!.message as Message.Propose).value)
      proposals.push(...r.drain().filter((o) => o.message._tag === "Propose"))
    }
    const sizes = proposals.map((o) => ((o.message as Message.Propose).value as Command.Batch).commands.length)
    assert.deepStrictEqual(sizes, [1, 1, 3, 3, 3], "batches fill by bytes, not to maxSize")
    assert.strictEqual(r.pending.size, 1, "a partial batch waits while two proposals are undecided")
    for (const o of proposals) {
      const envelope = new Message.Envelope({ from: "replica/r1", to: o.to, message: o.message })
      assert.isAtMost(Limits.utf8Bytes(Codec.encode(envelope)), limits.messageBytes)
    }
  })

  it("wait at most pendingWindows windows of bytes: new commands past it are shed, a resent one is not", () => {
    const r = replica()
    const bound = Replica.pendingWindows * config.window * limits.batchBytes
    // about 1,900 UTF-8 bytes each, with no decision: the window fills, then what waits
    for (let i = 1; i <= 200; i++) r.request(put("c", i, "漢".repeat(600)))
    assert.isAtMost(r.pending.bytes, bound)
    assert.isAbove(r.pending.bytes + 1900, bound, "it took commands up to the bound")
    const shed = r.shed
    assert.isAbove(shed, 100)
    // a resend of a command that waits is not a new one
    r.request(put("c", 20, "漢".repeat(600)))
    assert.strictEqual(r.shed, shed)
    // the shed ones were not taken: nothing answers them, nothing proposes them
    r.request(put("c", 200, "漢".repeat(600)))
    assert.strictEqual(r.shed, shed + 1)
    // a decision frees a slot: what waits moves up, and a new command is taken again
    const first = r.drain().find((o) => o.message._tag === "Propose")!.message as Message.Propose
    r.decision(first.slot, first.value)
    r.request(put("d", 1, "x"))
    assert.strictEqual(r.shed, shed + 1)
  })

  it("refuse a command too large for a batch of its own at intake", () => {
    const r = replica()
    r.request(put("c", 1, "x".repeat(limits.commandBytes)))
    assert.deepStrictEqual(r.drain(), [])
    assert.strictEqual(r.refused, 1)
    assert.strictEqual(r.pending.size, 0)
  })

  it("refuse a command by its exact size, not by the bound they may count it with", () => {
    // batches of one: a message's share per command is the whole batch, so a command is
    // counted by the bound on its JSON (6 bytes a character) when that is small enough
    const r = new Replica.ReplicaCore(
      "r1",
      { ...config, batch: { ...config.batch, maxSize: 1 } },
      Kv.machine,
      Option.none(),
      {
        maxMessageBytes: Limits.minMaxMessageBytes
      }
    )
    let command = put("c", 1, "")
    for (let n = 1; Limits.jsonBytesOrBound(command, Number.POSITIVE_INFINITY) <= limits.commandBytes; n++) {
      command = put("c", 1, "x".repeat(n))
    }
    // its bound is over the limit, by less than a message's whole payload, and its JSON far under it
    assert.isBelow(Limits.jsonBytesOrBound(command, Number.POSITIVE_INFINITY), limits.batchBytes)
    assert.isBelow(Limits.jsonBytes(command), limits.commandBytes / 2)
    r.request(command)
    assert.strictEqual(r.refused, 0)
    assert.lengthOf(
      r.drain().filter((o) => o.message._tag === "Propose"),
      1
    )
  })

  it("answer with an error when a result is too large for a message", () => {
    const r = replica()
    // decided elsewhere (a replica with a larger limit took it): larger than this one can answer
    const write = new Command.Command({
      client: "w",
      seq: 1,
      acked: 0,
      op: { _tag: "Put", key: "a", value: "y".repeat(7000) }
    })
    r.decision(1, new Command.Batch({ commands: [write] }))
    const read = (seq: number, key: string) =>
      new Command.Command({ client: "c", seq, acked: 0, op: { _tag: "Get", key } })
    r.request(read(1, "a"))
    r.decision(2, new Command.Batch({ commands: [read(1, "a")] }))
    const answers = () =>
      r
        .drain()
        .filter((o) => o.message._tag === "Response")
        .map((o) => o.message as Message.Response)
    const [big] = answers()
    assert.match(big!.error ?? "", /exceeds the message limit/)
    assert.strictEqual(r.slotOut, 3, "the read was performed all the same")
    r.request(read(2, "b"))
    r.decision(3, new Command.Batch({ commands: [read(2, "b")] }))
    const [small] = answers()
    assert.strictEqual(small!.error, undefined, "a result that fits is answered as usual")
  })
})

describe("over the in-memory bus", () => {
  it.live("a message over the bus's limit is dropped and counted, as NATS refuses it", () =>
    Effect.gen(function* () {
      const bus = yield* InMemoryBus.InMemoryBus
      const transport = yield* Transport.Transport
      assert.strictEqual(transport.maxMessageBytes, 10_000)
      const mailbox = yield* transport.listen("replica/r1")
      const request = (value: string) =>
        new Message.Envelope({
          from: "client/c",
          to: "replica/r1",
          message: new Message.Request({ command: put("c", 1, value) })
        })
      yield* transport.send("replica/r1", request("é".repeat(6000)))
      yield* transport.send("replica/r1", request("small"))
      yield* Effect.sleep(10)
      const got = yield* Queue.takeAll(mailbox)
      assert.strictEqual(got.length, 1)
      assert.strictEqual((yield* bus.stats).oversized, 1)
    }).pipe(Effect.scoped, Effect.provide(InMemoryBus.layer({ maxMessageBytes: 10_000 })))
  )

  it.live("a client refuses a command too large for one message, and nothing is proposed", () =>
    Effect.gen(function* () {
      const cluster = ClusterConfig.servers(3)
      yield* Layer.build(Server.layerCluster(cluster, Kv.machine))
      const client = yield* Client.make(Kv.machine, cluster)
      const exit = yield* Effect.exit(client.submit({ _tag: "Put", key: "k", value: "x".repeat(20_000) }))
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
      assert.strictEqual((error as { error: { _tag: string } } | undefined)?.error._tag, "CommandTooLarge")
      // the next command is served as usual
      assert.deepStrictEqual(yield* client.submit({ _tag: "Put", key: "k", value: "ok" }), {
        _tag: "Written",
        version: 1
      })
      assert.deepStrictEqual(yield* client.submit({ _tag: "Get", key: "k" }), {
        _tag: "Value",
        value: "ok",
        version: 1
      })
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.merge(InMemoryBus.layer({ maxMessageBytes: 16_384 }), Storage.layerMemory()))
    )
  )
})

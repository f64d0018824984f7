import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { ClusterConfig, Command, Message, Trusted } from "@synod/core"
import { Kv } from "@synod/kv"
import { Effect, Option } from "effect"
import { ClientTable, Divergence, Replica } from "@synod/actors"
import { b, codecs, Net, put, stateRequest } from "./ReplicaNet.ts"

const hex = (c: string) => c.repeat(64)
const digest = (slot: number, d: string, heard = false) => new Message.Digest({ slot, digest: d, heard })

describe("digests: verdicts", () => {
  const peers = ["replica/r2", "replica/r3"] as const

  it("agreed once a majority of the replicas, this one included, hold its digest", () => {
    const d = new Divergence.Digests(peers, 3)
    d.recordOwn(5, hex("a"))
    assert.isUndefined(d.verdict(5), "its own digest alone is no majority of three")
    d.recordPeer("replica/r2", digest(5, hex("a")))
    assert.deepStrictEqual(d.verdict(5), { _tag: "Agreed", slot: 5, own: hex("a") })
  })

  it("diverged when a majority holds another digest, naming the replicas of that majority", () => {
    const d = new Divergence.Digests(peers, 3)
    d.recordOwn(5, hex("b"))
    d.recordPeer("replica/r2", digest(5, hex("a")))
    assert.isUndefined(d.verdict(5), "one against one, with a third to come: wait")
    d.recordPeer("replica/r3", digest(5, hex("a")))
    assert.deepStrictEqual(d.verdict(5), {
      _tag: "Diverged",
      slot: 5,
      own: hex("b"),
      majority: hex("a"),
      peers: ["replica/r2", "replica/r3"]
    })
    assert.strictEqual(d.majorityOfPeers(5), hex("a"))
  })

  it("split when no digest can reach a majority: two replicas that disagree, or three different digests", () => {
    const two = new Divergence.Digests(["replica/r2"], 2)
    two.recordOwn(5, hex("a"))
    two.recordPeer("replica/r2", digest(5, hex("b")))
    assert.deepStrictEqual(two.verdict(5), {
      _tag: "Split",
      slot: 5,
      own: hex("a"),
      others: [{ replica: "replica/r2", digest: hex("b") }]
    })
    const three = new Divergence.Digests(peers, 3)
    three.recordOwn(5, hex("a"))
    three.recordPeer("replica/r2", digest(5, hex("b")))
    assert.isUndefined(three.verdict(5))
    three.recordPeer("replica/r3", digest(5, hex("c")))
    assert.strictEqual(three.verdict(5)?._tag, "Split")
  })

  it("compares only digests of the same slot", () => {
    const d = new Divergence.Digests(peers, 3)
    d.recordOwn(5, hex("a"))
    d.recordPeer("replica/r2", digest(9, hex("b")))
    d.recordPeer("replica/r3", digest(9, hex("b")))
    assert.isUndefined(d.verdict(5))
    assert.isUndefined(d.verdict(9), "no digest of its own at 9 yet")
  })

  it("ignores digests from addresses that are not replicas of the configuration", () => {
    const d = new Divergence.Digests(peers, 3)
    d.recordOwn(5, hex("a"))
    d.recordPeer("replica/x9", digest(5, hex("b")))
    d.recordPeer("leader/r2", digest(5, hex("b")))
    assert.isUndefined(d.verdict(5))
  })

  it("keeps a bounded number of slots per replica, dropping the oldest", () => {
    const d = new Divergence.Digests(peers, 3)
    for (let s = 1; s <= 3 * Divergence.RECENT; s++) {
      d.recordOwn(s, hex("a"))
      d.recordPeer("replica/r2", digest(s, hex("a")))
    }
    assert.strictEqual(d.own.size, Divergence.RECENT)
    assert.strictEqual(d.heard.get("replica/r2")!.size, Divergence.RECENT)
    assert.strictEqual(Math.min(...d.own.keys()), 2 * Divergence.RECENT + 1)
    // a digest older than all kept is not kept either
    d.recordPeer("replica/r3", digest(1, hex("b")))
    d.recordPeer("replica/r3", digest(1, hex("b")))
    assert.isTrue(d.heard.get("replica/r3")!.has(1), "an empty map takes any slot")
  })

  it("digest slots are the slots that end a run of `every` slots", () => {
    assert.deepStrictEqual(
      [1, 2, 4, 5, 6, 9, 13].filter((s) => Divergence.isDigestSlot(s, 4)),
      [5, 9, 13]
    )
  })
})

describe("digests: gossip", () => {
  it("one message each way per pair when both keep up; an answer only when asked", () => {
    const r1 = new Divergence.Digests(["replica/r2"], 2)
    const r2 = new Divergence.Digests(["replica/r1"], 2)
    const first = r1.recordOwn(5, hex("a"))
    assert.deepStrictEqual(
      first.map((o) => [o.to, (o.message as Message.Digest).heard]),
      [["replica/r2", false]]
    )
    // r2 has no digest at 5 yet: nothing to answer
    assert.deepStrictEqual(r2.recordPeer("replica/r1", first[0]!.message as Message.Digest), [])
    const second = r2.recordOwn(5, hex("a"))
    assert.deepStrictEqual(
      second.map((o) => [o.to, (o.message as Message.Digest).heard]),
      [["replica/r1", true]],
      "it holds r1's already: no answer wanted"
    )
    assert.deepStrictEqual(r1.recordPeer("replica/r2", second[0]!.message as Message.Digest), [])
    assert.deepStrictEqual(r1.tick(), [], "heard: nothing to resend")
  })

  it("resends its latest digest on a tick to the peers not heard, who answer when they have theirs", () => {
    const r1 = new Divergence.Digests(["replica/r2"], 2)
    const r2 = new Divergence.Digests(["replica/r1"], 2)
    r1.recordOwn(5, hex("a")) // lost
    r2.recordOwn(5, hex("a")) // lost too
    const again = r1.tick()
    assert.strictEqual(again.length, 1)
    const answer = r2.recordPeer("replica/r1", again[0]!.message as Message.Digest)
    assert.deepStrictEqual(
      answer.map((o) => [o.to, (o.message as Message.Digest).slot, (o.message as Message.Digest).heard]),
      [["replica/r1", 5, true]]
    )
    r1.recordPeer("replica/r2", answer[0]!.message as Message.Digest)
    assert.deepStrictEqual(r1.tick(), [])
    assert.strictEqual(r1.verdict(5)?._tag, "Agreed")
  })
})

// ---- three replica cores, wired by hand (ReplicaNet.ts)

const three = ClusterConfig.make({
  acceptors: ["a1", "a2", "a3"],
  leaders: ["l1"],
  replicas: ["r1", "r2", "r3"],
  snapshotEvery: 4,
  transferChunkBytes: 64
})
const forge = (core: Replica.ReplicaCore<Kv.State, Kv.Command, Kv.Result>) => {
  core.state = Kv.apply(core.state, { _tag: "Put", key: "k0", value: "forged" })[0]
}

/**
 * Decides slots `from..to` on every replica of `net`, slot `s` a put of `value(s)` to key
 * `k<s>`, and records the slots each replica asked the host to digest.
 */
const digestingRun = (net: Net, value: (slot: number) => string) => {
  const digestedAt = new Map<string, Array<number>>()
  const run = (from: number, to: number) => {
    for (let s = from; s <= to; s++) net.decide(s, new Command.Batch({ commands: [put("c", s, `k${s}`, value(s))] }))
    for (const [id, core] of net.cores) {
      const ready = core.out.drain()
      digestedAt.set(id, [...(digestedAt.get(id) ?? []), ...ready.work.map((j) => j.captured.slotOut)])
    }
  }
  return { run, digestedAt }
}

describe("replicas compare digests", () => {
  it("the host's digest of a captured state is the SHA-256 of the snapshot as state transfer encodes it", async () => {
    const net = new Net(["r1"], three)
    const r1 = net.core("r1")
    for (let s = 1; s <= 4; s++) r1.decision(s, new Command.Batch({ commands: [put("c", s, `k${s}`, "v")] }))
    const [job] = r1.out.drain().work
    assert.isDefined(job)
    assert.strictEqual(job!.captured.slotOut, 5)
    const gradual = await Effect.runPromise(Replica.digestCaptured(codecs, job!.captured))
    assert.strictEqual(gradual, Replica.digestText(JSON.stringify(r1.snapshot())))
    assert.match(gradual, /^[0-9a-f]{64}$/)
  })

  it("digestTextGradually hashes in slices what digestText hashes at once, surrogate pairs across slice ends included", () => {
    const run = (text: string, slice: number) => {
      const gen = Replica.digestTextGradually(text, slice)
      let slices = 1
      let r = gen.next()
      while (!r.done) {
        slices++
        r = gen.next()
      }
      return { digest: r.value, slices }
    }
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 60 }), fc.integer({ min: 1, max: 8 }), (text, slice) => {
        assert.strictEqual(run(text, slice).digest, Replica.digestText(text))
      }),
      { numRuns: 500 }
    )
    // a text in chunks hashes as the text it joins to, whatever the chunks
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: "grapheme", maxLength: 9 }), { maxLength: 12 }),
        fc.integer({ min: 1, max: 8 }),
        (chunks, slice) => {
          const gen = Replica.digestTextGradually(chunks, slice)
          let r = gen.next()
          while (!r.done) r = gen.next()
          assert.strictEqual(r.value, Replica.digestText(chunks.join("")))
        }
      ),
      { numRuns: 300 }
    )
    assert.strictEqual(run("x".repeat(10), 3).slices, 4)
    assert.strictEqual(run("ab\u{1F600}cd", 3).digest, Replica.digestText("ab\u{1F600}cd"))
  })

  it("a diverged replica still serves the state a majority agreed with before: it may be the last copy left", () => {
    const net = new Net(["r1", "r2", "r3"], three)
    for (let s = 1; s <= 4; s++) net.decide(s, new Command.Batch({ commands: [put("c", s, `k${s}`, "v")] }))
    net.settle()
    forge(net.core("r2"))
    for (let s = 5; s <= 8; s++) net.decide(s, Command.noop)
    net.settle((_, m) => m._tag === "StateRequest")
    const r2 = net.core("r2")
    assert.strictEqual(r2.quarantine?._tag, "Diverged")
    assert.strictEqual(r2.verified?.slotOut, 5, "agreed at slot 5, before the change")
    r2.out.drain()
    stateRequest(r2, "replica/r1", new Message.StateRequest({ slotOut: 1, chunks: [] }))
    const chunks = r2.out.drain().send.filter((o) => o.message._tag === "StateChunk")
    assert.isAbove(chunks.length, 0)
  })

  it("a replica whose state a majority contradicts stops answering, copies a majority peer's snapshot and answers again", () => {
    const net = new Net(["r1", "r2", "r3"], three)
    net.decide(1, new Command.Batch({ commands: [put("c", 1, "k1", "a")] }))
    net.decide(2, new Command.Batch({ commands: [put("c", 2, "k2", "b")] }))
    forge(net.core("r2"))
    net.decide(3, new Command.Batch({ commands: [put("c", 3, "k3", "c")] }))
    net.decide(4, Command.noop)
    net.settle()
    const r2 = net.core("r2")
    assert.strictEqual(r2.quarantine?._tag, "Diverged")
    if (r2.quarantine?._tag !== "Diverged") return
    assert.strictEqual(r2.quarantine.slot, 5)
    assert.deepStrictEqual(r2.quarantine.peers, ["replica/r1", "replica/r3"])
    assert.isUndefined(net.core("r1").quarantine)
    assert.isUndefined(net.core("r3").quarantine)
    assert.strictEqual(r2.divergences, 1)
    assert.deepStrictEqual(
      net.events.filter(([, e]) => e._tag === "Diverged").map(([id]) => id),
      ["r2"],
      "only the contradicted replica reports it"
    )

    // no answers from the diverged state: neither a retry answered from the table nor a new
    // command (which it still proposes: its peers answer)
    r2.request(put("c", 3, "k3", "c"))
    r2.request(put("d", 1, "k9", "z"))
    assert.deepStrictEqual(
      r2.out.drain().send.map((o) => o.message._tag),
      ["Propose"]
    )
    // nor a read by read index (not even asked about)
    r2.step({ _tag: "Message", from: "client/c", message: Trusted.read("c", 1, { _tag: "Get", key: "k1" }) })
    assert.deepStrictEqual(r2.out.drain().send, [])
    // (while a peer that agrees asks its leader at once)
    net
      .core("r1")
      .step({ _tag: "Message", from: "client/c", message: Trusted.read("c", 1, { _tag: "Get", key: "k1" }) })
    assert.deepStrictEqual(
      net
        .core("r1")
        .out.drain()
        .send.map((o) => o.message._tag),
      ["ReadIndex"]
    )
    // nor a snapshot of it for others
    stateRequest(r2, "replica/r3", new Message.StateRequest({ slotOut: 1, chunks: [] }))
    assert.deepStrictEqual(r2.out.drain().send, [])
    // nor performing further: a decision waits for the repair
    net.decide(5, Command.noop)
    assert.strictEqual(r2.slotOut, 5)

    // the repair: from a replica of the majority, even at the same slotOut
    r2.tick()
    net.settle()
    assert.isUndefined(r2.quarantine)
    assert.deepStrictEqual(r2.snapshot(), net.core("r1").snapshot())
    assert.isTrue(net.events.some(([id, e]) => id === "r2" && e._tag === "Recovered" && e.installed))
    r2.request(put("c", 3, "k3", "c"))
    assert.deepStrictEqual(
      r2.out.drain().send.map((o) => [o.to, o.message._tag]),
      [["client/c", "Response"]],
      "it answers again"
    )
  })

  it("a copied snapshot whose digest is not the majority's is refused before it is installed", () => {
    const net = new Net(["r1", "r2", "r3"], three)
    for (let s = 1; s <= 4; s++) net.decide(s, new Command.Batch({ commands: [put("c", s, `k${s}`, "v")] }))
    forge(net.core("r2"))
    // r2 digests the forged state at 5 once more slots pass; make it a fresh slot
    for (let s = 5; s <= 8; s++) net.decide(s, Command.noop)
    net.settle()
    const r2 = net.core("r2")
    assert.strictEqual(r2.quarantine?._tag, "Diverged")
    // an impostor answering for r1 with a state that is not r1's
    const impostor = new Replica.ReplicaCore("r1", three, Kv.machine, Option.some(net.core("r1").snapshot()))
    forge(impostor)
    impostor.verified = impostor.capture()
    r2.tick()
    const [ask] = r2.out.drain().send.filter((o) => o.message._tag === "StateRequest")
    assert.isDefined(ask)
    let failure: string | undefined
    let pending = [ask!]
    for (let round = 0; round < 100 && pending.length > 0 && failure === undefined; round++) {
      const next: typeof pending = []
      for (const o of pending) {
        stateRequest(impostor, "replica/r2", o.message as Message.StateRequest)
        for (const chunk of impostor.out.drain().send) {
          failure = r2.stateChunk(o.to, chunk.message as Message.StateChunk) ?? failure
          next.push(...r2.out.drain().send.filter((s) => s.message._tag === "StateRequest"))
        }
      }
      pending = next
    }
    assert.include(failure ?? "", "is not the one a majority of replicas hold")
    assert.strictEqual(r2.quarantine?._tag, "Diverged", "still diverged, still not answering")
  })

  it("a replica serves peers the state a majority agreed with, not a later one no digest has vouched for yet", () => {
    let now = 0
    const net = new Net(["r1", "r2", "r3"], three, () => now)
    for (let s = 1; s <= 4; s++) net.decide(s, new Command.Batch({ commands: [put("c", s, `k${s}`, "v")] }))
    net.settle()
    const r1 = net.core("r1")
    assert.strictEqual(r1.verified?.slotOut, 5)
    forge(r1)
    net.decide(5, Command.noop)
    net.settle()
    // r3 lost its disk and is below the watermark: it asks r1
    const wiped = new Replica.ReplicaCore("r3", three, Kv.machine, Option.none(), {
      hash: Replica.digestText,
      now: () => now
    })
    wiped.heartbeat(new Message.Heartbeat({ ballot: b, active: true, decided: 5, slot: 5, watermark: 5 }))
    const copy = (from: Replica.ReplicaCore<Kv.State, Kv.Command, Kv.Result>) => {
      wiped.tick()
      let asks = wiped.out
        .drain()
        .send.filter((o) => o.to === "replica/r1" && o.message._tag === "StateRequest")
        .map((o) => o.message as Message.StateRequest)
      assert.strictEqual(asks.length, 1)
      for (let round = 0; round < 100 && asks.length > 0; round++) {
        const next: Array<Message.StateRequest> = []
        for (const ask of asks) {
          stateRequest(from, "replica/r3", ask)
          for (const o of from.out.drain().send) {
            assert.isUndefined(wiped.stateChunk("replica/r1", o.message as Message.StateChunk))
            for (const m of wiped.out.drain().send) if (m.message._tag === "StateRequest") next.push(m.message)
          }
        }
        asks = next
      }
    }
    copy(r1)
    assert.strictEqual(wiped.slotOut, 5, "the verified state at slot 5, not r1's current one at 6")
    assert.strictEqual(Kv.apply(wiped.state, { _tag: "Get", key: "k0" })[1]._tag, "Value")
    assert.deepStrictEqual(Kv.apply(wiped.state, { _tag: "Get", key: "k0" })[1], {
      _tag: "Value",
      value: null,
      version: 0
    })
    // with no verified state recent enough it serves nothing, however long it is asked
    r1.heartbeat(new Message.Heartbeat({ ballot: b, active: true, decided: 5, slot: 5, watermark: 6 }))
    for (let i = 0; i < 3; i++) {
      now += 10 * three.timeouts.leaderTimeoutMs
      stateRequest(r1, "replica/r3", new Message.StateRequest({ slotOut: 1, chunks: [] }))
      assert.deepStrictEqual(r1.out.drain().send, [], "slot 5 is below the watermark 6 the asker needs")
    }
    // and it tells the acceptors to keep the decisions from its verified state on
    r1.tick()
    assert.deepStrictEqual(
      r1.out
        .drain()
        .send.filter((o) => o.message._tag === "Progress")
        .map((o) => (o.message as Message.Progress).slotOut),
      [1, 1, 1],
      "nothing durable yet: the host never saved a snapshot here"
    )
    r1.step({ _tag: "Saved", slotOut: 6 })
    r1.tick()
    assert.deepStrictEqual(
      r1.out
        .drain()
        .send.filter((o) => o.message._tag === "Progress")
        .map((o) => (o.message as Message.Progress).slotOut),
      [5, 5, 5],
      "durable at 6, verified at 5"
    )
  })

  it("with three replicas a replica saves only states a majority agreed with, and after a restart serves the one it saved", () => {
    const net = new Net(["r1", "r2", "r3"], three)
    for (let s = 1; s <= 4; s++) net.decide(s, new Command.Batch({ commands: [put("c", s, `k${s}`, "v")] }))
    net.settle()
    assert.deepStrictEqual(net.saved.get("r1"), [5])
    forge(net.core("r1"))
    for (let s = 5; s <= 8; s++) net.decide(s, Command.noop)
    net.settle()
    assert.strictEqual(net.core("r1").quarantine?._tag, "Diverged")
    assert.deepStrictEqual(net.saved.get("r1"), [5], "the changed state is never saved")
    assert.deepStrictEqual(net.saved.get("r2"), [5, 9])
    // r2 restarts from what it saved: that state is verified, and it serves it
    assert.strictEqual(
      net.core("r2").finalSnapshot()?.slotOut,
      9,
      "a clean stop saves the verified state, not yet durable"
    )
    net.core("r2").step({ _tag: "Saved", slotOut: 9 })
    assert.isUndefined(net.core("r2").finalSnapshot(), "nothing newer than what it saved")
    const restarted = new Replica.ReplicaCore("r2", three, Kv.machine, Option.some(net.core("r2").snapshot()))
    assert.strictEqual(restarted.verified?.slotOut, 9)
    stateRequest(restarted, "replica/r3", new Message.StateRequest({ slotOut: 1, chunks: [] }))
    assert.isAbove(restarted.out.drain().send.filter((o) => o.message._tag === "StateChunk").length, 0)
  })

  it("past snapshotBytes of commands since the last digest slot every replica digests the same slot, a restarted one too", () => {
    const bytes = ClusterConfig.make({ ...three, snapshotEvery: 1000, snapshotBytes: 100, snapshotRatio: 0 })
    const net = new Net(["r1", "r2", "r3"], bytes)
    const { run, digestedAt } = digestingRun(net, (s) => "x".repeat(s % 3 === 0 ? 60 : 5))
    run(1, 10)
    // r3 restarts from its state at slot 11 (as if saved there) and goes on with the others
    net.cores.set("r3", new Replica.ReplicaCore("r3", bytes, Kv.machine, Option.some(net.core("r3").snapshot())))
    run(11, 30)
    const slots = digestedAt.get("r1")!
    assert.isAbove(slots.length, 3)
    assert.deepStrictEqual(digestedAt.get("r2"), slots)
    assert.deepStrictEqual(digestedAt.get("r3"), slots, "the count since the last digest slot is in the snapshot")
    assert.isTrue(
      slots.every((s) => !Divergence.isDigestSlot(s, 1000)),
      "all by bytes"
    )
  })

  it("the commands between digest slots grow with the state, alike on every replica, a restarted and a copied one too", () => {
    const growing = ClusterConfig.make({ ...three, snapshotEvery: 1000, snapshotBytes: 100, snapshotMaxBytes: 3000 })
    const net = new Net(["r1", "r2", "r3"], growing)
    const { run, digestedAt } = digestingRun(net, (s) => "x".repeat(20 + (s % 7) * 10))
    run(1, 40)
    // r3 restarts from its state at slot 41, as if saved there
    net.cores.set("r3", new Replica.ReplicaCore("r3", growing, Kv.machine, Option.some(net.core("r3").snapshot())))
    run(41, 80)
    // r2 is replaced by a copy of r1's state (a state transfer installs the same snapshot)
    const copy = new Replica.ReplicaCore("r2", growing, Kv.machine, Option.some(net.core("r1").snapshot()))
    net.cores.set("r2", copy)
    run(81, 200)
    const slots = digestedAt.get("r1")!
    assert.deepStrictEqual(digestedAt.get("r3"), slots, "the limit is in the snapshot")
    assert.deepStrictEqual(digestedAt.get("r2")!.slice(-3), slots.slice(-3), "the copy digests where the others do")
    // 3, 8, 31, 66, 101, 135, 169: every 2 writes while the store is small, then every
    // 34-35 once 3,000 bytes (snapshotMaxBytes) is reached
    assert.isAtMost(slots[0]!, 3, "a small state: every snapshotBytes")
    const gaps = slots.slice(1).map((s, i) => s - slots[i]!)
    assert.isAbove(gaps[gaps.length - 1]!, 10 * (slots[0]! - 1), "then further apart as the store grows")
    const limit = net.core("r1").digestLimit
    assert.strictEqual(limit, 3000, "at most snapshotMaxBytes")
    assert.strictEqual(net.core("r1").snapshot().digestLimit, 3000)
  })

  it("digestLimitFor: snapshotRatio times the state's size, between snapshotBytes and snapshotMaxBytes", () => {
    const c = ClusterConfig.make({ ...three, snapshotBytes: 1000, snapshotMaxBytes: 10_000, snapshotRatio: 2 })
    assert.strictEqual(Replica.digestLimitFor(c, undefined), 1000, "a machine that does not tell its size")
    assert.strictEqual(Replica.digestLimitFor(c, 100), 1000)
    assert.strictEqual(Replica.digestLimitFor(c, 2500), 5000)
    assert.strictEqual(Replica.digestLimitFor(c, 1e9), 10_000)
    assert.strictEqual(Replica.digestLimitFor(c, Number.NaN), 1000)
    assert.strictEqual(Replica.digestLimitFor({ ...c, snapshotRatio: 0 }, 2500), 1000)
    assert.strictEqual(Replica.digestLimitFor({ ...c, snapshotRatio: 0.5 }, 4001), 2000)
  })

  it("with two replicas that disagree neither can know which is right: both stop answering until a later digest agrees", () => {
    const two = ClusterConfig.make({ ...three, replicas: ["r1", "r2"] })
    const net = new Net(["r1", "r2"], two)
    net.decide(1, Command.noop)
    forge(net.core("r1"))
    for (let s = 2; s <= 4; s++) net.decide(s, Command.noop)
    net.settle()
    for (const id of ["r1", "r2"]) assert.strictEqual(net.core(id).quarantine?._tag, "Split", id)
    // both keep performing (no one to copy from), neither answers
    net.core("r1").request(put("c", 1, "k", "v"))
    net.decide(5, new Command.Batch({ commands: [put("c", 1, "k", "v")] }))
    net.settle()
    assert.deepStrictEqual(net.answers, [])
    // the operator replaces r1's state with r2's (a wiped disk, refilled by state transfer)
    net.core("r1").state = net.core("r2").state
    net.core("r1").table = ClientTable.ClientTable.fromSnapshot(net.core("r2").table.toSnapshot())
    for (let s = 6; s <= 8; s++) net.decide(s, Command.noop)
    net.settle()
    for (const id of ["r1", "r2"]) assert.isUndefined(net.core(id).quarantine, id)
  })

  it("the rest before a rest digest grows by a leader timeout per restBytesPerTimeout of state", () => {
    const t = three.timeouts.leaderTimeoutMs
    const per = Replica.restBytesPerTimeout
    assert.strictEqual(Replica.restBeforeDigestMs(three, undefined), t)
    assert.strictEqual(Replica.restBeforeDigestMs(three, 0), t)
    assert.strictEqual(Replica.restBeforeDigestMs(three, per - 1), t)
    assert.strictEqual(Replica.restBeforeDigestMs(three, per), 2 * t)
    // a 21 MB store, as under 4 KB load: six leader timeouts
    assert.strictEqual(Replica.restBeforeDigestMs(three, 21 * 1024 * 1024), 6 * t)
  })

  it("an idle replica digests the slot it rests at, so a change after the last digest slot is caught without more traffic", () => {
    let now = 0
    const net = new Net(["r1", "r2", "r3"], three, () => now)
    net.decide(1, Command.noop)
    net.decide(2, Command.noop)
    forge(net.core("r3"))
    now = 10 * three.timeouts.leaderTimeoutMs
    for (const core of net.cores.values()) core.tick()
    net.settle((_, m) => m._tag !== "Digest")
    assert.strictEqual(net.core("r3").quarantine?._tag, "Diverged")
    assert.strictEqual(net.core("r3").quarantine?.slot, 3)
  })
})

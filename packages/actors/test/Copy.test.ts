/**
 * A replica far behind its peers (restarted from an old snapshot, or back after a long
 * cut) copies a peer's verified state when more bytes of commands lie before it than the
 * state holds, instead of asking the leaders for every slot it missed; otherwise it learns
 * the log (docs/protocol.md#replica-catch-up).
 */
import { assert, describe, it } from "@effect/vitest"
import { ClusterConfig, Command, Message } from "@synod/core"
import { Kv } from "@synod/kv"
import type { Replica } from "@synod/actors"
import { b, codecs, Net, put, stateRequest } from "./ReplicaNet.ts"

const config = ClusterConfig.make({
  acceptors: ["a1", "a2", "a3"],
  leaders: ["l1"],
  replicas: ["r1", "r2", "r3"],
  window: 2,
  snapshotBytes: 400,
  transferChunkBytes: 64
})

type Core = Replica.ReplicaCore<Kv.State, Kv.Command, Kv.Result>

/** Decides `slot` on the given replicas only: a put of `value` to `key`. */
const decideOn = (cores: ReadonlyArray<Core>, slot: number, key: string, value: string) => {
  const decision = new Message.Decision({
    slot,
    value: new Command.Batch({ commands: [put("c", slot, key, value)] }),
    ballot: b
  })
  for (const core of cores) core.step({ _tag: "Message", from: "leader/l1", message: decision })
}

const toR3 = (to: string) => to === "replica/r3"

/** The peers' latest digests reach r3 (each peer's tick sends them to the peers it has not heard at that slot). */
const gossip = (net: Net) => {
  net.core("r1").tick()
  net.core("r2").tick()
  net.settle()
}

const sent = (core: Core) => {
  const ready = core.out.drain()
  return {
    events: ready.events.map((e) => e._tag),
    asks: ready.send.filter((o) => o.message._tag === "StateRequest").map((o) => o.to),
    proposes: ready.send.filter((o) => o.message._tag === "Propose").map((o) => (o.message as Message.Propose).slot)
  }
}

const heartbeat = (slot: number) =>
  new Message.Heartbeat({ ballot: b, active: true, decided: slot, slot, watermark: 1 })

/** Three replicas; r3 is cut off from the start while r1 and r2 decide 40 slots of 60-byte values. */
const cutOff = () => {
  const net = new Net(["r1", "r2", "r3"], config)
  const [r1, r2, r3] = [net.core("r1"), net.core("r2"), net.core("r3")]
  for (let s = 1; s <= 40; s++) {
    decideOn([r1, r2], s, `k${s % 5}`, "v".repeat(60))
    net.settle(toR3)
  }
  return { net, r1, r2, r3 }
}

describe("a replica far behind its peers", () => {
  it("copies a peer's verified state when more commands lie before it than the state holds, asking the leaders for none of them", () => {
    const { net, r1, r2, r3 } = cutOff()
    const verified = r1.verified?.slotOut ?? 0
    assert.isAbove(verified, 9, "r1 and r2 agreed on a state well past r3")
    assert.strictEqual(r2.verified?.slotOut, verified)
    // back: it hears the leader (slot 40 decided) and its peers' digests
    r3.heartbeat(heartbeat(40))
    assert.deepStrictEqual(sent(r3).proposes, [], "it listens before asking for what it missed")
    gossip(net)
    r3.tick()
    const first = sent(r3)
    assert.deepStrictEqual(first.events, ["Copying"])
    assert.strictEqual(first.asks.length, 1, "a state request to one peer")
    assert.deepStrictEqual(first.proposes, [], "no slot asked of the leaders")
    // a client's command waits for the copy: the slots it would take now are decided
    r3.request(put("d", 1, "kd", "new"))
    assert.deepStrictEqual(sent(r3).proposes, [])
    // the request reaches the peer; the chunks come back until the copy is installed
    const peer = net.core(first.asks[0]!.slice("replica/".length))
    stateRequest(peer, "replica/r3", new Message.StateRequest({ slotOut: 1, chunks: [] }))
    net.settle()
    assert.strictEqual(r3.slotOut, verified, "at the peers' verified state")
    assert.deepStrictEqual(codecs.encodeState(r3.state), codecs.encodeState(r1.verified!.state))
    assert.isTrue(net.events.some(([id, e]) => id === "r3" && e._tag === "Installed"))
    assert.deepStrictEqual(
      [...r3.proposals].map(([slot, v]) => [slot, v._tag === "Batch" ? v.commands.map((c) => c.client) : []]),
      [[verified, ["d"]]],
      "proposed once the copy is in, from its slot on"
    )
    // from there it learns the log: the slots after the copy, from the leader
    r3.tick()
    const after = sent(r3)
    assert.deepStrictEqual(after.asks, [])
    assert.deepStrictEqual(after.proposes, [verified + 1], "the window after the copy, but the slot its command took")
  })

  it("learns the log when fewer commands lie before the peers' state than the state holds", () => {
    const net = new Net(["r1", "r2", "r3"], config)
    const all = ["r1", "r2", "r3"].map((id) => net.core(id))
    const [r1, r2, r3] = all as [Core, Core, Core]
    // a state of 30 keys of 60 bytes, kept by all three
    let slot = 1
    for (; slot <= 30; slot++) decideOn(all, slot, `k${slot}`, "v".repeat(60))
    net.settle()
    // small writes until r3 is close to its next digest slot: fewer bytes before it than the state
    const size = Kv.machine.size!(r3.state)
    while (r3.digestLimit - r3.bytesSinceDigest >= size) decideOn(all, slot++, "small", "x")
    net.settle()
    const cut = r3.slotOut
    // cut off, r3 misses small writes past the peers' next digest slot, and 10 more
    const past = (n: number) => {
      for (let i = 0; i < n; i++) {
        decideOn([r1, r2], slot++, "small", "x")
        net.settle(toR3)
      }
    }
    for (let i = 0; i < 1000 && (r1.verified?.slotOut ?? 0) <= cut; i++) past(1)
    past(10)
    assert.isAbove(r1.verified?.slotOut ?? 0, cut, "the peers agreed on a state ahead of r3")
    r3.heartbeat(heartbeat(slot - 1))
    gossip(net)
    r3.tick()
    const first = sent(r3)
    assert.deepStrictEqual(first.events, [], "no copy")
    assert.deepStrictEqual(first.asks, [])
    r3.tick()
    assert.deepStrictEqual(sent(r3).proposes, [cut, cut + 1], "the missed slots, asked of the leader")
  })

  it("learns the log when no majority of its peers agree on a state ahead", () => {
    const net = new Net(["r1", "r2", "r3"], config)
    const [r1, r3] = [net.core("r1"), net.core("r3")]
    net.cores.delete("r2") // down: only r1 gossips
    for (let s = 1; s <= 40; s++) {
      decideOn([r1], s, `k${s % 5}`, "v".repeat(60))
      net.settle(toR3)
    }
    r3.heartbeat(heartbeat(40))
    r1.tick()
    net.settle()
    r3.tick()
    assert.deepStrictEqual(sent(r3).events, [])
    r3.tick()
    assert.deepStrictEqual(sent(r3).proposes, [1, 2])
  })

  it("gives up a copy no peer serves, learns the log, and tries again later", () => {
    const { net, r3 } = cutOff()
    r3.heartbeat(heartbeat(40))
    gossip(net)
    const ticks: Array<ReturnType<typeof sent>> = []
    // its state requests are lost; chunks of no transfer it runs keep coming, and count for nothing
    const stray = new Message.StateChunk({ transfer: { slotOut: 99, checksum: 1 }, index: 0, count: 2, data: "{" })
    for (let i = 0; i < 100; i++) {
      r3.step({ _tag: "Message", from: "replica/r9", message: stray })
      r3.tick()
      ticks.push(sent(r3))
    }
    assert.deepStrictEqual(ticks[0]!.events, ["Copying"])
    const failed = ticks.findIndex((t) => t.events.includes("TransferFailed"))
    assert.strictEqual(failed, 31, "after thirty ticks without a chunk")
    assert.isTrue(
      ticks.slice(0, failed).every((t) => t.proposes.length === 0),
      "no slot asked of the leaders while copying"
    )
    assert.deepStrictEqual(ticks[failed]!.proposes, [1, 2], "then the log")
    const again = ticks.findIndex((t, i) => i > failed && t.events.includes("Copying"))
    assert.strictEqual(again - failed, 50, "and a copy again after fifty ticks")
  })
})

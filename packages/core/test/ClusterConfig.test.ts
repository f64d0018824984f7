import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { ClusterConfig } from "@synod/core"

const ok = { acceptors: ["a1", "a2", "a3"], leaders: ["l1", "l2"], replicas: ["r1", "r2"] }

const failure = (input: unknown): string => {
  const r = ClusterConfig.decode(input)
  assert.isTrue(Result.isFailure(r), "expected the config to be rejected")
  return Result.isFailure(r) ? r.failure.message : ""
}

describe("ClusterConfig", () => {
  it("fills defaults", () => {
    const c = Result.getOrThrow(ClusterConfig.decode(ok))
    assert.strictEqual(c.window, 16)
    assert.strictEqual(c.batch.maxSize, 256)
    assert.strictEqual(c.batch.eagerSlots, 2)
    assert.strictEqual(c.timeouts.retransmitMs, 100)
    assert.strictEqual(c.snapshotRatio, 2)
    assert.strictEqual(c.snapshotMaxBytes, 64 * 1024 * 1024)
  })

  it("rejects bad configs with a message naming the field", () => {
    assert.include(failure({ ...ok, acceptors: [] }), "acceptors")
    assert.include(failure({ ...ok, acceptors: [] }), "at least one acceptor")
    assert.include(failure({ ...ok, leaders: ["l1", "l1"] }), "leaders")
    assert.include(failure({ ...ok, leaders: ["l1", "l1"] }), 'duplicate leader id "l1"')
    assert.include(failure({ ...ok, window: 0 }), "window")
    // bounded above too: a window of 10^9 made every membership change wait for ever
    assert.include(failure({ ...ok, window: 1e9 }), "window must be at most 4096")
    assert.include(
      failure({ ...ok, timeouts: { leaderTimeoutMs: 1e12 } }),
      "timeouts.leaderTimeoutMs is between 1 and 3600000 ms"
    )
    assert.include(failure({ ...ok, replicas: ["bad.id"] }), "replicas")
    assert.include(failure({ ...ok, timeouts: { retransmitMs: -5 } }), "retransmitMs")
    assert.include(failure({ ...ok, batch: { maxSize: 1.5 } }), "maxSize")
    assert.include(failure({ leaders: ["l"], replicas: ["r"] }), "acceptors")
    assert.include(failure("not an object"), "invalid cluster config")
    assert.include(failure({ ...ok, snapshotRatio: -1 }), "snapshotRatio must be at least 0")
    assert.include(
      failure({ ...ok, snapshotBytes: 1000, snapshotMaxBytes: 999 }),
      "snapshotMaxBytes (999) must be at least snapshotBytes (1000)"
    )
  })

  it("servers(n) names n colocated servers", () => {
    const c = ClusterConfig.servers(3)
    assert.deepStrictEqual(c.acceptors, ["s1", "s2", "s3"])
    assert.deepStrictEqual(c.replicas, c.leaders)
  })
})

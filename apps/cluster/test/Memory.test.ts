import { getHeapSpaceStatistics } from "node:v8"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as Memory from "@synod/cluster/Memory"

const policy: Memory.Policy = {
  period: Duration.seconds(10),
  idleCpu: 0.05,
  growth: 16 * 1024 * 1024,
  maxLive: 112 * 1024 * 1024,
  settle: 7,
  settlePeriod: Duration.seconds(1)
}
const MiB = 1024 * 1024

describe("Memory", () => {
  it("collects only after an idle period in which memory grew enough", () => {
    const base = { periodMicros: 10_000_000, rssAfterLast: 100 * MiB, liveAfterLast: 40 * MiB }
    // idle (1% of a core), grown by 20 MiB
    assert.isTrue(Memory.shouldCollect(policy, { ...base, cpuMicros: 100_000, rss: 120 * MiB }))
    // exactly at both limits
    assert.isTrue(Memory.shouldCollect(policy, { ...base, cpuMicros: 500_000, rss: 116 * MiB }))
    // busy: 6% of a core
    assert.isFalse(Memory.shouldCollect(policy, { ...base, cpuMicros: 600_000, rss: 300 * MiB }))
    // idle, but not grown enough
    assert.isFalse(Memory.shouldCollect(policy, { ...base, cpuMicros: 0, rss: 115 * MiB }))
    // idle and grown, but a heap that large would pause the process too long
    assert.isTrue(Memory.shouldCollect(policy, { ...base, cpuMicros: 0, rss: 300 * MiB, liveAfterLast: 112 * MiB }))
    assert.isFalse(Memory.shouldCollect(policy, { ...base, cpuMicros: 0, rss: 300 * MiB, liveAfterLast: 113 * MiB }))
  })

  it("right after the start, collects in every idle second whatever memory did", () => {
    const base = { periodMicros: 1_000_000, rss: 80 * MiB, rssAfterLast: 80 * MiB, liveAfterLast: 15 * MiB }
    assert.isTrue(Memory.shouldSettle(policy, { ...base, cpuMicros: 50_000 }))
    // busy: 6% of a core
    assert.isFalse(Memory.shouldSettle(policy, { ...base, cpuMicros: 60_000 }))
    // not grown at all, which the later looks would wait for
    assert.isFalse(Memory.shouldCollect(policy, { ...base, cpuMicros: 0 }))
    // a heap that large would pause the process too long
    assert.isFalse(Memory.shouldSettle(policy, { ...base, cpuMicros: 0, liveAfterLast: 113 * MiB }))
  })

  it.effect("a collection shrinks the young generation the allocations grew", () =>
    Effect.gen(function* () {
      const young = () => getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.physical_space_size ?? 0
      // many short-lived objects, one in a hundred kept for a while: the young generation grows
      const kept: Array<object> = []
      for (let i = 0; i < 2_000_000; i++) {
        const o = { i, pair: [i, i + 1], text: `x${i}` }
        if (i % 100 === 0) kept.push(o)
      }
      const before = young()
      yield* Memory.collectAll
      const after = young()
      assert.isAbove(kept.length, 0)
      assert.isBelow(after, before, `young generation ${before} bytes before, ${after} after`)
      assert.isAtMost(after, 4 * MiB)
    })
  )
})

import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { type Line, LogBudget } from "@synod/transport-nats/LogBudget"

const line = (kind: string, n: number, count = 1): Line => ({ kind, message: kind, fields: { n }, count })

describe("LogBudget", () => {
  it("writes a kind's first lines of a window, counts the rest and sums them up when the window ends", () => {
    const b = new LogBudget(2, 1000)
    const written = [1, 2, 3, 4, 5].map((n) => b.admit(line("junk", n), 100 + n))
    assert.deepStrictEqual(written, [true, true, false, false, false])
    assert.strictEqual(b.nextDue(200), 1101)
    assert.deepStrictEqual(b.due(1100), [])
    const [summary, ...rest] = b.due(1101)
    assert.strictEqual(rest.length, 0)
    assert.strictEqual(summary!.more, 3)
    assert.deepStrictEqual(summary!.line.fields, { n: 5 })
    // given once; the next window starts afresh
    assert.deepStrictEqual(b.due(5000), [])
    assert.strictEqual(b.nextDue(5000), undefined)
    assert.isTrue(b.admit(line("junk", 6), 5000))
  })

  it("keeps kinds apart and sums what a line stands for", () => {
    const b = new LogBudget(1, 1000)
    assert.isTrue(b.admit(line("a", 1), 0))
    assert.isTrue(b.admit(line("b", 1), 0))
    assert.isFalse(b.admit(line("a", 2, 40), 10))
    assert.isFalse(b.admit(line("a", 3, 2), 20))
    const due = b.due(1000)
    assert.deepStrictEqual(
      due.map((s) => [s.line.kind, s.more]),
      [["a", 42]]
    )
  })

  it("a window found over by a new line is still summed up", () => {
    const b = new LogBudget(1, 1000)
    b.admit(line("a", 1), 0)
    b.admit(line("a", 2), 1)
    // the caller did not ask for the summary before the next line came
    assert.isTrue(b.admit(line("a", 3), 2000))
    assert.strictEqual(b.nextDue(2000), 2000)
    assert.deepStrictEqual(
      b.due(2000).map((s) => s.more),
      [1]
    )
  })

  it("every message is written or summed up exactly once, and a kind gets at most 2 × perWindow lines in any window's time", () =>
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.constantFrom("a", "b", "c"), fc.integer({ min: 0, max: 400 }), fc.integer({ min: 1, max: 5 })),
          { maxLength: 300 }
        ),
        fc.integer({ min: 1, max: 4 }),
        (events, perWindow) => {
          const windowMs = 100
          const b = new LogBudget(perWindow, windowMs)
          let now = 0
          let written = 0
          let summed = 0
          let total = 0
          const writtenAt = new Map<string, Array<number>>()
          for (const [kind, gap, count] of events) {
            now += gap
            for (const s of b.due(now)) summed += s.more
            total += count
            if (b.admit(line(kind, now, count), now)) {
              written += count
              writtenAt.set(kind, [...(writtenAt.get(kind) ?? []), now])
            }
          }
          for (const s of b.due(now + windowMs)) summed += s.more
          assert.strictEqual(written + summed, total)
          for (const times of writtenAt.values()) {
            // windows do not overlap and each lasts windowMs at least, so any stretch shorter
            // than one meets at most two of them
            for (let i = 2 * perWindow; i < times.length; i++)
              assert.isAtLeast(times[i]! - times[i - 2 * perWindow]!, windowMs)
          }
        }
      )
    ))
})

/**
 * The KV model with the linearizability checker: it accepts histories a correct store
 * gives (concurrent operations in either order, unknown outcomes, lists) and rejects ones
 * that no sequential order explains, so the simulator's and the HTTP linearizability
 * checks can fail.
 */
import { assert, describe, it } from "@effect/vitest"
import { type Input, KvModel, type Output } from "@synod/testing/KvModel"
import { check, type Operation } from "@synod/testing/Linearizability"
import { Kv } from "@synod/kv"
import * as fc from "fast-check"

const op = (client: string, input: Input, call: number, ret: number | undefined, output?: Output) =>
  ({ client, input, call, ret, output }) as Operation<Input, Output>

const put = (key: string, value: string) => ({ _tag: "Put", key, value }) as const
const get = (key: string) => ({ _tag: "Get", key }) as const
const cas = (key: string, version: number, value: string) => ({ _tag: "Cas", key, version, value }) as const
const value = (v: string | null, version: number) => ({ _tag: "Value", value: v, version }) as const
const written = (version: number) => ({ _tag: "Written", version }) as const
const swapped = (ok: boolean, version: number, v: string | null) =>
  ({ _tag: "Swapped", ok, version, value: v }) as const
const list = (prefix: string, after?: string) =>
  ({ _tag: "List", prefix, limit: 10, ...(after === undefined ? {} : { after }) }) as const
const listed = (entries: ReadonlyArray<readonly [string, string, number]>, more = false) =>
  ({
    _tag: "Listed",
    entries: entries.map(([key, value, version]) => ({ key, value, version })),
    more,
    revision: 0
  }) as const

describe("KvModel", () => {
  it("accepts a sequential history and concurrent writes read in either order", () => {
    assert.isTrue(
      check(KvModel, [
        op("a", put("k", "1"), 0, 1, written(1)),
        op("a", get("k"), 2, 3, value("1", 1)),
        op("a", cas("k", 1, "2"), 4, 5, swapped(true, 7, "2")),
        op("a", cas("k", 1, "3"), 6, 7, swapped(false, 7, "2")),
        op("a", { _tag: "Del", key: "k" }, 8, 9, { _tag: "Deleted", existed: true }),
        op("a", get("k"), 10, 11, value(null, 0))
      ]).ok
    )
    // b's write overlaps a's; c reads b's value after both returned: b went second
    assert.isTrue(
      check(KvModel, [
        op("a", put("k", "a"), 0, 10, written(2)),
        op("b", put("k", "b"), 1, 9, written(3)),
        op("c", get("k"), 11, 12, value("b", 3))
      ]).ok
    )
  })

  it("rejects a stale read, a lost write, a wrong version and a double swap", () => {
    const stale = check(KvModel, [
      op("a", put("k", "1"), 0, 1, written(1)),
      op("a", put("k", "2"), 2, 3, written(2)),
      op("b", get("k"), 4, 5, value("1", 1))
    ])
    assert.isFalse(stale.ok)
    assert.isDefined(stale.failingPartition)
    assert.isFalse(
      check(KvModel, [op("a", put("k", "1"), 0, 1, written(1)), op("b", get("k"), 2, 3, value(null, 0))]).ok
    )
    assert.isFalse(
      check(KvModel, [op("a", put("k", "1"), 0, 1, written(4)), op("b", get("k"), 2, 3, value("1", 5))]).ok
    )
    // two clients swap from the same version and both succeed
    assert.isFalse(
      check(KvModel, [
        op("a", put("k", "0"), 0, 1, written(1)),
        op("a", cas("k", 1, "a"), 2, 5, swapped(true, 2, "a")),
        op("b", cas("k", 1, "b"), 3, 6, swapped(true, 3, "b"))
      ]).ok
    )
    // a version going down
    assert.isFalse(
      check(KvModel, [op("a", put("k", "1"), 0, 1, written(5)), op("a", put("k", "2"), 2, 3, written(4))]).ok
    )
  })

  it("an unknown outcome may or may not have happened, but not both", () => {
    const unknown = op("a", put("k", "x"), 0, undefined)
    assert.isTrue(check(KvModel, [unknown, op("b", get("k"), 5, 6, value("x", 9))]).ok)
    assert.isTrue(check(KvModel, [unknown, op("b", get("k"), 5, 6, value(null, 0))]).ok)
    assert.isFalse(
      check(KvModel, [unknown, op("b", get("k"), 5, 6, value("x", 9)), op("b", get("k"), 7, 8, value(null, 0))]).ok
    )
  })

  it("a compare-and-set on version 0 fails once a write of unknown outcome was seen", () => {
    const unknown = op("a", put("k", "x"), 0, undefined)
    const swap = op("c", cas("k", 0, "y"), 7, 8, swapped(true, 10, "y"))
    assert.isTrue(check(KvModel, [unknown, swap]).ok)
    assert.isFalse(check(KvModel, [unknown, op("b", get("k"), 5, 6, value("x", 9)), swap]).ok)
  })

  it("checks a list as one read of every key it covers", () => {
    const writes = [op("a", put("a", "1"), 0, 1, written(1)), op("a", put("b", "2"), 2, 3, written(2))]
    const after = (l: Input, o: Output) => check(KvModel, [...writes, op("b", l, 4, 5, o)]).ok
    assert.isTrue(
      after(
        list(""),
        listed([
          ["a", "1", 1],
          ["b", "2", 2]
        ])
      )
    )
    // a key it covers but did not return reads as absent: stale
    assert.isFalse(after(list(""), listed([["a", "1", 1]])))
    // with more to come, keys past its last entry are not covered; nor are keys outside
    // the prefix or not after the cursor
    assert.isTrue(after(list(""), listed([["a", "1", 1]], true)))
    assert.isTrue(after(list("b"), listed([["b", "2", 2]])))
    assert.isTrue(after(list("", "a"), listed([["b", "2", 2]])))
    // a value nobody wrote, a wrong version, an answer that is no list
    assert.isFalse(after(list("c"), listed([["c", "3", 3]])))
    assert.isFalse(after(list("a"), listed([["a", "1", 2]])))
    assert.isFalse(after(list(""), written(3)))
    // a list whose outcome is unknown reads nothing
    assert.isTrue(check(KvModel, [...writes, op("b", list(""), 4, undefined)]).ok)
  })
})

describe("KvModel / transactions", () => {
  const txn = (
    compare: ReadonlyArray<Kv.Compare>,
    success: ReadonlyArray<Kv.TxnOp>,
    failure: ReadonlyArray<Kv.TxnOp> = []
  ): Input => ({ _tag: "Txn", compare, success, failure })
  const transacted = (succeeded: boolean, results: ReadonlyArray<Kv.TxnOpResult>, revision = 0): Output => ({
    _tag: "Transacted",
    succeeded,
    results,
    revision
  })
  // a and b move together: a transfer that keeps their sum
  const move = txn(
    [{ key: "a", version: 1 }],
    [
      { op: "put", key: "a", value: "0" },
      { op: "put", key: "b", value: "10" }
    ]
  )
  const setup = [op("w", put("a", "10"), 0, 1, written(1)), op("w", put("b", "0"), 2, 3, written(2))]

  it("accepts a transaction seen atomically, and its failure branch", () => {
    const moved = transacted(true, [
      { op: "put", key: "a", version: 3 },
      { op: "put", key: "b", version: 4 }
    ])
    assert.isTrue(
      check(KvModel, [
        ...setup,
        op("t", move, 4, 10, moved),
        // concurrent reads see before or after
        op("r", get("b"), 5, 6, value("0", 2)),
        op("r", get("a"), 7, 8, value("0", 3)),
        op("t", move, 11, 12, transacted(false, [])),
        op("r", get("b"), 13, 14, value("10", 4))
      ]).ok
    )
  })

  it("rejects a transaction seen half done, a wrong branch, and a wrong result", () => {
    const moved = transacted(true, [
      { op: "put", key: "a", version: 3 },
      { op: "put", key: "b", version: 4 }
    ])
    // a reader sees b's new value, then a's old one: not atomic
    const torn = check(KvModel, [
      ...setup,
      op("t", move, 4, 20, moved),
      op("r", get("b"), 5, 6, value("10", 4)),
      op("r", get("a"), 7, 8, value("10", 1))
    ])
    assert.isFalse(torn.ok)
    assert.isTrue(torn.failingPartition?.some((line) => line.includes("txn [a v=1]")))
    // the comparison held, yet the failure branch ran
    assert.isFalse(check(KvModel, [...setup, op("t", move, 4, 5, transacted(false, []))]).ok)
    // it did not hold (a was rewritten), yet the success branch ran
    assert.isFalse(check(KvModel, [...setup, op("w", put("a", "7"), 4, 5, written(3)), op("t", move, 6, 7, moved)]).ok)
    // a get inside the transaction reads a value nobody wrote
    const read = txn([], [{ op: "get", key: "b" }])
    assert.isFalse(
      check(KvModel, [
        ...setup,
        op("t", read, 4, 5, transacted(true, [{ op: "get", key: "b", value: "9", version: 2 }]))
      ]).ok
    )
  })

  it("a transaction of unknown outcome may or may not have happened, as a whole", () => {
    const lost = op("t", move, 4, undefined)
    assert.isTrue(
      check(KvModel, [
        ...setup,
        lost,
        op("r", get("a"), 9, 10, value("0", 7)),
        op("r", get("b"), 11, 12, value("10", 8))
      ]).ok
    )
    assert.isTrue(
      check(KvModel, [
        ...setup,
        lost,
        op("r", get("a"), 9, 10, value("10", 1)),
        op("r", get("b"), 11, 12, value("0", 2))
      ]).ok
    )
    // half of it
    assert.isFalse(
      check(KvModel, [
        ...setup,
        lost,
        op("r", get("a"), 9, 10, value("0", 7)),
        op("r", get("b"), 11, 12, value("0", 2))
      ]).ok
    )
  })

  it("accepts every history of a real store with transactions (sequential, random)", () => {
    const keys = ["a", "b", "c"]
    const opArb: fc.Arbitrary<Input> = fc.oneof(
      fc.record({ _tag: fc.constant("Put" as const), key: fc.constantFrom(...keys), value: fc.constantFrom("1", "2") }),
      fc.record({ _tag: fc.constant("Del" as const), key: fc.constantFrom(...keys) }),
      fc.record({
        _tag: fc.constant("Txn" as const),
        compare: fc.array(
          fc.oneof(
            fc.record({ key: fc.constantFrom(...keys), version: fc.nat(6), op: fc.constantFrom("=", "!=", "<", ">") }),
            fc.record({
              key: fc.constantFrom(...keys),
              value: fc.constantFrom("1", "2"),
              op: fc.constantFrom("=", "!=")
            }),
            fc.record({ key: fc.constantFrom(...keys), exists: fc.boolean() })
          ),
          { maxLength: 2 }
        ),
        success: fc.array(txnOpArb(keys), { maxLength: 3 }),
        failure: fc.array(txnOpArb(keys), { maxLength: 3 })
      })
    )
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 12 }), (inputs) => {
        let state = Kv.initial
        const history = inputs.map((input, i) => {
          const [next, output] = Kv.apply(state, input)
          state = next
          return op("c", input, 2 * i, 2 * i + 1, output)
        })
        assert.isTrue(check(KvModel, history).ok)
      })
    )
  })
})

const txnOpArb = (keys: ReadonlyArray<string>): fc.Arbitrary<Kv.TxnOp> =>
  fc.oneof(
    fc.record({ op: fc.constant("get" as const), key: fc.constantFrom(...keys) }),
    fc.record({ op: fc.constant("put" as const), key: fc.constantFrom(...keys), value: fc.constantFrom("1", "2") }),
    fc.record({ op: fc.constant("del" as const), key: fc.constantFrom(...keys) })
  )

/**
 * Transactions of the key-value state machine: comparisons on values, versions and
 * existence; the branch that runs; one revision per write; the limits.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import { Kv } from "@synod/kv"

const apply = (state: Kv.State, command: Kv.Command) => Kv.apply(state, command)
const put = (state: Kv.State, key: string, value: string) => apply(state, { _tag: "Put", key, value })[0]

describe("Kv transactions", () => {
  it("runs the success branch when every comparison holds, in order, one revision per write", () => {
    let s = put(Kv.initial, "a", "1") // revision 1
    s = put(s, "b", "x") // revision 2
    const [next, r] = apply(s, {
      _tag: "Txn",
      compare: [
        { key: "a", version: 1 },
        { key: "a", value: "1" },
        { key: "b", exists: true },
        { key: "c", exists: false },
        { key: "a", version: 2, op: "<" },
        { key: "b", value: "w", op: ">" },
        { key: "c", version: 0 }
      ],
      success: [
        { op: "put", key: "a", value: "2" },
        { op: "get", key: "a" },
        { op: "del", key: "b" },
        { op: "del", key: "nope" },
        { op: "put", key: "c", value: "3" }
      ],
      failure: [{ op: "put", key: "never", value: "!" }]
    })
    assert.deepStrictEqual(r, {
      _tag: "Transacted",
      succeeded: true,
      results: [
        { op: "put", key: "a", version: 3 },
        { op: "get", key: "a", value: "2", version: 3 },
        { op: "del", key: "b", existed: true },
        { op: "del", key: "nope", existed: false },
        { op: "put", key: "c", version: 5 }
      ],
      revision: 5
    })
    assert.strictEqual(next.revision, 5)
    assert.deepStrictEqual(apply(next, { _tag: "Get", key: "b" })[1], { _tag: "Value", value: null, version: 0 })
    // the state it was given is untouched
    assert.deepStrictEqual(apply(s, { _tag: "Get", key: "a" })[1], { _tag: "Value", value: "1", version: 1 })
  })

  it("runs the failure branch when any comparison fails, and changes nothing else", () => {
    const s = put(Kv.initial, "lock", "alice")
    const take = (who: string): Kv.Command => ({
      _tag: "Txn",
      compare: [{ key: "lock", exists: false }],
      success: [{ op: "put", key: "lock", value: who }],
      failure: [{ op: "get", key: "lock" }]
    })
    const [next, r] = apply(s, take("bob"))
    assert.deepStrictEqual(r, {
      _tag: "Transacted",
      succeeded: false,
      results: [{ op: "get", key: "lock", value: "alice", version: 1 }],
      revision: 1
    })
    assert.strictEqual(next, s)
    // each kind of comparison can fail
    for (const c of [
      { key: "lock", version: 2 },
      { key: "lock", version: 1, op: "!=" },
      { key: "lock", value: "bob" },
      { key: "absent", value: "" },
      { key: "absent", value: "x", op: "<" },
      { key: "lock", exists: false },
      { key: "absent", exists: true }
    ] as const) {
      assert.isFalse(Kv.holds(s, c), JSON.stringify(c))
    }
    assert.isTrue(Kv.holds(s, { key: "absent", value: "x", op: "!=" }))
  })

  it("an empty transaction succeeds and writes nothing", () => {
    const [next, r] = apply(Kv.initial, { _tag: "Txn", compare: [], success: [], failure: [] })
    assert.deepStrictEqual(r, { _tag: "Transacted", succeeded: true, results: [], revision: 0 })
    assert.strictEqual(next, Kv.initial)
  })

  it("is bounded: comparisons, operations, keys and values are validated", () => {
    const decode = Schema.decodeUnknownResult(Kv.Command)
    const ok = { _tag: "Txn", compare: [], success: [], failure: [] }
    assert.isTrue(Result.isSuccess(decode(ok)))
    const many = (n: number) => Array.from({ length: n }, (_, i) => ({ op: "get", key: `k${i}` }))
    assert.isTrue(Result.isSuccess(decode({ ...ok, success: many(Kv.maxTxnOps) })))
    assert.isTrue(Result.isFailure(decode({ ...ok, success: many(Kv.maxTxnOps + 1) })))
    assert.isTrue(Result.isFailure(decode({ ...ok, failure: many(Kv.maxTxnOps + 1) })))
    const compares = (n: number) => Array.from({ length: n }, () => ({ key: "k", exists: true }))
    assert.isTrue(Result.isFailure(decode({ ...ok, compare: compares(Kv.maxTxnCompares + 1) })))
    assert.isTrue(Result.isFailure(decode({ ...ok, success: [{ op: "put", key: "", value: "v" }] })))
    assert.isTrue(Result.isFailure(decode({ ...ok, success: [{ op: "rename", key: "k" }] })))
    assert.isTrue(Result.isFailure(decode({ ...ok, compare: [{ key: "k", version: 1, op: "~" }] })))
    assert.isTrue(Result.isFailure(decode({ ...ok, compare: [{ key: "k", version: -1 }] })))
    const message = Result.match(decode({ ...ok, success: many(Kv.maxTxnOps + 1) }), {
      onSuccess: () => "",
      onFailure: (e) => e.message
    })
    assert.include(message, `at most ${Kv.maxTxnOps} success operations`)
  })
})

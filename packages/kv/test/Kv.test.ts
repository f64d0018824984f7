/**
 * The key-value state machine alone: versions, compare-and-set, list by prefix, the
 * snapshot round trip and the command schemas' limits.
 */
import { assert, describe, it } from "@effect/vitest"
import { StateMachine } from "@synod/core"
import { Result, Schema } from "effect"
import * as fc from "fast-check"
import { Kv } from "@synod/kv"

const run = (commands: ReadonlyArray<Kv.Command>, from: Kv.State = Kv.initial) => {
  let state = from
  const results: Array<Kv.Result> = []
  for (const c of commands) {
    const [next, r] = Kv.apply(state, c)
    state = next
    results.push(r)
  }
  return { state, results }
}

const anyKey = fc.string({ minLength: 1, maxLength: 3 }).filter((k) => k !== "." && k !== "..")
/** Any command that changes the store: writes, transactions, leases, a restore. */
const anyCommand: fc.Arbitrary<Kv.Command> = fc.oneof(
  fc.record({ _tag: fc.constant("Put" as const), key: anyKey, value: fc.string({ maxLength: 30 }) }),
  fc.record({ _tag: fc.constant("Del" as const), key: anyKey }),
  fc.record({
    _tag: fc.constant("Cas" as const),
    key: anyKey,
    version: fc.nat(5),
    value: fc.string({ maxLength: 30 })
  }),
  fc.record({
    _tag: fc.constant("Txn" as const),
    compare: fc.constant([]),
    success: fc.array(
      fc.oneof(
        fc.record({ op: fc.constant("put" as const), key: anyKey, value: fc.string({ maxLength: 30 }) }),
        fc.record({ op: fc.constant("del" as const), key: anyKey })
      ),
      { maxLength: 3 }
    ),
    failure: fc.constant([])
  }),
  fc.record({ _tag: fc.constant("LeaseGrant" as const), ttlMs: fc.constant(1000) }),
  fc.record({
    _tag: fc.constant("Put" as const),
    key: anyKey,
    value: fc.string({ maxLength: 30 }),
    lease: fc.integer({ min: 1, max: 3 })
  }),
  fc.record({ _tag: fc.constant("LeaseRevoke" as const), id: fc.integer({ min: 1, max: 3 }) }),
  fc.record({
    _tag: fc.constant("Restore" as const),
    id: fc.constant("r"),
    index: fc.nat(2),
    entries: fc.array(fc.tuple(anyKey, fc.string({ maxLength: 30 }), fc.integer({ min: 1, max: 3 })), { maxLength: 3 })
  })
)

describe("Kv", () => {
  it("versions count the writes: puts, successful swaps and deletes of present keys", () => {
    const { results, state } = run([
      { _tag: "Put", key: "a", value: "1" },
      { _tag: "Put", key: "b", value: "1" },
      { _tag: "Get", key: "a" },
      { _tag: "Put", key: "a", value: "2" },
      { _tag: "Del", key: "nope" },
      { _tag: "Del", key: "b" },
      { _tag: "Get", key: "b" },
      { _tag: "Put", key: "c", value: "x" }
    ])
    assert.deepStrictEqual(results, [
      { _tag: "Written", version: 1 },
      { _tag: "Written", version: 2 },
      { _tag: "Value", value: "1", version: 1 },
      { _tag: "Written", version: 3 },
      { _tag: "Deleted", existed: false },
      { _tag: "Deleted", existed: true },
      { _tag: "Value", value: null, version: 0 },
      { _tag: "Written", version: 5 }
    ])
    assert.strictEqual(state.revision, 5)
  })

  it("compare-and-set writes only on the expected version; 0 means absent", () => {
    const { results } = run([
      { _tag: "Cas", key: "lock", version: 0, value: "alice" },
      { _tag: "Cas", key: "lock", version: 0, value: "bob" },
      { _tag: "Cas", key: "lock", version: 1, value: "carol" },
      { _tag: "Cas", key: "lock", version: 1, value: "dave" },
      { _tag: "Del", key: "lock" },
      { _tag: "Cas", key: "lock", version: 2, value: "erin" },
      { _tag: "Cas", key: "lock", version: 0, value: "erin" }
    ])
    assert.deepStrictEqual(results, [
      { _tag: "Swapped", ok: true, version: 1, value: "alice" },
      { _tag: "Swapped", ok: false, version: 1, value: "alice" },
      { _tag: "Swapped", ok: true, version: 2, value: "carol" },
      { _tag: "Swapped", ok: false, version: 2, value: "carol" },
      { _tag: "Deleted", existed: true },
      { _tag: "Swapped", ok: false, version: 0, value: null },
      { _tag: "Swapped", ok: true, version: 4, value: "erin" }
    ])
  })

  it("lists by prefix in key order, up to the limit", () => {
    const { state } = run(
      ["b", "a/2", "a/10", "a", "a/1", "ab"].map((key): Kv.Command => ({ _tag: "Put", key, value: key.toUpperCase() }))
    )
    const [, all] = Kv.apply(state, { _tag: "List", prefix: "", limit: 100 })
    assert.deepStrictEqual(all._tag === "Listed" ? all.entries.map((e) => e.key) : [], [
      "a",
      "a/1",
      "a/10",
      "a/2",
      "ab",
      "b"
    ])
    const [, some] = Kv.apply(state, { _tag: "List", prefix: "a/", limit: 2 })
    assert.deepStrictEqual(some, {
      _tag: "Listed",
      entries: [
        { key: "a/1", value: "A/1", version: 5 },
        { key: "a/10", value: "A/10", version: 3 }
      ],
      more: true,
      revision: 6
    })
    const [, none] = Kv.apply(state, { _tag: "List", prefix: "zz", limit: 5 })
    assert.deepStrictEqual(none, { _tag: "Listed", entries: [], more: false, revision: 6 })
  })

  it("a list stops at maxListBytes of keys and values and continues after a cursor", () => {
    // seven values of 64 Ki CJK characters: about 192 KiB of UTF-8 each
    const big = "漢".repeat(Kv.maxValueLength)
    let state = Kv.initial
    for (let i = 0; i < 7; i++) [state] = Kv.apply(state, { _tag: "Put", key: `cjk/${i}`, value: big })
    const keys: Array<string> = []
    let after: string | undefined
    for (let page = 0; page < 10; page++) {
      const [, r] = Kv.apply(state, {
        _tag: "List",
        prefix: "cjk/",
        limit: 100,
        ...(after === undefined ? {} : { after })
      })
      if (r._tag !== "Listed") throw new Error("not a list")
      const bytes = r.entries.reduce((n, e) => n + Buffer.byteLength(e.key) + Buffer.byteLength(e.value), 0)
      // the first entry always comes; the others only within the byte cap
      assert.isTrue(r.entries.length === 1 || bytes <= Kv.maxListBytes, `page of ${bytes} bytes`)
      keys.push(...r.entries.map((e) => e.key))
      if (!r.more) break
      after = r.entries.at(-1)!.key
    }
    assert.deepStrictEqual(keys, ["cjk/0", "cjk/1", "cjk/2", "cjk/3", "cjk/4", "cjk/5", "cjk/6"])
  })

  it("apply does not change the state it was given", () => {
    const { state } = run([{ _tag: "Put", key: "k", value: "1" }])
    run(
      [
        { _tag: "Put", key: "k", value: "2" },
        { _tag: "Del", key: "k" }
      ],
      state
    )
    assert.deepStrictEqual(Kv.apply(state, { _tag: "Get", key: "k" })[1], { _tag: "Value", value: "1", version: 1 })
  })

  it("encodeSnapshot writes exactly what the snapshot schema writes, for any store", () => {
    const encode = Schema.encodeSync(Schema.toCodecJson(Kv.Snapshot))
    const op = fc.oneof(
      fc.record({
        _tag: fc.constant("Put" as const),
        key: fc.string({ minLength: 1, maxLength: 4 }),
        value: fc.string()
      }),
      fc.record({ _tag: fc.constant("Del" as const), key: fc.string({ minLength: 1, maxLength: 4 }) })
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const { state } = run(ops.filter((o) => o.key !== "." && o.key !== ".."))
        assert.deepStrictEqual(Kv.encodeSnapshot(state), encode(state))
        // in slices of 3 entries, the same encoding
        const gen = Kv.encodeSnapshotGradually(state, 3)
        let r = gen.next()
        while (!r.done) r = gen.next()
        assert.deepStrictEqual(r.value, encode(state))
        assert.deepStrictEqual(Kv.summary(state), {
          keys: Kv.encodeSnapshot(state).entries.length,
          revision: state.revision
        })
      })
    )
  })

  it("size is kept as the store changes: what walking the snapshot's entries and history counts, also after a decode", () => {
    const decode = Schema.decodeUnknownSync(Schema.toCodecJson(Kv.Snapshot))
    const walked = (state: Kv.State) => {
      const encoded = Kv.encodeSnapshot(state)
      const entries = (es: ReadonlyArray<readonly [string, string, number]>) =>
        es.reduce((n, [k, v]) => n + k.length + v.length + 16, 0)
      return entries(encoded.entries) + entries(encoded.restoring?.entries ?? []) + state.history.bytes
    }
    fc.assert(
      fc.property(fc.array(anyCommand, { maxLength: 60 }), (ops) => {
        let state = Kv.initial
        for (const o of ops) {
          state = Kv.apply(state, o)[0]
          assert.strictEqual(Kv.size(state), walked(state), JSON.stringify(o))
        }
        const restored = decode(JSON.parse(JSON.stringify(Kv.encodeSnapshot(state))))
        assert.strictEqual(Kv.size(restored), Kv.size(state))
      })
    )
  })

  it("a batch applied to a draft (machine.edit) answers and ends as applied one state at a time, and the state it began from stays as it was", () => {
    const edit = Kv.machine.edit!
    fc.assert(
      fc.property(fc.array(fc.array(anyCommand, { maxLength: 12 }), { maxLength: 8 }), (batches) => {
        let state = Kv.initial
        for (const batch of batches) {
          const before = JSON.stringify(Kv.encodeSnapshot(state))
          let persistent = state
          const expected = batch.map((c) => {
            const [next, result] = Kv.apply(persistent, c)
            persistent = next
            return result
          })
          let draft = edit.begin(state)
          const results = batch.map((c) => {
            const [next, result] = Kv.apply(draft, c)
            draft = next
            return result
          })
          const ended = edit.end(draft)
          assert.deepStrictEqual(results, expected)
          assert.strictEqual(JSON.stringify(Kv.encodeSnapshot(ended)), JSON.stringify(Kv.encodeSnapshot(persistent)))
          assert.strictEqual(Kv.size(ended), Kv.size(persistent))
          assert.strictEqual(JSON.stringify(Kv.encodeSnapshot(state)), before, "the state the draft began from")
          state = ended
        }
      })
    )
  })

  it("a snapshot decoded by hand is the one the schema decodes, for any store; anything else is left to the schema", () => {
    const retention = { revisions: 5, bytes: 200 }
    const slow = Schema.decodeUnknownResult(Schema.toCodecJson(Kv.snapshotSchema(retention)))
    const same = (a: Kv.State, b: Kv.State) => {
      assert.strictEqual(JSON.stringify(Kv.encodeSnapshot(a)), JSON.stringify(Kv.encodeSnapshot(b)))
      assert.strictEqual(a.bytes, b.bytes)
      assert.strictEqual(Kv.size(a), Kv.size(b))
      assert.strictEqual(a.history.oldest, b.history.oldest)
    }
    /** What a hostile or damaged snapshot holds where a value was: often one of another type. */
    const junk = fc.oneof(
      fc.anything(),
      fc.integer({ min: -3, max: 3 }),
      fc.double(),
      fc.string({ maxLength: 3 }),
      fc.constant(null),
      fc.constant([])
    )
    /** `json` changed at one place: a field, an entry, a part of one, the history, an event's part, one more key. */
    const mutated = (json: any) =>
      fc.oneof(
        junk.map((v) => ({ ...json, revision: v })),
        fc.tuple(fc.nat(), junk).map(([i, v]) => {
          const entries = [...json.entries]
          entries[i % (entries.length + 1)] = v
          return { ...json, entries }
        }),
        fc.tuple(fc.nat(), fc.nat(3), junk).map(([i, j, v]) => {
          if (json.entries.length === 0) return { ...json, entries: [v] }
          const entries = json.entries.map((e: Array<unknown>) => [...e])
          entries[i % entries.length][j] = v
          return { ...json, entries }
        }),
        junk.map((v) => ({ ...json, history: v })),
        fc.tuple(fc.nat(), fc.nat(3), junk).map(([i, j, v]) => {
          const events = (json.history?.events ?? []).map((e: Array<unknown>) => [...e])
          if (events.length === 0) return { ...json, history: { compacted: 0, events: [v] } }
          events[i % events.length][j] = v
          return { ...json, history: { ...json.history, events } }
        }),
        fc.tuple(fc.string({ maxLength: 8 }), junk).map(([k, v]) => ({ ...json, [k]: v }))
      )
    fc.assert(
      fc.property(
        fc.array(anyCommand, { maxLength: 25 }).chain((commands) => {
          const { state } = run(commands, Kv.empty(retention))
          const json = JSON.parse(JSON.stringify(Kv.encodeSnapshot(state)))
          return fc.tuple(fc.constant(json), mutated(json))
        }),
        ([json, changed]) => {
          const fast = Kv.decodeSnapshotFast(json, retention)
          const decoded = slow(json)
          assert.isTrue(Result.isSuccess(decoded))
          if (Result.isSuccess(decoded)) {
            // what replicas copy and servers load takes the fast way: a store without leases or a restore
            if (json.leases === undefined && json.restoring === undefined) assert.isDefined(fast)
            if (fast !== undefined) same(fast, decoded.success)
          }
          // never accepts what the schema refuses, and decodes the same store when both do
          const fastChanged = Kv.decodeSnapshotFast(changed, retention)
          if (fastChanged !== undefined) {
            const slowChanged = slow(changed)
            assert.isTrue(Result.isSuccess(slowChanged), `the schema refuses ${JSON.stringify(changed)}`)
            if (Result.isSuccess(slowChanged)) same(fastChanged, slowChanged.success)
          }
        }
      ),
      { numRuns: 1000 }
    )
  })

  it("the snapshot round-trips through JSON and the restored store goes on with the same versions", () => {
    const codecs = StateMachine.codecs(Kv.machine)
    const { state } = run([
      { _tag: "Put", key: "x/1", value: "one" },
      { _tag: "Put", key: "x/2", value: "two" },
      { _tag: "Del", key: "x/1" },
      { _tag: "Put", key: "y", value: "" }
    ])
    const json = JSON.parse(JSON.stringify(codecs.encodeState(state)))
    assert.deepStrictEqual(json, {
      revision: 4,
      entries: [
        ["x/2", "two", 2],
        ["y", "", 4]
      ],
      history: {
        compacted: 0,
        events: [
          [1, "x/1", "one"],
          [2, "x/2", "two"],
          [3, "x/1", null],
          [4, "y", ""]
        ]
      }
    })
    // a snapshot written before the history existed: empty history, compacted at its revision
    const old = Result.getOrThrow(codecs.decodeState({ revision: 4, entries: json.entries }))
    assert.strictEqual(old.history.compacted, 4)
    assert.strictEqual(old.history.size, 0)
    const restored = Result.getOrThrow(codecs.decodeState(json))
    assert.deepStrictEqual(Kv.apply(restored, { _tag: "Put", key: "x/2", value: "2" })[1], {
      _tag: "Written",
      version: 5
    })
    assert.isTrue(Result.isFailure(codecs.decodeState({ revision: -1, entries: [] })))
    // a hand-made snapshot listing a key twice, or out of order: the last listing counts, once
    const twice = Result.getOrThrow(
      codecs.decodeState({
        revision: 9,
        entries: [
          ["b", "bb", 2],
          ["a", "a", 1],
          ["b", "b", 3]
        ]
      })
    )
    const once = Result.getOrThrow(
      codecs.decodeState({
        revision: 9,
        entries: [
          ["a", "a", 1],
          ["b", "b", 3]
        ]
      })
    )
    assert.strictEqual(twice.bytes, once.bytes)
    assert.strictEqual(Kv.size(twice), Kv.size(once))
    assert.deepStrictEqual(Kv.encodeSnapshot(twice).entries, Kv.encodeSnapshot(once).entries)
  })

  it("a restore is refused, leaving the store new, for a key listed twice, two keys with one version, or a revision with no room left", () => {
    const refused = (chunks: ReadonlyArray<Kv.Command>, reason: string) => {
      const { state, results } = run(chunks)
      const last = results.at(-1)!
      assert.strictEqual(last._tag, "Restored")
      if (last._tag === "Restored") {
        assert.isFalse(last.ok, reason)
        assert.include(last.reason, reason)
      }
      assert.strictEqual(state.revision, 0)
      assert.strictEqual(Kv.size(state), 0)
    }
    refused(
      [
        { _tag: "Restore", id: "r", index: 0, entries: [["m", "1", 1]] },
        { _tag: "Restore", id: "r", index: 1, entries: [["m", "2", 2]], done: { revision: 2 } }
      ],
      "listed before"
    )
    refused(
      [
        {
          _tag: "Restore",
          id: "r",
          index: 0,
          entries: [
            ["a", "1", 1],
            ["b", "1", 1]
          ],
          done: { revision: 2 }
        }
      ],
      "as another key has"
    )
    refused(
      [
        {
          _tag: "Restore",
          id: "r",
          index: 0,
          entries: [["a", "1", 1]],
          done: { revision: Number.MAX_SAFE_INTEGER - 1 }
        }
      ],
      "the most a restore may set"
    )
    // at the bound itself: taken, and writes go on above it
    const { state } = run([
      { _tag: "Restore", id: "r", index: 0, entries: [["a", "1", 1]], done: { revision: Kv.maxRestoreRevision } },
      { _tag: "Put", key: "b", value: "2" }
    ])
    assert.strictEqual(state.revision, Kv.maxRestoreRevision + 1)
  })

  it("commands are validated: empty or oversized keys, oversized values, bad limits and versions", () => {
    const decode = Schema.decodeUnknownResult(Kv.Command)
    assert.isTrue(Result.isSuccess(decode({ _tag: "Put", key: "k", value: "" })))
    assert.isTrue(Result.isFailure(decode({ _tag: "Put", key: "", value: "v" })))
    assert.isTrue(Result.isFailure(decode({ _tag: "Get", key: ".." })))
    assert.isTrue(Result.isFailure(decode({ _tag: "Get", key: "k".repeat(Kv.maxKeyLength + 1) })))
    assert.isTrue(Result.isFailure(decode({ _tag: "Put", key: "k", value: "v".repeat(Kv.maxValueLength + 1) })))
    assert.isTrue(Result.isFailure(decode({ _tag: "Cas", key: "k", version: -1, value: "v" })))
    assert.isTrue(Result.isFailure(decode({ _tag: "Cas", key: "k", version: 1.5, value: "v" })))
    assert.isTrue(Result.isFailure(decode({ _tag: "List", prefix: "", limit: 0 })))
    assert.isTrue(Result.isFailure(decode({ _tag: "List", prefix: "", limit: Kv.maxListLimit + 1 })))
  })
})

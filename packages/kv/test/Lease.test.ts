/**
 * Leases in the key-value state machine: grant, keep-alive, revoke and expiry (guarded by
 * the renewals the keeper saw), keys attached by puts and transactions and deleted when
 * their lease ends (as writes the watches see), the snapshot round trip and the bounds.
 */
import { assert, describe, it } from "@effect/vitest"
import { Limits, StateMachine } from "@synod/core"
import { Result, Schema } from "effect"
import * as fc from "fast-check"
import { Kv, KvLease, KvWatch } from "@synod/kv"

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

const codecs = StateMachine.codecs(Kv.machine)
const roundTrip = (state: Kv.State): Kv.State => {
  const decoded = codecs.decodeState(JSON.parse(JSON.stringify(codecs.encodeState(state))))
  if (Result.isFailure(decoded)) throw new Error(decoded.failure)
  return decoded.success
}

describe("Kv leases", () => {
  it("grants leases with ids from a counter, the same on every replica, never reused", () => {
    const { results, state } = run([
      { _tag: "LeaseGrant", ttlMs: 1000 },
      { _tag: "LeaseGrant", ttlMs: 2000 },
      { _tag: "LeaseRevoke", id: 2 },
      { _tag: "LeaseGrant", ttlMs: 3000 },
      { _tag: "LeaseList" }
    ])
    assert.deepStrictEqual(results, [
      { _tag: "LeaseGranted", id: 1, ttlMs: 1000 },
      { _tag: "LeaseGranted", id: 2, ttlMs: 2000 },
      { _tag: "LeaseRevoked", id: 2, deleted: 0, revision: 0 },
      { _tag: "LeaseGranted", id: 3, ttlMs: 3000 },
      {
        _tag: "LeasesListed",
        leases: [
          { id: 1, ttlMs: 1000, keys: 0 },
          { id: 3, ttlMs: 3000, keys: 0 }
        ],
        more: false
      }
    ])
    // a grant is not a write: the revision (and the history watches read) is unchanged
    assert.strictEqual(state.revision, 0)
  })

  it("deletes a lease's keys when it is revoked, each delete a write watchers see", () => {
    const { results, state } = run([
      { _tag: "LeaseGrant", ttlMs: 1000 },
      { _tag: "Put", key: "svc/a", value: "10.0.0.1", lease: 1 },
      { _tag: "Put", key: "svc/b", value: "10.0.0.2", lease: 1 },
      { _tag: "Put", key: "other", value: "x" },
      { _tag: "LeaseRevoke", id: 1 },
      { _tag: "Get", key: "svc/a" },
      { _tag: "LeaseKeepAlive", id: 1 }
    ])
    assert.deepStrictEqual(results[4], { _tag: "LeaseRevoked", id: 1, deleted: 2, revision: 5 })
    assert.deepStrictEqual(results[5], { _tag: "Value", value: null, version: 0 })
    assert.deepStrictEqual(results[6], KvLease.notFound(1))
    const selection = KvWatch.select(state, { prefix: "svc/" }, 1, 100)
    assert.deepStrictEqual(selection, {
      _tag: "Events",
      events: [
        { revision: 1, key: "svc/a", value: "10.0.0.1" },
        { revision: 2, key: "svc/b", value: "10.0.0.2" },
        { revision: 4, key: "svc/a", value: null },
        { revision: 5, key: "svc/b", value: null }
      ],
      through: 5
    })
    assert.deepStrictEqual(run([{ _tag: "Get", key: "other" }], state).results[0], {
      _tag: "Value",
      value: "x",
      version: 3
    })
  })

  it("expires only the leases whose renewals are still the ones the keeper saw", () => {
    const { results, state } = run([
      { _tag: "LeaseGrant", ttlMs: 1000 },
      { _tag: "LeaseGrant", ttlMs: 1000 },
      { _tag: "Put", key: "a", value: "1", lease: 1 },
      { _tag: "Put", key: "b", value: "2", lease: 2 },
      { _tag: "LeaseKeepAlive", id: 2 },
      // the keeper looked before lease 2's keep-alive: it names renewals 0 for both
      {
        _tag: "LeaseExpire",
        leases: [
          [1, 0],
          [2, 0],
          [9, 0]
        ]
      }
    ])
    assert.deepStrictEqual(results[4], { _tag: "LeaseKept", id: 2, ttlMs: 1000, renewals: 1 })
    assert.deepStrictEqual(results[5], { _tag: "LeaseExpired", expired: [1], revision: 3 })
    assert.deepStrictEqual(
      KvLease.all(state.leases).map((l) => [l.id, l.renewals]),
      [[2, 1]]
    )
    assert.deepStrictEqual(run([{ _tag: "Get", key: "b" }], state).results[0], {
      _tag: "Value",
      value: "2",
      version: 2
    })
  })

  it("a put without the lease, a put with another lease or a delete detaches the key", () => {
    const { state } = run([
      { _tag: "LeaseGrant", ttlMs: 1000 },
      { _tag: "LeaseGrant", ttlMs: 1000 },
      { _tag: "Put", key: "a", value: "1", lease: 1 },
      { _tag: "Put", key: "b", value: "1", lease: 1 },
      { _tag: "Put", key: "c", value: "1", lease: 1 },
      { _tag: "Put", key: "a", value: "2" },
      { _tag: "Put", key: "b", value: "2", lease: 2 },
      { _tag: "Del", key: "c" },
      { _tag: "LeaseRevoke", id: 1 }
    ])
    const get = (key: string) => run([{ _tag: "Get", key }], state).results[0]
    assert.deepStrictEqual(get("a"), { _tag: "Value", value: "2", version: 4 })
    assert.deepStrictEqual(get("b"), { _tag: "Value", value: "2", version: 5 })
    assert.deepStrictEqual(run([{ _tag: "LeaseList" }], state).results[0], {
      _tag: "LeasesListed",
      leases: [{ id: 2, ttlMs: 1000, keys: 1 }],
      more: false
    })
  })

  it("a put or a transaction naming a missing lease is refused, nothing written", () => {
    const { results, state } = run([
      { _tag: "Put", key: "a", value: "1", lease: 7 },
      { _tag: "LeaseGrant", ttlMs: 1000 },
      {
        _tag: "Txn",
        compare: [],
        success: [
          { op: "put", key: "x", value: "1", lease: 1 },
          { op: "put", key: "y", value: "1", lease: 5 }
        ],
        failure: []
      },
      {
        _tag: "Txn",
        compare: [{ key: "lock", version: 0 }],
        success: [{ op: "put", key: "lock", value: "me", lease: 1 }],
        failure: []
      }
    ])
    assert.deepStrictEqual(results[0], KvLease.notFound(7))
    assert.deepStrictEqual(results[2], KvLease.notFound(5))
    assert.deepStrictEqual(results[3], {
      _tag: "Transacted",
      succeeded: true,
      results: [{ op: "put", key: "lock", version: 1 }],
      revision: 1
    })
    assert.strictEqual(state.revision, 1)
    assert.deepStrictEqual(run([{ _tag: "LeaseRevoke", id: 1 }], state).results[0], {
      _tag: "LeaseRevoked",
      id: 1,
      deleted: 1,
      revision: 2
    })
  })

  it("bounds: TTL, keys per lease, leases alive, expiries per command", () => {
    const decode = Schema.decodeUnknownResult(Kv.Command)
    assert.isTrue(Result.isFailure(decode({ _tag: "LeaseGrant", ttlMs: 10 })))
    assert.isTrue(Result.isFailure(decode({ _tag: "LeaseGrant", ttlMs: KvLease.maxTtlMs + 1 })))
    assert.isTrue(Result.isFailure(decode({ _tag: "LeaseKeepAlive", id: 0 })))
    assert.isTrue(
      Result.isFailure(
        decode({ _tag: "LeaseExpire", leases: Array.from({ length: KvLease.maxExpiries + 1 }, (_, i) => [i + 1, 0]) })
      )
    )
    let state = run([{ _tag: "LeaseGrant", ttlMs: 1000 }]).state
    for (let i = 0; i < KvLease.maxKeysPerLease; i++) {
      state = Kv.apply(state, { _tag: "Put", key: `k${i}`, value: "", lease: 1 })[0]
    }
    const [same, full] = Kv.apply(state, { _tag: "Put", key: "one-more", value: "", lease: 1 })
    assert.strictEqual(same, state)
    assert.deepInclude(full, { _tag: "LeaseRefused", id: 1, notFound: false })
    // rewriting a key the lease holds already is fine
    assert.deepStrictEqual(Kv.apply(state, { _tag: "Put", key: "k0", value: "2", lease: 1 })[1], {
      _tag: "Written",
      version: KvLease.maxKeysPerLease + 1
    })
    let many = Kv.initial
    for (let i = 0; i < KvLease.maxLeases; i++) many = Kv.apply(many, { _tag: "LeaseGrant", ttlMs: 1000 })[0]
    const [, refused] = Kv.apply(many, { _tag: "LeaseGrant", ttlMs: 1000 })
    assert.deepInclude(refused, { _tag: "LeaseRefused", notFound: false })
  })

  it("leases survive the snapshot: ids, TTLs, renewals and attached keys", () => {
    const { state } = run([
      { _tag: "LeaseGrant", ttlMs: 1000 },
      { _tag: "LeaseGrant", ttlMs: 5000 },
      { _tag: "LeaseGrant", ttlMs: 7000 },
      { _tag: "LeaseRevoke", id: 3 },
      { _tag: "Put", key: "a", value: "1", lease: 1 },
      { _tag: "Put", key: "b", value: "1", lease: 2 },
      { _tag: "LeaseKeepAlive", id: 2 }
    ])
    const back = roundTrip(state)
    assert.deepStrictEqual(codecs.encodeState(back), codecs.encodeState(state))
    assert.deepStrictEqual(run([{ _tag: "LeaseGrant", ttlMs: 1000 }], back).results[0], {
      _tag: "LeaseGranted",
      id: 4,
      ttlMs: 1000
    })
    const after = run([{ _tag: "LeaseExpire", leases: [[2, 1]] }], back)
    assert.deepStrictEqual(after.results[0], { _tag: "LeaseExpired", expired: [2], revision: 3 })
    assert.deepStrictEqual(run([{ _tag: "Get", key: "b" }], after.state).results[0], {
      _tag: "Value",
      value: null,
      version: 0
    })
  })

  it("is deterministic: any command sequence gives the same state encoded, through a snapshot or not", () => {
    const command: fc.Arbitrary<Kv.Command> = fc.oneof(
      fc.record({ _tag: fc.constant("LeaseGrant" as const), ttlMs: fc.integer({ min: 100, max: 10_000 }) }),
      fc.record({ _tag: fc.constant("LeaseKeepAlive" as const), id: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ _tag: fc.constant("LeaseRevoke" as const), id: fc.integer({ min: 1, max: 5 }) }),
      fc.record({
        _tag: fc.constant("LeaseExpire" as const),
        leases: fc.array(fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 2 })), { maxLength: 3 })
      }),
      fc.record(
        {
          _tag: fc.constant("Put" as const),
          key: fc.constantFrom("a", "b", "c"),
          value: fc.string({ maxLength: 3 }),
          lease: fc.integer({ min: 1, max: 5 })
        },
        { requiredKeys: ["_tag", "key", "value"] }
      ),
      fc.record({ _tag: fc.constant("Del" as const), key: fc.constantFrom("a", "b", "c") })
    )
    fc.assert(
      fc.property(fc.array(command, { maxLength: 30 }), fc.nat(30), (commands, cut) => {
        const whole = run(commands).state
        const first = run(commands.slice(0, cut)).state
        const resumed = run(commands.slice(cut), roundTrip(first)).state
        assert.deepStrictEqual(codecs.encodeState(resumed), codecs.encodeState(whole))
        const encode = Schema.encodeSync(Schema.toCodecJson(Kv.Snapshot))
        assert.deepStrictEqual(Kv.encodeSnapshot(whole), encode(whole))
        // every attached key exists and belongs to exactly the lease that lists it
        for (const lease of KvLease.all(whole.leases)) {
          for (const key of lease.keys.keys()) {
            assert.isTrue(whole.entries.has(key), `lease ${lease.id} holds absent key ${key}`)
            assert.strictEqual(whole.leases.owner.get(key), lease.id)
          }
        }
        for (const [key, id] of whole.leases.owner.entries()) {
          assert.isTrue(
            KvLease.get(whole.leases, id)?.keys.has(key) ?? false,
            `lease ${id} does not list its key ${key}`
          )
        }
      })
    )
  })

  it("a restore is refused by a store with leases", () => {
    const { results } = run([
      { _tag: "LeaseGrant", ttlMs: 1000 },
      { _tag: "Restore", id: "r", index: 0, entries: [["a", "1", 1]], done: { revision: 1 } }
    ])
    assert.deepInclude(results[1], { _tag: "Restored", ok: false })
  })

  it("lists leases a page at a time after a cursor; a full page fits the smallest message", () => {
    let many = Kv.initial
    for (let i = 0; i < KvLease.maxLeases; i++)
      many = Kv.apply(many, { _tag: "LeaseGrant", ttlMs: KvLease.maxTtlMs })[0]
    // the most keys a lease may hold on the first one, so its count is as long as it gets
    for (let k = 0; k < KvLease.maxKeysPerLease; k++)
      many = Kv.apply(many, { _tag: "Put", key: `k${k}`, value: "", lease: 1 })[0]
    const message = Limits.fromMessageBytes(Limits.minMaxMessageBytes)
    const seen: Array<number> = []
    let after: number | undefined
    for (let pages = 0; ; pages++) {
      assert.isBelow(pages, KvLease.maxLeases, "paging ends")
      const [same, r] = Kv.apply(many, { _tag: "LeaseList", ...(after === undefined ? {} : { after }) })
      assert.strictEqual(same, many)
      if (r._tag !== "LeasesListed") return assert.fail(JSON.stringify(r))
      assert.isAtMost(r.leases.length, KvLease.maxListLimit)
      assert.isAtMost(Limits.jsonBytes(codecs.encodeResult(r)), message.batchBytes, "a page fits one message")
      seen.push(...r.leases.map((l) => l.id))
      if (!r.more) break
      after = r.leases.at(-1)!.id
    }
    assert.deepStrictEqual(
      seen,
      Array.from({ length: KvLease.maxLeases }, (_, i) => i + 1),
      "every lease once, in id order"
    )
    // a smaller limit; a cursor past the last lease
    const [, small] = Kv.apply(many, { _tag: "LeaseList", limit: 2, after: 5 })
    assert.deepInclude(small, { more: true })
    assert.deepStrictEqual(small._tag === "LeasesListed" ? small.leases.map((l) => l.id) : [], [6, 7])
    assert.deepStrictEqual(Kv.apply(many, { _tag: "LeaseList", after: KvLease.maxLeases })[1], {
      _tag: "LeasesListed",
      leases: [],
      more: false
    })
    // an old log's LeaseList (no limit) still decodes; a limit out of bounds does not
    assert.isTrue(Result.isSuccess(codecs.decodeCommand({ _tag: "LeaseList" })))
    assert.isTrue(Result.isFailure(codecs.decodeCommand({ _tag: "LeaseList", limit: KvLease.maxListLimit + 1 })))
  })
})

/**
 * The product's replicated state machine: a key-value store for configuration and
 * coordination. Get, put, delete, compare-and-set on a version, and list by prefix.
 *
 * Versions: the store counts the writes it has applied (`revision`); every write
 * (a put, a successful compare-and-set, a delete of a present key) adds one, and the key
 * it wrote carries the new count as its `version`. So a version is the position of the
 * write that last changed the key among all writes, in log order: the same on every
 * replica, strictly increasing per key, and 0 never names a present key. (`apply` is
 * not told the slot a command was decided in, so the slot itself is not used.)
 * Compare-and-set with `version: 0` means "only if the key is absent".
 *
 * Transactions (`Txn`, etcd's shape): comparisons on any keys' values, versions or
 * existence, then the `success` operations if every comparison holds, else the `failure`
 * ones (puts, deletes, gets), all in one command, so no other command falls between them.
 * Each write of a transaction takes its own revision, as a lone write would: a
 * transaction's writes take consecutive revisions in the order of its operations, and a
 * version keeps meaning "the position of the write among all writes".
 *
 * Leases (`Lease.ts`): a put may name a lease, which attaches its key; when the lease ends
 * (revoked, or expired by a `LeaseExpire` the leader's keeper proposes) its keys are
 * deleted, each delete a write as any other. Grants and keep-alives take no revision.
 *
 * Reads (get, list) are commands too, and also the machine's read-only queries (`query`):
 * a replica serves them off the log, once a read index says it has applied every write
 * that completed before the read arrived (docs/protocol.md#reads); sent as commands they
 * go through the log like writes, at the cost of one slot each.
 *
 * The state is a persistent `SortedMap` (the values in a hash map with the older versions
 * kept as differences, the keys in a B+ tree: a page of a prefix found in O(log keys +
 * results)), so `apply` returns a new state without copying the old one.
 *
 * @since 0.1.0
 */
import { Limits, StateMachine } from "@synod/core"
import * as FastCodecs from "./FastCodecs.ts"
import * as History from "./History.ts"
import * as Lease from "./Lease.ts"
import { HashMap, Schema, SchemaTransformation } from "effect"
import { SortedMap } from "./SortedMap.ts"

/** Longest key, in UTF-16 code units. */
export const maxKeyLength = 1024
/** Longest value, in UTF-16 code units. */
export const maxValueLength = 64 * 1024
/** Most entries one `List` returns. */
export const maxListLimit = 1000
/**
 * Most bytes of keys and values (UTF-8) one `List` returns, beyond its first entry: an
 * answer must fit one message of the transport (NATS's `max_payload`, 1 MiB by default).
 */
export const maxListBytes = 256 * 1024

export const Key = Schema.String.check(
  Schema.isMinLength(1, { message: "a key must not be empty" }),
  Schema.isMaxLength(maxKeyLength, { message: `a key is at most ${maxKeyLength} characters` }),
  // a URL path segment cannot carry these: they would be resolved away
  Schema.makeFilter((key: string) => (key === "." || key === ".." ? 'a key cannot be "." or ".."' : true))
)
export const Value = Schema.String.check(
  Schema.isMaxLength(maxValueLength, { message: `a value is at most ${maxValueLength} characters` })
)
/** A key's version; 0 stands for "absent". */
export const Version = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0, { message: "a version is 0 or more" }))
export const Limit = Schema.Int.check(
  Schema.isBetween({ minimum: 1, maximum: maxListLimit }, { message: `a limit is between 1 and ${maxListLimit}` })
)

// ---------------------------------------------------------------------------------------
// commands and results (wire format: `_tag`s are frozen)

export const Get = Schema.TaggedStruct("Get", { key: Key })
/** With `lease`, the key is attached to that lease and deleted when it ends (`Lease.ts`). */
export const Put = Schema.TaggedStruct("Put", { key: Key, value: Value, lease: Schema.optionalKey(Lease.LeaseId) })
export const Del = Schema.TaggedStruct("Del", { key: Key })
/** Writes `value` only if the key's version is `version` (0: only if the key is absent). */
export const Cas = Schema.TaggedStruct("Cas", { key: Key, version: Version, value: Value })
/**
 * Up to `limit` entries whose key starts with `prefix`, in key order (UTF-16 code units),
 * and at most `maxListBytes` of them; with `after`, only keys after it (a cursor: the last
 * key of the previous page).
 */
export const List = Schema.TaggedStruct("List", {
  prefix: Schema.String,
  limit: Limit,
  after: Schema.optionalKey(Schema.String)
})

/** Most comparisons, and most operations per branch, in one transaction. */
export const maxTxnCompares = 64
export const maxTxnOps = 64

/** How a comparison relates the key's current value or version to the one given. */
export const CompareOp = Schema.Literals(["=", "!=", "<", ">"])
export type CompareOp = typeof CompareOp.Type

/**
 * One comparison of a transaction, told apart by the field it carries: `version` (0 is
 * "absent"), `value` (compared as strings; an absent key compares false, except with
 * `!=`), or `exists`. `op` defaults to `=`.
 */
export const Compare = Schema.Union([
  Schema.Struct({ key: Key, version: Version, op: Schema.optionalKey(CompareOp) }),
  Schema.Struct({ key: Key, value: Value, op: Schema.optionalKey(CompareOp) }),
  Schema.Struct({ key: Key, exists: Schema.Boolean })
]).annotate({
  // refused by every member, the union would name only the last one's complaint ("exists: Missing key")
  message:
    "a comparison is {key, version: an integer >= 0, op?}, {key, value: a string, op?} or {key, exists: a boolean}, with op one of = != < >"
})
export type Compare = typeof Compare.Type

/** One operation of a transaction's branch. */
export const TxnOp = Schema.Union([
  Schema.Struct({ op: Schema.Literal("get"), key: Key }),
  Schema.Struct({ op: Schema.Literal("put"), key: Key, value: Value, lease: Schema.optionalKey(Lease.LeaseId) }),
  Schema.Struct({ op: Schema.Literal("del"), key: Key })
])
export type TxnOp = typeof TxnOp.Type

const ops = (branch: string) =>
  Schema.Array(TxnOp).check(
    Schema.isMaxLength(maxTxnOps, { message: `a transaction has at most ${maxTxnOps} ${branch} operations` })
  )

/**
 * If every comparison holds, the `success` operations, else the `failure` ones, in order
 * (each sees the ones before it), in one command. A transaction as a whole fits one
 * message of the transport (a larger one is refused before it is sent).
 */
export const Txn = Schema.TaggedStruct("Txn", {
  compare: Schema.Array(Compare).check(
    Schema.isMaxLength(maxTxnCompares, {
      message: `a transaction has at most ${maxTxnCompares} comparisons`
    })
  ),
  success: ops("success"),
  failure: ops("failure")
})
export type Txn = typeof Txn.Type

/** Most entries in one chunk of a restore (the chunk must also fit one message). */
export const maxRestoreEntries = 10_000

/**
 * The highest revision a restore may set: 2^50, leaving the store room for about 8 × 10^15
 * writes before a version would pass `Number.MAX_SAFE_INTEGER` (a restore at 2^53 − 2
 * took one write, then every answer failed to encode and the store took no more).
 */
export const maxRestoreRevision = 2 ** 50

/**
 * One chunk of a restore, which seeds a new store with a backup (`apps/cluster`'s
 * `synod snapshot restore`). Chunks are staged out of sight, in order from index 0; the
 * one with `done` makes them the store at once, at `done.revision`, with an empty history
 * (watches start after it). Only a new store takes one: a store that has had any write,
 * before or during the restore, refuses it and drops what was staged. A chunk with index
 * 0 starts over (a restore that was cut off is simply run again).
 */
export const Restore = Schema.TaggedStruct("Restore", {
  /** Names this restore: chunks of another one do not mix with it. */
  id: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64)),
  index: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  entries: Schema.Array(Schema.Tuple([Key, Value, Version])).check(
    Schema.isMaxLength(maxRestoreEntries, { message: `a restore chunk has at most ${maxRestoreEntries} entries` })
  ),
  done: Schema.optionalKey(Schema.Struct({ revision: Version }))
})
export type Restore = typeof Restore.Type

export const Command = Schema.Union([
  Get,
  Put,
  Del,
  Cas,
  List,
  Txn,
  Restore,
  Lease.LeaseGrant,
  Lease.LeaseKeepAlive,
  Lease.LeaseRevoke,
  Lease.LeaseExpire,
  Lease.LeaseList
])
export type Command = typeof Command.Type

export const Entry = Schema.Struct({ key: Schema.String, value: Schema.String, version: Version })
export type Entry = typeof Entry.Type

/** A `Get`'s answer: `value: null` and `version: 0` when the key is absent. */
export const GetResult = Schema.TaggedStruct("Value", { value: Schema.NullOr(Schema.String), version: Version })
/** A `Put`'s answer: the key's new version. */
export const PutResult = Schema.TaggedStruct("Written", { version: Version })
export const DelResult = Schema.TaggedStruct("Deleted", { existed: Schema.Boolean })
/**
 * A `Cas`'s answer. `ok`: the write happened and `version` is the new one. Otherwise
 * nothing changed, and `version`/`value` are the key's current ones (0/null: absent).
 */
export const CasResult = Schema.TaggedStruct("Swapped", {
  ok: Schema.Boolean,
  version: Version,
  value: Schema.NullOr(Schema.String)
})
/** A `List`'s answer; `more`: entries beyond `limit` or `maxListBytes` were left out (ask again `after` the last key). */
export const ListResult = Schema.TaggedStruct("Listed", {
  entries: Schema.Array(Entry),
  more: Schema.Boolean,
  /** The store's revision when the list was taken. */
  revision: Version
})

/** What one operation of a transaction did: as `Get`, `Put` and `Del` answer. */
export const TxnOpResult = Schema.Union([
  Schema.Struct({
    op: Schema.Literal("get"),
    key: Schema.String,
    value: Schema.NullOr(Schema.String),
    version: Version
  }),
  Schema.Struct({ op: Schema.Literal("put"), key: Schema.String, version: Version }),
  Schema.Struct({ op: Schema.Literal("del"), key: Schema.String, existed: Schema.Boolean })
])
export type TxnOpResult = typeof TxnOpResult.Type

/**
 * A `Txn`'s answer: whether every comparison held (`succeeded`: the `success` branch ran,
 * else the `failure` one), each operation's result in order, and the store's revision
 * after it.
 */
export const TxnResult = Schema.TaggedStruct("Transacted", {
  succeeded: Schema.Boolean,
  results: Schema.Array(TxnOpResult),
  revision: Version
})
export type TxnResult = typeof TxnResult.Type

/**
 * A `Restore` chunk's answer: `ok` and how many entries are staged (after the last chunk:
 * the store's key count, and `revision` its revision); or not, with `reason`, and nothing
 * staged.
 */
export const RestoreResult = Schema.TaggedStruct("Restored", {
  ok: Schema.Boolean,
  staged: Schema.Int,
  revision: Version,
  reason: Schema.optionalKey(Schema.String)
})
export type RestoreResult = typeof RestoreResult.Type

export const Result = Schema.Union([
  GetResult,
  PutResult,
  DelResult,
  CasResult,
  ListResult,
  TxnResult,
  RestoreResult,
  ...Lease.results
])
export type Result = typeof Result.Type

// ---------------------------------------------------------------------------------------
// state

interface Stored {
  readonly value: string
  readonly version: number
}

/** A restore under way: the chunks received so far, not yet visible (see `Restore`). */
export interface Restoring {
  readonly id: string
  /** The index of the chunk expected next. */
  readonly next: number
  readonly entries: SortedMap<Stored>
  /** `entryBytes` of `entries`. */
  readonly bytes: number
}

export class State {
  /** Writes applied so far; the version the next write gets is `revision + 1`. */
  readonly revision: number
  readonly entries: SortedMap<Stored>
  /**
   * `entryBytes` of `entries`, kept as they change: about their size in a snapshot, known
   * without walking them (`size`).
   */
  readonly bytes: number
  /** The recent writes, for watches; part of the snapshot. */
  readonly history: History.History
  /** How much history this store keeps: the machine's, the same on every replica. */
  readonly retention: History.Retention
  readonly restoring: Restoring | undefined
  /** The leases alive and the keys attached to them (`Lease.ts`). */
  readonly leases: Lease.Leases
  constructor(
    revision: number,
    entries: SortedMap<Stored>,
    bytes: number,
    history: History.History,
    retention: History.Retention,
    restoring?: Restoring,
    leases: Lease.Leases = Lease.none
  ) {
    this.revision = revision
    this.entries = entries
    this.bytes = bytes
    this.history = history
    this.retention = retention
    this.restoring = restoring
    this.leases = leases
  }
}

/** An empty store keeping `retention` of history. */
export const empty = (retention: History.Retention = History.defaultRetention): State =>
  new State(0, SortedMap.empty(), 0, History.History.empty(0), retention)

export const initial: State = empty()

const StoredEntry = Schema.Tuple([Schema.String, Schema.String, Version])

/**
 * The snapshot: the revision, every entry as `[key, value, version]` in key order, the
 * history as `[revision, key, value | null]` events with the revision below which it was
 * compacted, and a restore under way. Snapshots written before the history existed
 * decode with an empty one, compacted at their revision.
 */
const Encoded = Schema.Struct({
  revision: Version,
  entries: Schema.Array(StoredEntry),
  history: Schema.optionalKey(
    Schema.Struct({
      compacted: Version,
      events: Schema.Array(Schema.Tuple([Version, Schema.String, Schema.NullOr(Schema.String)]))
    })
  ),
  restoring: Schema.optionalKey(
    Schema.Struct({ id: Schema.String, next: Schema.Int, entries: Schema.Array(StoredEntry) })
  ),
  /** Present once a lease was ever granted. */
  leases: Schema.optionalKey(Lease.Snapshot)
})

/**
 * What an entry counts towards `State.bytes`: its key and value, and about what its
 * `[key, value, version]` tuple adds around them in a snapshot.
 */
const entryBytes = (key: string, value: string): number => key.length + value.length + 16

/** `entries` with `key` set to `stored`, and their `entryBytes` total `bytes` updated. */
const insert = (
  entries: SortedMap<Stored>,
  bytes: number,
  key: string,
  stored: Stored
): readonly [SortedMap<Stored>, number] => {
  const [next, old] = entries.swap(key, stored)
  const before = old === undefined ? 0 : entryBytes(key, old.value)
  return [next, bytes - before + entryBytes(key, stored.value)]
}

/**
 * The entries of a snapshot, and their `entryBytes` total: the tree built in one go (a
 * persistent insert per entry copied a path of nodes each time), then measured.
 */
const entriesOf = (
  tuples: ReadonlyArray<readonly [string, string, number]>
): { readonly entries: SortedMap<Stored>; readonly bytes: number } => {
  const entries = SortedMap.from(tuples.map(([key, value, version]) => [key, { value, version }] as const))
  let bytes = 0
  let increasing = true
  for (let i = 0; i < tuples.length; i++) {
    const [key, value] = tuples[i]!
    if (i > 0 && !(tuples[i - 1]![0] < key)) increasing = false
    bytes += entryBytes(key, value)
  }
  if (increasing) return { entries, bytes }
  // a key listed twice counts once, as its last value: from the map (snapshots list their
  // keys in order, once each, so this walk of the tree is for damaged or hand-made ones)
  bytes = 0
  for (const [key, stored] of entries) bytes += entryBytes(key, stored.value)
  return { entries, bytes }
}

const isVersion = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0

/** Is `o` a plain object whose own keys are all among `keys`? */
const onlyKeys = (o: unknown, keys: ReadonlyArray<string>): o is Record<string, unknown> => {
  if (typeof o !== "object" || o === null || Array.isArray(o)) return false
  for (const key of Object.keys(o)) if (!keys.includes(key)) return false
  return true
}

/** A snapshot's history (`[revision, key, value | null]` events), or an empty one compacted at `revision` for a snapshot without. */
const historyOf = (
  history:
    | {
        readonly compacted: number
        readonly events: ReadonlyArray<readonly [number, string, string | null]>
      }
    | undefined,
  revision: number,
  retention: History.Retention
): History.History =>
  history === undefined
    ? History.History.empty(revision)
    : History.History.from(
        history.events.map(([revision, key, value]) => ({ revision, key, value })),
        history.compacted,
        retention
      )

/**
 * A snapshot decoded by hand (`StateMachine.fast.decodeSnapshot`), when it is a store with
 * no restore under way and no lease: what replicas copy and servers load. With the
 * schema's parser, decoding 100,000 entries took 82-100 ms, by hand 59-75 (the rest is
 * building the store), in one step of the replica that installs a copy. Anything else
 * (another field, a value of another type, a restore, leases) is left to the schema:
 * undefined.
 */
export const decodeSnapshotFast = (json: unknown, retention: History.Retention): State | undefined => {
  if (!onlyKeys(json, ["revision", "entries", "history"])) return undefined
  const { revision, entries, history } = json
  if (!isVersion(revision) || !Array.isArray(entries)) return undefined
  for (const e of entries) {
    if (!Array.isArray(e) || e.length !== 3 || typeof e[0] !== "string" || typeof e[1] !== "string" || !isVersion(e[2]))
      return undefined
  }
  if ("history" in json) {
    if (!onlyKeys(history, ["compacted", "events"])) return undefined
    if (!isVersion(history.compacted) || !Array.isArray(history.events)) return undefined
    for (const e of history.events) {
      if (
        !Array.isArray(e) ||
        e.length !== 3 ||
        !isVersion(e[0]) ||
        typeof e[1] !== "string" ||
        (e[2] !== null && typeof e[2] !== "string")
      )
        return undefined
    }
  }
  const { entries: map, bytes } = entriesOf(entries as ReadonlyArray<readonly [string, string, number]>)
  return new State(
    revision,
    map,
    bytes,
    historyOf(history as Parameters<typeof historyOf>[0], revision, retention),
    retention,
    undefined,
    Lease.none
  )
}

/** The snapshot schema of a store keeping `retention` of history. */
export const snapshotSchema = (retention: History.Retention) =>
  Encoded.pipe(
    Schema.decodeTo(
      Schema.declare((u): u is State => u instanceof State, { title: "Kv.State" }),
      SchemaTransformation.transform({
        decode: (s) => {
          const { entries, bytes } = entriesOf(s.entries)
          return new State(
            s.revision,
            entries,
            bytes,
            historyOf(s.history, s.revision, retention),
            retention,
            s.restoring === undefined
              ? undefined
              : { id: s.restoring.id, next: s.restoring.next, ...entriesOf(s.restoring.entries) },
            s.leases === undefined ? Lease.none : Lease.decode(s.leases)
          )
        },
        encode: (state) => encodeSnapshot(state)
      })
    )
  )

export const Snapshot = snapshotSchema(History.defaultRetention)

// ---------------------------------------------------------------------------------------
// apply

const utf8Bytes = Limits.utf8Bytes

/** Writes `key`, attached to `lease` (which `Lease.refuseAttach` allowed), or to none. */
const write = (state: State, key: string, value: string, lease?: number): readonly [State, number] => {
  const version = state.revision + 1
  const [entries, bytes] = insert(state.entries, state.bytes, key, { value, version })
  return [
    new State(
      version,
      entries,
      bytes,
      state.history.append({ revision: version, key, value }, state.retention),
      state.retention,
      state.restoring,
      lease === undefined ? Lease.detach(state.leases, key) : Lease.attach(state.leases, key, lease)
    ),
    version
  ]
}

const remove = (state: State, key: string): State => {
  const revision = state.revision + 1
  const old = state.entries.get(key)
  return new State(
    revision,
    state.entries.remove(key),
    old === undefined ? state.bytes : state.bytes - entryBytes(key, old.value),
    state.history.append({ revision, key, value: null }, state.retention),
    state.retention,
    state.restoring,
    Lease.detach(state.leases, key)
  )
}

const withLeases = (state: State, leases: Lease.Leases): State =>
  new State(state.revision, state.entries, state.bytes, state.history, state.retention, state.restoring, leases)

/** Lease `id` ended: its keys deleted (a write each, in key order), then the lease. */
const endLease = (state: State, id: number): readonly [State, number] => {
  const lease = Lease.get(state.leases, id)
  if (lease === undefined) return [state, 0]
  let next = state
  let deleted = 0
  for (const key of lease.keys.keys()) {
    if (next.entries.has(key)) {
      next = remove(next, key)
      deleted++
    }
  }
  return [withLeases(next, Lease.drop(next.leases, id)), deleted]
}

const applyLease = (state: State, command: Lease.Command): readonly [State, Result] => {
  switch (command._tag) {
    case "LeaseGrant": {
      const granted = Lease.grant(state.leases, command.ttlMs)
      if ("_tag" in granted) return [state, granted]
      const [leases, lease] = granted
      return [withLeases(state, leases), { _tag: "LeaseGranted", id: lease.id, ttlMs: lease.ttlMs }]
    }
    case "LeaseKeepAlive": {
      const kept = Lease.keepAlive(state.leases, command.id)
      if ("_tag" in kept) return [state, kept]
      const [leases, lease] = kept
      return [
        withLeases(state, leases),
        { _tag: "LeaseKept", id: lease.id, ttlMs: lease.ttlMs, renewals: lease.renewals }
      ]
    }
    case "LeaseRevoke": {
      if (Lease.get(state.leases, command.id) === undefined) return [state, Lease.notFound(command.id)]
      const [next, deleted] = endLease(state, command.id)
      return [next, { _tag: "LeaseRevoked", id: command.id, deleted, revision: next.revision }]
    }
    case "LeaseExpire": {
      let next = state
      const expired: Array<number> = []
      for (const [id, renewals] of command.leases) {
        // kept alive since the keeper looked (or gone already): not this expiry's to end
        if (Lease.get(next.leases, id)?.renewals !== renewals) continue
        next = endLease(next, id)[0]
        expired.push(id)
      }
      return [next, { _tag: "LeaseExpired", expired, revision: next.revision }]
    }
    case "LeaseList": {
      const limit = command.limit ?? Lease.maxListLimit
      const after = command.after ?? 0
      const page = Lease.all(state.leases).filter((l) => l.id > after)
      return [
        state,
        {
          _tag: "LeasesListed",
          leases: page.slice(0, limit).map((l) => ({ id: l.id, ttlMs: l.ttlMs, keys: l.keys.size })),
          more: page.length > limit
        }
      ]
    }
  }
}

/** Pure and deterministic: every replica applies the same commands in the same order. */
export const apply = (state: State, command: Command): readonly [State, Result] => {
  switch (command._tag) {
    case "Get": {
      const found = state.entries.get(command.key)
      return [state, { _tag: "Value", value: found?.value ?? null, version: found?.version ?? 0 }]
    }
    case "Put": {
      if (command.lease !== undefined) {
        const refused = Lease.refuseAttach(state.leases, command.key, command.lease)
        if (refused !== undefined) return [state, refused]
      }
      const [next, version] = write(state, command.key, command.value, command.lease)
      return [next, { _tag: "Written", version }]
    }
    case "Del": {
      if (!state.entries.has(command.key)) return [state, { _tag: "Deleted", existed: false }]
      return [remove(state, command.key), { _tag: "Deleted", existed: true }]
    }
    case "Cas": {
      const found = state.entries.get(command.key)
      const current = found?.version ?? 0
      if (current !== command.version) {
        return [state, { _tag: "Swapped", ok: false, version: current, value: found?.value ?? null }]
      }
      const [next, version] = write(state, command.key, command.value)
      return [next, { _tag: "Swapped", ok: true, version, value: command.value }]
    }
    case "Txn":
      return txn(state, command)
    case "Restore":
      return restore(state, command)
    case "LeaseGrant":
    case "LeaseKeepAlive":
    case "LeaseRevoke":
    case "LeaseExpire":
    case "LeaseList":
      return applyLease(state, command)
    case "List": {
      const entries: Array<Entry> = []
      let more = false
      let bytes = 0
      for (const [key, e] of state.entries.entriesWithPrefix(command.prefix, command.after)) {
        const size = utf8Bytes(key) + utf8Bytes(e.value)
        if (entries.length === command.limit || (entries.length > 0 && bytes + size > maxListBytes)) {
          more = true
          break
        }
        bytes += size
        entries.push({ key, value: e.value, version: e.version })
      }
      return [state, { _tag: "Listed", entries, more, revision: state.revision }]
    }
  }
}

/** The read-only commands (`Get`, `List`) answered from `state` as `apply` would; `undefined` for the others. */
export const query = (state: State, command: Command): Result | undefined =>
  command._tag === "Get" || command._tag === "List" ? apply(state, command)[1] : undefined

/** Does the comparison hold on the store as it is? */
export const holds = (state: State, c: Compare): boolean => {
  const found = state.entries.get(c.key)
  if ("exists" in c) return (found !== undefined) === c.exists
  const op = c.op ?? "="
  if ("version" in c) return relate(found?.version ?? 0, op, c.version)
  // an absent key has no value: only "not equal" holds
  return found === undefined ? op === "!=" : relate(found.value, op, c.value)
}

const relate = <A extends number | string>(actual: A, op: CompareOp, expected: A): boolean => {
  switch (op) {
    case "=":
      return actual === expected
    case "!=":
      return actual !== expected
    case "<":
      return actual < expected
    case ">":
      return actual > expected
  }
}

const txn = (state: State, command: Txn): readonly [State, Result] => {
  const succeeded = command.compare.every((c) => holds(state, c))
  const branch = succeeded ? command.success : command.failure
  // a put naming a lease it cannot join refuses the whole transaction, before any write
  let leases = state.leases
  for (const op of branch) {
    if (op.op !== "put" || op.lease === undefined) continue
    const refused = Lease.refuseAttach(leases, op.key, op.lease)
    if (refused !== undefined) return [state, refused]
    leases = Lease.attach(leases, op.key, op.lease)
  }
  const results: Array<TxnOpResult> = []
  let next = state
  for (const op of branch) {
    switch (op.op) {
      case "get": {
        const [, r] = apply(next, { _tag: "Get", key: op.key })
        if (r._tag === "Value") results.push({ op: "get", key: op.key, value: r.value, version: r.version })
        break
      }
      case "put": {
        const [after, version] = write(next, op.key, op.value, op.lease)
        next = after
        results.push({ op: "put", key: op.key, version })
        break
      }
      case "del": {
        const [after, r] = apply(next, { _tag: "Del", key: op.key })
        next = after
        if (r._tag === "Deleted") results.push({ op: "del", key: op.key, existed: r.existed })
        break
      }
    }
  }
  return [next, { _tag: "Transacted", succeeded, results, revision: next.revision }]
}

type StoredTuple = [string, string, number]

const tuples = (entries: SortedMap<Stored>): Array<StoredTuple> =>
  Array.from(entries.entries(), ([key, e]): StoredTuple => [key, e.value, e.version])

const restore = (state: State, command: Restore): readonly [State, Result] => {
  const refuse = (reason: string): readonly [State, Result] => [
    new State(state.revision, state.entries, state.bytes, state.history, state.retention, undefined, state.leases),
    { _tag: "Restored", ok: false, staged: 0, revision: state.revision, reason }
  ]
  if (state.revision !== 0 || state.entries.size > 0 || HashMap.size(state.leases.byId) > 0) {
    return refuse(
      `restore seeds a new cluster, and this one is not new: it is at revision ${state.revision} with ${state.entries.size} keys and ${HashMap.size(state.leases.byId)} leases`
    )
  }
  const staging = command.index === 0 ? undefined : state.restoring
  if (command.index > 0 && (staging === undefined || staging.id !== command.id)) {
    return refuse(
      `restore ${command.id}: chunk ${command.index} arrived, but ${staging === undefined ? "no restore is under way" : `restore ${staging.id} is`} (start again from chunk 0)`
    )
  }
  if (staging !== undefined && staging.next !== command.index) {
    return refuse(
      `restore ${command.id}: expected chunk ${staging.next}, got ${command.index} (start again from chunk 0)`
    )
  }
  let entries = staging?.entries ?? SortedMap.empty<Stored>()
  let bytes = staging?.bytes ?? 0
  for (const [key, value, version] of command.entries)
    [entries, bytes] = insert(entries, bytes, key, { value, version })
  const staged = entries.size
  // a backup lists each key once: a key again would silently replace the first
  if (staged !== (staging?.entries.size ?? 0) + command.entries.length) {
    return refuse(`restore ${command.id}: chunk ${command.index} lists a key that was listed before`)
  }
  if (command.done === undefined) {
    return [
      new State(
        state.revision,
        state.entries,
        state.bytes,
        state.history,
        state.retention,
        { id: command.id, next: command.index + 1, entries, bytes },
        state.leases
      ),
      { _tag: "Restored", ok: true, staged, revision: state.revision }
    ]
  }
  const revision = command.done.revision
  if (revision > maxRestoreRevision) {
    return refuse(
      `restore ${command.id}: revision ${revision} is above ${maxRestoreRevision}, the most a restore may set`
    )
  }
  // each write has its own version: two keys with one are not a backup of any store
  const versions = new Set<number>()
  for (const [key, e] of entries.entries()) {
    if (e.version < 1 || e.version > revision) {
      return refuse(
        `restore ${command.id}: key ${JSON.stringify(key)} has version ${e.version}, outside 1..${revision} (the backup's revision)`
      )
    }
    if (versions.has(e.version)) {
      return refuse(`restore ${command.id}: key ${JSON.stringify(key)} has version ${e.version}, as another key has`)
    }
    versions.add(e.version)
  }
  return [
    new State(revision, entries, bytes, History.History.empty(revision), state.retention, undefined, state.leases),
    { _tag: "Restored", ok: true, staged, revision }
  ]
}

/** `Snapshot`'s encoding, built directly: about twice as fast for a large store (a test holds them equal). */
export const encodeSnapshot = (
  state: State
): {
  revision: number
  entries: Array<StoredTuple>
  history: { compacted: number; events: Array<[number, string, string | null]> }
  restoring?: { id: string; next: number; entries: Array<StoredTuple> }
  leases?: Lease.Encoded
} => ({
  revision: state.revision,
  entries: tuples(state.entries),
  history: {
    compacted: state.history.compacted,
    events: state.history.events().map((e): [number, string, string | null] => [e.revision, e.key, e.value])
  },
  ...(state.restoring === undefined
    ? {}
    : { restoring: { id: state.restoring.id, next: state.restoring.next, entries: tuples(state.restoring.entries) } }),
  ...(state.leases.last === 0 ? {} : { leases: Lease.encode(state.leases) })
})

/**
 * `encodeSnapshot` in slices of `slice` entries: replicas encode snapshots a slice per
 * turn. The history and a restore under way are bounded, so they are encoded in one go.
 */
export function* encodeSnapshotGradually(
  state: State,
  slice = 4096
): Generator<void, ReturnType<typeof encodeSnapshot>, void> {
  const entries: Array<StoredTuple> = []
  for (const [key, e] of state.entries.entries()) {
    entries.push([key, e.value, e.version])
    if (entries.length % slice === 0) yield
  }
  const rest = encodeSnapshot(
    new State(state.revision, SortedMap.empty(), 0, state.history, state.retention, state.restoring, state.leases)
  )
  return { ...rest, entries }
}

/**
 * The store as a draft for a batch of commands (`StateMachine.edit`): its entries change
 * in place, so a batch copies each node of the tree it writes once, not a path per write.
 * The history appends in place already, and leases are few.
 */
export const edit = {
  begin: (state: State): State => withEntries(state, state.entries.edit()),
  end: (state: State): State => withEntries(state, state.entries.freeze())
}

const withEntries = (state: State, entries: SortedMap<Stored>): State =>
  entries === state.entries
    ? state
    : new State(state.revision, entries, state.bytes, state.history, state.retention, state.restoring, state.leases)

/**
 * About how many bytes the store's snapshot takes, in constant time: its entries' keys and
 * values (`State.bytes`), a restore's staged ones, and the history's events (`StateMachine.size`).
 */
export const size = (state: State): number => state.bytes + (state.restoring?.bytes ?? 0) + state.history.bytes

/** How many keys the store holds and its revision, without walking it. */
export const summary = (
  state: State
): {
  readonly keys: number
  readonly revision: number
  /** A restore under way: its id, the keys staged and their bytes (out of sight until its last chunk). */
  readonly restoring?: { readonly id: string; readonly keys: number; readonly bytes: number }
} => ({
  keys: state.entries.size,
  revision: state.revision,
  ...(state.restoring === undefined
    ? {}
    : { restoring: { id: state.restoring.id, keys: state.restoring.entries.size, bytes: state.restoring.bytes } })
})

export interface Options {
  /** How much history of writes the store keeps for watches (default `History.defaultRetention`). */
  readonly retention?: Partial<History.Retention>
}

/**
 * The key-value machine keeping `options.retention` of history. Every replica of a
 * cluster must run the same one: the retention decides what the state holds.
 */
export const make = (options: Options = {}): StateMachine.StateMachine<State, Command, Result> => {
  const retention = { ...History.defaultRetention, ...options.retention }
  if (!(retention.revisions >= 1 && retention.bytes >= 1)) {
    throw new RangeError(`history retention must keep at least 1 revision and 1 byte: ${JSON.stringify(retention)}`)
  }
  return StateMachine.make<State, Command, Result>({
    name: "synod-cluster-kv",
    command: Command,
    result: Result,
    snapshot: snapshotSchema(retention),
    initial: empty(retention),
    apply,
    query,
    encodeSnapshot,
    encodeSnapshotGradually: (state) => encodeSnapshotGradually(state),
    size,
    edit,
    fast: { ...FastCodecs, decodeSnapshot: (json) => decodeSnapshotFast(json, retention) }
  })
}

export const machine = make()

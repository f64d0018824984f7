/**
 * Leases: a time-to-live that a client keeps alive, and keys attached to it that are
 * deleted when it ends (revoked by its holder, or expired). The building block of
 * ephemeral keys, locks and elections (`apps/cluster`'s `Lock.ts`).
 *
 * Time never enters the state machine: a lease records its TTL and how many times it was
 * kept alive (`renewals`), nothing else. It expires only through a `LeaseExpire` command
 * in the log, which the *lease keeper* next to the active leader proposes from its own
 * monotonic clock (`LeaseKeeper.ts`); the command names each lease with the `renewals`
 * the keeper saw, and a lease kept alive since (its keep-alive decided before the expiry)
 * is left alone. So every replica applies the same expiries at the same point of the log,
 * and an expiry always reflects a keeper that waited a whole TTL after it learnt of the
 * lease's last keep-alive.
 *
 * Lease ids come from a counter in the state (1, 2, 3, ...): the same on every replica,
 * never reused (the counter is in the snapshot).
 *
 * This module holds the commands' schemas and the leases' part of the state; `Kv.apply`
 * applies the commands (their key deletions are writes of the store).
 *
 * @since 0.3.0
 */
import { HashMap, Option, Schema } from "effect"
import { SortedMap } from "./SortedMap.ts"

/** The shortest TTL: shorter than a leader change, a lease could not outlive one. */
export const minTtlMs = 100
/** The longest TTL: a day. */
export const maxTtlMs = 24 * 60 * 60 * 1000
/** Most leases alive at once. */
export const maxLeases = 10_000
/** Most keys attached to one lease. */
export const maxKeysPerLease = 1_000
/** Most leases one `LeaseExpire` names. */
export const maxExpiries = 100
/**
 * Most leases one `LeaseList` answers (and its default). A lease is at most 53 bytes of
 * JSON (`{"id":9007199254740991,"ttlMs":86400000,"keys":1000},`), so a page of 100 is
 * under 5.5 KB: it fits a message of the smallest transport limit a cluster may have
 * (`Limits.minMaxMessageBytes`, 8 KiB), and so the simulator's 16 KiB.
 */
export const maxListLimit = 100

export const LeaseId = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1, { message: "a lease id is 1 or more" }))
export const TtlMs = Schema.Int.check(
  Schema.isBetween(
    { minimum: minTtlMs, maximum: maxTtlMs },
    { message: `a lease TTL is between ${minTtlMs} ms and ${maxTtlMs} ms (a day)` }
  )
)
const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

// ---------------------------------------------------------------------------------------
// commands and results (wire format: `_tag`s are frozen)

/** A new lease of `ttlMs`; its id is the next of the store's counter. */
export const LeaseGrant = Schema.TaggedStruct("LeaseGrant", { ttlMs: TtlMs })
/** Keeps a lease alive: the keeper counts its TTL again from when it learns of this. */
export const LeaseKeepAlive = Schema.TaggedStruct("LeaseKeepAlive", { id: LeaseId })
/** Ends a lease now and deletes its keys. */
export const LeaseRevoke = Schema.TaggedStruct("LeaseRevoke", { id: LeaseId })
/**
 * The keeper's expiries: each lease `[id, renewals]` ends (its keys deleted) only if it
 * still has that many renewals; one kept alive since is left alone.
 */
export const LeaseExpire = Schema.TaggedStruct("LeaseExpire", {
  leases: Schema.Array(Schema.Tuple([LeaseId, Count])).check(
    Schema.isMaxLength(maxExpiries, { message: `an expiry names at most ${maxExpiries} leases` })
  )
})
export const ListLimit = Schema.Int.check(
  Schema.isBetween({ minimum: 1, maximum: maxListLimit }, { message: `a limit is between 1 and ${maxListLimit}` })
)
/**
 * The leases alive, in id order: at most `limit` of them (default and most `maxListLimit`),
 * with `after` only those of a higher id (a cursor: the last id of the previous page).
 */
export const LeaseList = Schema.TaggedStruct("LeaseList", {
  limit: Schema.optionalKey(ListLimit),
  after: Schema.optionalKey(Count)
})

export type LeaseGrant = typeof LeaseGrant.Type
export type LeaseKeepAlive = typeof LeaseKeepAlive.Type
export type LeaseRevoke = typeof LeaseRevoke.Type
export type LeaseExpire = typeof LeaseExpire.Type
export type LeaseList = typeof LeaseList.Type
export type Command = LeaseGrant | LeaseKeepAlive | LeaseRevoke | LeaseExpire | LeaseList

export const LeaseGranted = Schema.TaggedStruct("LeaseGranted", { id: LeaseId, ttlMs: TtlMs })
export const LeaseKept = Schema.TaggedStruct("LeaseKept", { id: LeaseId, ttlMs: TtlMs, renewals: Count })
/** A lease revoked: how many keys went with it, and the store's revision after. */
export const LeaseRevoked = Schema.TaggedStruct("LeaseRevoked", { id: LeaseId, deleted: Count, revision: Count })
/** The leases of a `LeaseExpire` that ended (the others were kept alive since, or gone). */
export const LeaseExpired = Schema.TaggedStruct("LeaseExpired", { expired: Schema.Array(LeaseId), revision: Count })
export const LeaseInfo = Schema.Struct({ id: LeaseId, ttlMs: TtlMs, keys: Count })
export type LeaseInfo = typeof LeaseInfo.Type
/** A `LeaseList`'s answer; `more`: leases beyond the page were left out (absent in older answers: none). */
export const LeasesListed = Schema.TaggedStruct("LeasesListed", {
  leases: Schema.Array(LeaseInfo),
  more: Schema.optionalKey(Schema.Boolean)
})
/**
 * A lease command (or a put naming a lease) refused; nothing changed. `notFound`: the
 * lease does not exist (never granted, or ended); else `reason` says which bound it hit.
 */
export const LeaseRefused = Schema.TaggedStruct("LeaseRefused", {
  id: Count,
  notFound: Schema.Boolean,
  reason: Schema.String
})
export type LeaseRefused = typeof LeaseRefused.Type

export const results = [LeaseGranted, LeaseKept, LeaseRevoked, LeaseExpired, LeasesListed, LeaseRefused] as const
export type Result =
  | typeof LeaseGranted.Type
  | typeof LeaseKept.Type
  | typeof LeaseRevoked.Type
  | typeof LeaseExpired.Type
  | typeof LeasesListed.Type
  | LeaseRefused

export const notFound = (id: number): LeaseRefused => ({
  _tag: "LeaseRefused",
  id,
  notFound: true,
  reason: `lease ${id} not found (never granted, expired or revoked)`
})

// ---------------------------------------------------------------------------------------
// state

export interface Lease {
  readonly id: number
  readonly ttlMs: number
  /** Keep-alives applied so far: the keeper restarts the lease's deadline when it changes. */
  readonly renewals: number
  /** The keys attached to it. */
  readonly keys: SortedMap<true>
}

/** The leases of a store: persistent, like the rest of its state. */
export class Leases {
  /** The last id given (ids are never reused). */
  readonly last: number
  readonly byId: HashMap.HashMap<number, Lease>
  /** Which lease each attached key belongs to. */
  readonly owner: SortedMap<number>
  constructor(last: number, byId: HashMap.HashMap<number, Lease>, owner: SortedMap<number>) {
    this.last = last
    this.byId = byId
    this.owner = owner
  }
}

export const none: Leases = new Leases(0, HashMap.empty(), SortedMap.empty())

export const get = (leases: Leases, id: number): Lease | undefined =>
  Option.getOrUndefined(HashMap.get(leases.byId, id))

/** The leases alive, in id order. */
export const all = (leases: Leases): Array<Lease> => Array.from(HashMap.values(leases.byId)).sort((a, b) => a.id - b.id)

export const grant = (leases: Leases, ttlMs: number): readonly [Leases, Lease] | LeaseRefused => {
  if (HashMap.size(leases.byId) >= maxLeases) {
    return {
      _tag: "LeaseRefused",
      id: 0,
      notFound: false,
      reason: `too many leases: at most ${maxLeases} are alive at once (revoke some)`
    }
  }
  const lease: Lease = { id: leases.last + 1, ttlMs, renewals: 0, keys: SortedMap.empty() }
  return [new Leases(lease.id, HashMap.set(leases.byId, lease.id, lease), leases.owner), lease]
}

export const keepAlive = (leases: Leases, id: number): readonly [Leases, Lease] | LeaseRefused => {
  const lease = get(leases, id)
  if (lease === undefined) return notFound(id)
  const kept = { ...lease, renewals: lease.renewals + 1 }
  return [new Leases(leases.last, HashMap.set(leases.byId, id, kept), leases.owner), kept]
}

/** Why `key` cannot be attached to lease `id`, if it cannot. */
export const refuseAttach = (leases: Leases, key: string, id: number): LeaseRefused | undefined => {
  const lease = get(leases, id)
  if (lease === undefined) return notFound(id)
  if (lease.keys.size >= maxKeysPerLease && !lease.keys.has(key)) {
    return {
      _tag: "LeaseRefused",
      id,
      notFound: false,
      reason: `lease ${id} has ${maxKeysPerLease} keys already, the most a lease holds`
    }
  }
  return undefined
}

/** `key` no longer attached to any lease (it was deleted, or written without its lease). */
export const detach = (leases: Leases, key: string): Leases => {
  const id = leases.owner.get(key)
  if (id === undefined) return leases
  const lease = get(leases, id)
  const byId =
    lease === undefined ? leases.byId : HashMap.set(leases.byId, id, { ...lease, keys: lease.keys.remove(key) })
  return new Leases(leases.last, byId, leases.owner.remove(key))
}

/** `key` attached to lease `id` (which exists: see `refuseAttach`), and to no other. */
export const attach = (leases: Leases, key: string, id: number): Leases => {
  const current = leases.owner.get(key)
  if (current === id) return leases
  const detached = current === undefined ? leases : detach(leases, key)
  const lease = get(detached, id)
  if (lease === undefined) return detached
  return new Leases(
    detached.last,
    HashMap.set(detached.byId, id, { ...lease, keys: lease.keys.set(key, true) }),
    detached.owner.set(key, id)
  )
}

/** Lease `id` gone (its keys must be deleted by the caller, which detaches them). */
export const drop = (leases: Leases, id: number): Leases =>
  new Leases(leases.last, HashMap.remove(leases.byId, id), leases.owner)

// ---------------------------------------------------------------------------------------
// snapshot

/** `[id, ttlMs, renewals, keys]`, in id order (keys in key order). */
export type Encoded = { last: number; leases: Array<[number, number, number, Array<string>]> }

export const Snapshot = Schema.Struct({
  last: Count,
  leases: Schema.Array(Schema.Tuple([LeaseId, TtlMs, Count, Schema.Array(Schema.String)]))
})

export const encode = (leases: Leases): Encoded => ({
  last: leases.last,
  leases: all(leases).map((l): [number, number, number, Array<string>] => [
    l.id,
    l.ttlMs,
    l.renewals,
    Array.from(l.keys.keys())
  ])
})

export const decode = (encoded: typeof Snapshot.Type): Leases => {
  let byId = HashMap.empty<number, Lease>()
  const owner: Array<readonly [string, number]> = []
  for (const [id, ttlMs, renewals, keys] of encoded.leases) {
    byId = HashMap.set(byId, id, { id, ttlMs, renewals, keys: SortedMap.from(keys.map((k) => [k, true] as const)) })
    for (const k of keys) owner.push([k, id])
  }
  return new Leases(encoded.last, byId, SortedMap.from(owner))
}

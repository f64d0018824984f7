/**
 * A persistent map of string keys in key order: the store's entries and the leases' keys.
 *
 * Persistent: `set` and `remove` return a new map and never change a map already made, so
 * a replica can keep an older state (the last verified one, or one a snapshot is still
 * being encoded from) while it applies commands to a newer one. A *draft* (`edit`) is the
 * exception, for a batch of writes of which only the last map is kept: its `swap`, `set`
 * and `remove` change it in place and return it, and `freeze` ends the draft.
 *
 * Two parts, so that a write to a key already there, most writes, costs a few hash-map
 * operations and no walk down a tree:
 *
 * - **The values** of every version of one map's history live in one JavaScript `Map`, the
 *   newest version's (the *head*), and each other version holds how it differs from the
 *   next one towards the head: the old value of each key written after it (persistent
 *   arrays by rerooting, Baker; Conchon and Filliâtre). Reading a version walks to the
 *   head, and the first time it is read after the head moved on, its differences are
 *   merged into one, so it walks one step. Writing to a version that is not the head
 *   first makes it the head, by undoing the differences on the way into the `Map` and
 *   reversing them, when it is a few versions away (a branch given up); farther (another
 *   branch of the history moved on: three replicas in one process start from the same
 *   empty state), its entries are copied into a `Map` of their own.
 * - **The keys**, in order, in a B+ tree (`sorted-btree`) used through its copy-on-write
 *   operations, only written when a key comes or goes: an ordered page (a prefix, a
 *   snapshot) walks it and reads each value.
 *
 * (With the values in the B+ tree too, every write walked down it comparing about
 * log2(size) whole keys spread over the heap: at 100,000 keys, 16% of a follower's CPU
 * under the yardstick's 256 writers, and a quarter of a process's running the three
 * servers in memory. The tree itself had replaced effect's `Trie`, for memory.)
 *
 * Keys are ordered as `<` orders strings (by UTF-16 code units), as the `Trie` iterated
 * them: snapshots and backups list entries in the same order as before. Values are never
 * `undefined`.
 *
 * @since 0.2.0
 */
import SortedBTree from "sorted-btree"

// A CommonJS module: Node (and the bundle) hand its `module.exports` over as the default
// export, vitest its `exports.default`, the class itself.
const BTree = SortedBTree.default ?? (SortedBTree as unknown as typeof SortedBTree.default)
type BTree<V> = SortedBTree.default<string, V>

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** Children (or entries) per node: copying a path costs about this many slots per level. */
const nodeSize = 32

/** A version's mark for a key it does not hold. */
const absent: unique symbol = Symbol("SortedMap.absent")
type Old<V> = V | typeof absent

/** What a version records of a key's value `now`: the value, or `absent`. */
const oldOf = <V>(now: V | undefined): Old<V> => (now === undefined ? absent : now)

/** The values of one map's versions: `map` holds the head's. */
interface Store<V> {
  readonly map: Map<string, V>
  head: Version<V>
  /** Writes to it so far: the chain of versions a store keeps growing (`due`). */
  writes: number
  /** Its head's values being copied into a store of their own, a few per write (`track`). */
  migration: Migration<V> | undefined
}

/**
 * A copy of a store's `map` made a few entries per write (`migrateStep`), as a hash table
 * is rehashed incrementally: the writes after it began go to both, so once `keys` ran out
 * `fresh` holds the head's values, and the next version written after the head starts a
 * store of its own with them (`SortedMap.base`). Copied in one go, 100,000 entries held
 * every replica's loop for 100-200 ms at the same command, the longest stall of the
 * yardstick's 256 writers.
 */
interface Migration<V> {
  readonly fresh: Map<string, V>
  readonly keys: Iterator<string>
  done: boolean
}

/** Entries a write copies of a migration: it ends within a quarter as many writes as the store holds keys. */
const migrateStep = 4

/** What the tests and benchmarks read of the copies: migrations ended, and entries copied at once. */
export const copies = { migrated: 0, copiedAtOnce: 0 }

/**
 * One version's values: the store's `map` when it is the head, else those of `next` but
 * where `diff` holds an old one (or `absent`).
 */
class Version<V> {
  next: Version<V> | undefined = undefined
  diff: Map<string, Old<V>> | undefined = undefined
  /**
   * An open draft's version, written in place: the one version whose `next` it is, which
   * keeps the old values of what the draft writes. Unset once frozen.
   */
  pred: Version<V> | undefined = undefined
  readonly store: Store<V>
  constructor(store: Store<V>) {
    this.store = store
  }
}

const newStore = <V>(map: Map<string, V>): Version<V> => {
  const store = { map, writes: 0, migration: undefined } as Store<V>
  store.head = new Version(store)
  return store.head
}

/**
 * Makes `v` the head: walks from it to the head, then from there back undoes each
 * version's differences in the `Map` and gives the version it left the inverse ones.
 */
const reroot = <V>(v: Version<V>): void => {
  const store = v.store
  if (store.head === v) return
  const path: Array<Version<V>> = []
  for (let u = v; u !== store.head; u = u.next!) path.push(u)
  // the head moves back: what a migration copied is no longer the head's
  store.migration = undefined
  const map = store.map
  for (let i = path.length - 1; i >= 0; i--) {
    const u = path[i]!
    const inverse = new Map<string, Old<V>>()
    for (const [key, old] of u.diff!) {
      inverse.set(key, oldOf(map.get(key)))
      if (old === absent) map.delete(key)
      else map.set(key, old)
    }
    const head = store.head
    head.next = u
    head.diff = inverse
    u.next = undefined
    u.diff = undefined
    store.head = u
  }
}

/**
 * Merges the differences between `v` and the head into `v`'s own, so that it reads in one
 * step; up to an open draft's predecessor only, which alone may point at the draft (the
 * draft's writes in place keep their old values there, and nowhere else).
 */
const compress = <V>(v: Version<V>): void => {
  const head = v.store.head
  const to = head.pred ?? head
  if (v === to || v.next === to) return
  const diff = v.diff!
  let u = v.next!
  while (u !== to) {
    for (const [key, old] of u.diff!) if (!diff.has(key)) diff.set(key, old)
    u = u.next!
  }
  v.next = to
}

const lookup = <V>(v: Version<V>, key: string): V | undefined => {
  const store = v.store
  let u = v
  if (u !== store.head) {
    if (u.pred === undefined) compress(u)
    while (u !== store.head) {
      const old = u.diff!.get(key)
      if (old !== undefined) return old === absent ? undefined : old
      u = u.next!
    }
  }
  return store.map.get(key)
}

/**
 * Most versions between one written to and its store's head for the write to reroot the
 * store there; farther, the version's entries are copied into a store of their own. Two
 * branches of one history (three replicas in one process, each applying its own commands
 * from the same initial state) would otherwise reroot back and forth along everything
 * either wrote since they parted.
 */
const maxRerootSteps = 16

/**
 * Writes a store takes before the next version written after its head goes to a copy of
 * it, when it holds fewer keys than this (else as many writes as it holds keys).
 */
const minWritesPerStore = 1024

/**
 * Is `store` due for a migration? Every version older than the head reaches the head through
 * the versions after it, so one still held (the machine's initial state, held for ever; a
 * replica's last verified state) keeps every later version and its differences alive: a
 * soak of a million writes on 1,024 keys grew by 250 MiB and went on growing. Copied
 * (`Migration`) once a store took as many writes as it holds keys, the chain an old
 * version keeps is at most about that long, and the copies cost a write's worth each.
 */
const due = <V>(store: Store<V>): boolean => store.writes >= Math.max(minWritesPerStore, store.map.size)

/**
 * Is `store` past due, its migration undone (given up by a reroot, each time it began)?
 * Then the next version written after its head goes to a copy made at once.
 */
const overdue = <V>(store: Store<V>): boolean => store.writes >= 2 * Math.max(minWritesPerStore, store.map.size)

/**
 * Counts a write of `key` to `store`'s map (`absent`: removed) and moves its migration on:
 * begun once the store is `due`, given the write, and `migrateStep` more entries of the map.
 */
const track = <V>(store: Store<V>, key: string, value: Old<V>): void => {
  store.writes++
  let m = store.migration
  if (m === undefined) {
    if (!due(store)) return
    m = store.migration = { fresh: new Map(), keys: store.map.keys(), done: false }
  }
  if (value === absent) m.fresh.delete(key)
  else m.fresh.set(key, value)
  // a Map's iterator sees keys added after it began and skips those removed before it came to them
  for (let i = 0; i < migrateStep && !m.done; i++) {
    const next = m.keys.next()
    if (next.done === true) m.done = true
    else m.fresh.set(next.value, store.map.get(next.value)!)
  }
}

/** Is the head at most `maxRerootSteps` versions from `v`? */
const near = <V>(v: Version<V>): boolean => {
  let u = v
  for (let steps = 0; steps <= maxRerootSteps; steps++) {
    if (u === u.store.head) return true
    u = u.next!
  }
  return false
}

/** A store of its own holding `v`'s entries (the keys `keys` lists): its head. */
const copied = <V>(v: Version<V>, keys: Iterable<string>): Version<V> => {
  const map = new Map<string, V>()
  for (const key of keys) map.set(key, lookup(v, key)!)
  copies.copiedAtOnce += map.size
  return newStore(map)
}

/** A store of its own holding the values its migration copied, when it is over and `v` is the head. */
const migrated = <V>(v: Version<V>): Version<V> | undefined => {
  const m = v.store.migration
  if (m === undefined || !m.done || v !== v.store.head) return undefined
  v.store.migration = undefined
  copies.migrated++
  return newStore(m.fresh)
}

/** A new head after `v` (made the head first), with `key` set to `value` (`absent`: removed). */
const written = <V>(v: Version<V>, key: string, value: Old<V>): Version<V> => {
  reroot(v)
  const map = v.store.map
  const next = new Version(v.store)
  v.next = next
  v.diff = new Map([[key, oldOf(map.get(key))]])
  if (value === absent) map.delete(key)
  else map.set(key, value)
  track(v.store, key, value)
  v.store.head = next
  return next
}

/** An open draft's version after `v` (made the head first): its writes change it in place. */
const opened = <V>(v: Version<V>): Version<V> => {
  reroot(v)
  const draft = new Version(v.store)
  draft.pred = v
  v.next = draft
  v.diff = new Map()
  v.store.head = draft
  return draft
}

/** Writes `key` in the open draft `d`: its old value kept for the version before it. */
const writeInPlace = <V>(d: Version<V>, key: string, value: Old<V>, now: V | undefined): void => {
  reroot(d)
  const diff = d.pred!.diff!
  if (!diff.has(key)) diff.set(key, oldOf(now))
  if (value === absent) d.store.map.delete(key)
  else d.store.map.set(key, value)
  track(d.store, key, value)
}

export class SortedMap<V> implements Iterable<[string, V]> {
  /** The keys in order; a draft's changes in place. */
  private keyTree: BTree<undefined>
  private version: Version<V>
  /** A draft: its writes change it in place (see the module's header). */
  private readonly draft: boolean
  private constructor(keyTree: BTree<undefined>, version: Version<V>, draft = false) {
    this.keyTree = keyTree
    this.version = version
    this.draft = draft
  }

  static empty<V>(): SortedMap<V> {
    return new SortedMap(new BTree<string, undefined>(undefined, compare, nodeSize), newStore(new Map()))
  }

  /** The map of `entries` (in any order; a later duplicate key wins). */
  static from<V>(entries: Iterable<readonly [string, V]>): SortedMap<V> {
    const map = new Map<string, V>()
    for (const [key, value] of entries) map.set(key, value)
    const keyTree = new BTree<string, undefined>(undefined, compare, nodeSize)
    for (const key of map.keys()) keyTree.set(key, undefined)
    return new SortedMap(keyTree, newStore(map))
  }

  /**
   * A draft of this map: the same entries, and writes that change the draft in place and
   * return it. This map never changes. Keep only the draft's last result, and `freeze` it.
   */
  edit(): SortedMap<V> {
    const from = this.draft ? this.freeze() : this
    // its first write opens a version of its own (`writable`)
    return new SortedMap(from.keyTree.clone(), from.version, true)
  }

  /**
   * A map no write changes any more: a draft's entries as they are now (a later write to
   * the draft goes to a version of its own first), or this map itself when it is no draft.
   */
  freeze(): SortedMap<V> {
    if (!this.draft) return this
    // closed: the draft's next write opens a version after this one
    this.version.pred = undefined
    return new SortedMap(this.keyTree.clone(), this.version)
  }

  /**
   * This map's version to write after: its own; the head of a store of its own when its
   * store's migration is over; or a copy made at once when far from its head (another
   * branch of the history moved on) or when its store is `overdue`.
   */
  private base(): Version<V> {
    const v = this.version
    return migrated(v) ?? (near(v) && !overdue(v.store) ? v : copied(v, this.keyTree.keys()))
  }

  /** A draft's version, open for writes in place: its own, once it wrote since it was made or frozen. */
  private writable(): Version<V> {
    const v = this.version
    if (v.pred === undefined) this.version = opened(this.base())
    // another branch of its store moved far on: the draft goes on in a copy
    else if (!near(v)) this.version = opened(copied(v, this.keyTree.keys()))
    return this.version
  }

  get size(): number {
    return this.keyTree.size
  }

  get(key: string): V | undefined {
    return lookup(this.version, key)
  }

  has(key: string): boolean {
    return lookup(this.version, key) !== undefined
  }

  /** This map with `key` set to `value`. */
  set(key: string, value: V): SortedMap<V> {
    return this.swap(key, value)[0]
  }

  /**
   * This map with `key` set to `value`, and the value that was there (`undefined`: none).
   * A key already there changes the values' `Map` only, not the tree of keys.
   */
  swap(key: string, value: V): readonly [SortedMap<V>, V | undefined] {
    if (this.draft) {
      const d = this.writable()
      const old = lookup(d, key)
      writeInPlace(d, key, value, old)
      if (old === undefined) this.keyTree.set(key, undefined)
      return [this, old]
    }
    const old = lookup(this.version, key)
    const keyTree = old === undefined ? (this.keyTree.with(key) as BTree<undefined>) : this.keyTree
    return [new SortedMap(keyTree, written(this.base(), key, value)), old]
  }

  /** This map without `key` (this map itself when it has no `key`). */
  remove(key: string): SortedMap<V> {
    const old = lookup(this.version, key)
    if (old === undefined) return this
    if (this.draft) {
      writeInPlace(this.writable(), key, absent, old)
      this.keyTree.delete(key)
      return this
    }
    return new SortedMap(this.keyTree.without(key), written<V>(this.base(), key, absent))
  }

  /** The entries in key order, from the first key at or above `from` when given. */
  *entries(from?: string): IterableIterator<[string, V]> {
    const version = this.version
    for (const key of this.keyTree.keys(from)) yield [key, lookup(version, key)!]
  }

  keys(): IterableIterator<string> {
    return this.keyTree.keys()
  }

  /**
   * The entries whose key starts with `prefix`, in key order, only those above `after`
   * when given: it starts at the first such key instead of walking the ones before.
   */
  *entriesWithPrefix(prefix: string, after?: string): Generator<[string, V], void, void> {
    const from = after !== undefined && after >= prefix ? after : prefix
    for (const entry of this.entries(from)) {
      if (!entry[0].startsWith(prefix)) return
      if (after !== undefined && entry[0] <= after) continue
      yield entry
    }
  }

  [Symbol.iterator](): IterableIterator<[string, V]> {
    return this.entries()
  }
}

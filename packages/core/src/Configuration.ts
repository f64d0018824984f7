/**
 * The log's configuration history, for reconfiguration as in the paper
 * (docs/reconfiguration.md): a configuration change is decided in some slot `s` and
 * governs the slots from `s + window` on. The history is the list of `(from, members)`
 * that results, oldest first; the first entry governs from slot 1.
 *
 * Everything here is a pure function of decided slots, so every role that knows the same
 * decided prefix computes the same configuration for a slot — that is what makes each slot
 * a single-decree Paxos instance over one fixed acceptor set. What a role may do with a
 * slot depends on whether it *knows* that slot's configuration: with every slot below
 * `known` decided and applied to the history, the configuration of every slot below
 * `known + window` is fixed (a change decided at `known` or later governs `known + window`
 * at the earliest).
 *
 * The roles use it as docs/reconfiguration.md describes: replicas apply changes in slot
 * order (`apply`), leaders command only slots whose configuration they know and run
 * phase 1 per configuration, commanders use `at(slot)`'s acceptors, acceptors count
 * replicas per configuration for garbage collection (`gcWatermark`).
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { Id } from "./Address.ts"
import { isMajority } from "./Quorum.ts"

/** Most servers of one kind in a configuration: keeps messages and quorums bounded. */
export const maxMembers = 64

const Ids = (what: string) =>
  Schema.Array(Id).check(
    Schema.isMinLength(1, { message: `at least one ${what} is required` }),
    Schema.isMaxLength(maxMembers, { message: `at most ${maxMembers} ${what}s` }),
    Schema.makeFilter((ids: ReadonlyArray<string>) => {
      const seen = new Set<string>()
      for (const id of ids) {
        if (seen.has(id)) return `duplicate ${what} id "${id}"`
        seen.add(id)
      }
      return true
    })
  )

/** Who votes, who leads and who applies the log: the part of a cluster config a reconfiguration changes. */
export const Members = Schema.Struct({
  acceptors: Ids("acceptor"),
  leaders: Ids("leader"),
  replicas: Ids("replica")
})
export type Members = typeof Members.Type

const Slot = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/** `members` governs the slots from `from` on, until the next entry's `from`; `decidedAt` is the slot that decided it (0 for the initial configuration). */
export const Entry = Schema.Struct({
  from: Slot,
  decidedAt: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  members: Members
})
export type Entry = typeof Entry.Type

/** Most entries a history keeps: older ones are pruned below the GC watermark. */
export const maxEntries = 64

/**
 * A history: entries in increasing `from` and `decidedAt`, the first from slot 1 or from
 * the slot it was pruned to. Persisted with a replica's snapshot and sent in state transfer.
 */
export const History = Schema.Array(Entry).check(
  Schema.isMinLength(1, { message: "a configuration history has at least one entry" }),
  Schema.isMaxLength(maxEntries, { message: `a configuration history has at most ${maxEntries} entries` }),
  Schema.makeFilter((entries: ReadonlyArray<Entry>) => {
    for (let i = 1; i < entries.length; i++) {
      const [a, b] = [entries[i - 1]!, entries[i]!]
      if (b.from <= a.from) return `entry ${i}: from ${b.from} is not after the previous entry's ${a.from}`
      if (b.decidedAt <= a.decidedAt) {
        return `entry ${i}: decided at ${b.decidedAt}, not after the previous entry's ${a.decidedAt}`
      }
    }
    return true
  })
)
export type History = typeof History.Type

/** The history of a cluster that never changed its configuration. */
export const initial = (members: Members): History => [{ from: 1, decidedAt: 0, members }]

/**
 * The configuration that governs `slot`. Valid only for a slot whose configuration is
 * known (`isKnown`): a change decided later could otherwise still govern it.
 */
export const at = (history: History, slot: number): Members => {
  let members = history[0]!.members
  for (const e of history) {
    if (e.from > slot) break
    members = e.members
  }
  return members
}

/**
 * The slot from which a change decided in `slot` governs: `slot + window`. Slots below it
 * keep the configuration they had, so every proposal already in flight (replicas propose
 * only below `slotOut + window`) keeps the acceptors it was sent to.
 */
export const effectiveSlot = (slot: number, window: number): number => slot + window

/**
 * Applies a change decided in `slot` (every slot below it already applied, in order):
 * `members` governs from `slot + window` on. Changes apply in the order of their slots,
 * so a later one always takes effect later.
 */
export const decided = (history: History, slot: number, members: Members, window: number): History => {
  const last = history[history.length - 1]!
  if (slot <= last.decidedAt) {
    throw new RangeError(`a change decided in slot ${slot} comes after the one of slot ${last.decidedAt}`)
  }
  return [...history, { from: effectiveSlot(slot, window), decidedAt: slot, members }]
}

/**
 * Applies a change decided in `slot` as replicas and leaders perform it: `decided` with
 * `window` (the planted `immediateReconfig` passes 1). A full history (`maxEntries`) is
 * first pruned at `slot` (the same on every role: a pure function of the history and the
 * slot); still full, the change is refused (`undefined`) and performed as a no-op.
 */
export const apply = (history: History, slot: number, members: Members, window: number): History | undefined => {
  const room = history.length < maxEntries ? history : prune(history, slot)
  if (room.length >= maxEntries) return undefined
  return decided(room, slot, members, window)
}

/** The latest configuration: the one a role that learnt every change so far ends up with. */
export const latest = (history: History): Members => history[history.length - 1]!.members

/** Every acceptor, leader or replica id named anywhere in the history. */
export const everyone = (history: History, kind: keyof Members): Array<string> => {
  const out = new Set<string>()
  for (const e of history) for (const id of e.members[kind]) out.add(id)
  return [...out]
}

/** Is `slot` at or after the history's first entry (whose `from` is 1 unless pruned)? Below it `at` is not to be trusted. */
export const covers = (history: History, slot: number): boolean => slot >= history[0]!.from

/**
 * With every slot below `known` decided and applied to the history, is `slot`'s
 * configuration fixed? Yes below `known + window`: a change not applied yet is decided
 * at `known` or later and governs from `known + window` on. A replica proposes only in
 * such slots (`slot < slotOut + window`); a leader commands only such slots.
 */
export const isKnown = (slot: number, known: number, window: number): boolean => slot < known + window

/**
 * Every configuration that may govern a slot from `from` on, as far as a role that
 * applied every slot below `known` can tell: the one in force at `from` and every later
 * entry. A configuration decided at `known` or later is not among them: a leader must
 * learn it (and run phase 1 with it) before it commands a slot it governs.
 */
export const governing = (history: History, from: number): Array<Members> => {
  const out: Array<Members> = [at(history, from)]
  for (const e of history) if (e.from > from) out.push(e.members)
  return out
}

/**
 * Drops the entries no slot from `watermark` on needs: every entry superseded by a later
 * one whose `from` is at or below the watermark. The entry in force at the watermark stays.
 */
export const prune = (history: History, watermark: number): History => {
  let first = 0
  for (let i = 1; i < history.length; i++) if (history[i]!.from <= watermark) first = i
  return first === 0 ? history : history.slice(first)
}

/**
 * Acceptors that no slot from `watermark` on needs: in some entry of the history, in no
 * configuration that governs a slot at or after the watermark. They may be stopped and
 * their data deleted (every slot they voted in is below the watermark: decided, and held
 * durably by enough replicas).
 */
export const retiredAcceptors = (history: History, watermark: number): Array<string> => {
  const needed = new Set(governing(history, watermark).flatMap((m) => m.acceptors))
  const out = new Set<string>()
  for (const e of history) for (const a of e.members.acceptors) if (!needed.has(a)) out.add(a)
  return [...out]
}

/**
 * The first slot from which no configuration of the history names `id` (in any kind): the
 * `from` of the entry after the last one that names it. `undefined` when the latest
 * configuration names it (or the history never did).
 */
export const leftAt = (history: History, id: string): number | undefined => {
  const names = (m: Members) => m.acceptors.includes(id) || m.leaders.includes(id) || m.replicas.includes(id)
  for (let i = history.length - 1; i >= 0; i--) {
    if (names(history[i]!.members)) return i === history.length - 1 ? undefined : history[i + 1]!.from
  }
  return undefined
}

/** A server a change removed: no slot from `leftAt` on names it; `retired` once nothing needs it any more. */
export interface Removed {
  readonly id: string
  readonly leftAt: number
  readonly retired: boolean
}

/**
 * The servers the history names but its latest configuration does not (rule 7 of
 * docs/reconfiguration.md), each *retired* once the GC watermark passed the slot it left
 * at (`watermark > leftAt`): every slot from `leftAt` on is governed without it, and every
 * slot below is forgotten by the acceptors and held durably by enough replicas of the
 * configuration of slot `watermark - 1`, which does not name it either. So it may be
 * stopped and its data deleted: no quorum, scout (`Scout.ts` skips a configuration whose
 * slots are all below a reported watermark) or state transfer counts on it. Before that
 * its acceptor may still be needed for a slot's majority and its replica's snapshot to
 * hold the slots below the watermark. `watermark`: a GC watermark (a role's view of it
 * only ever lags, so `retired` errs on the side of keeping a server).
 */
export const removed = (history: History, watermark: number): Array<Removed> => {
  const out: Array<Removed> = []
  for (const id of new Set([
    ...everyone(history, "acceptors"),
    ...everyone(history, "leaders"),
    ...everyone(history, "replicas")
  ])) {
    const left = leftAt(history, id)
    if (left !== undefined) out.push({ id, leftAt: left, retired: watermark > left })
  }
  return out
}

/** Did a majority of `slot`'s configuration's acceptors vote, counting each member once and no one else? */
export const isMajorityAt = (history: History, slot: number, voters: Iterable<string>): boolean => {
  const members = new Set(at(history, slot).acceptors)
  let n = 0
  for (const v of new Set(voters)) if (members.has(v)) n++
  return isMajority(n, members.size)
}

/**
 * The GC watermark the replicas' durable reports allow, counting for each slot the
 * replicas of the configuration that holds it: the highest reported `w` such that, for
 * the configuration `C` that governs slot `w - 1`, at least `h(C) = max(1, min(|C.replicas|,
 * f + 1))` replicas of `C` (with `2f + 1 ≤ |C.acceptors|`, as the acceptor counts today)
 * reported a durable `slotOut ≥ w`; reports of replicas outside `C` do not count. Their
 * snapshots hold every slot below `w`, so any replica that needs one of them copies a
 * snapshot instead. A dead replica removed from the configuration stops holding the
 * watermark back once the slots after its removal are reported. `reports`: each replica's
 * latest report; the answer is never below `current`.
 */
export const gcWatermark = (history: History, reports: ReadonlyMap<string, number>, current = 1): number => {
  const candidates = [...new Set(reports.values())].filter((s) => s > current).sort((a, b) => b - a)
  for (const c of candidates) {
    // a pruned history no longer says which configuration held the slots before its first entry
    if (!covers(history, c - 1)) continue
    const members = at(history, c - 1)
    const f = Math.floor((members.acceptors.length - 1) / 2)
    const h = Math.max(1, Math.min(members.replicas.length, f + 1))
    let holding = 0
    for (const r of members.replicas) if ((reports.get(r) ?? 0) >= c) holding++
    if (holding >= h) return c
  }
  return current
}

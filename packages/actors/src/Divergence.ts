/**
 * Divergence detection between replicas (docs/protocol.md#divergence-detection): every
 * replica that performs the same decided slots must hold the same state, slotOut and
 * client table. Paxos keeps their logs equal; only something outside the protocol — a
 * forged message, a bug, a bit flip — makes their states differ, and then nothing else
 * notices. So at agreed *digest slots* each replica hashes its snapshot and tells its
 * peers; a replica whose digest a majority of the configuration's replicas contradicts
 * knows its own state is the wrong one.
 *
 * This module is the bookkeeping, without I/O: the digests a replica computed of its own
 * state (`own`) and those its peers sent (`heard`), both bounded to the `RECENT` latest
 * slots; which `Digest` messages to send; and the verdict at a slot once enough digests
 * are in. The replica decides what a verdict does (Replica.ts).
 *
 * Gossip: a replica sends its digest to every peer when it has computed it, with
 * `heard` telling whether it already holds that peer's digest for the slot; a peer that
 * receives one with `heard: false` and holds its own digest for the slot answers with it.
 * On each tick a replica sends its latest digest again to the peers it has not heard at
 * that slot (a lost message, or a peer that has not reached the slot yet). When all keep
 * up that is one message each way per pair of replicas and digest slot.
 *
 * @since 0.3.0
 */
import { type Address, Message } from "@synod/core"
import type { Outbound } from "./internal/Host.ts"

/** Digest slots remembered, per replica: a replica compares only at the same slot, and a peer may lag a little. */
export const RECENT = 8

/**
 * The digest slots by count: every slot that ends a run of `every` slots (slotOut 1 + k·every,
 * k ≥ 1). Every replica passes through each of them as it performs slots in order, so all
 * replicas digest the same slots whatever their snapshot timing (snapshots also follow
 * installs and restarts, which differ between replicas). The replica adds the slots where
 * the commands since the last digest slot reach `snapshotBytes` (`Replica.ts`), a count
 * every replica keeps the same (it is in the snapshot).
 */
export const isDigestSlot = (slotOut: number, every: number): boolean => slotOut > 1 && (slotOut - 1) % every === 0

export type Verdict =
  /** A majority of the configuration's replicas hold this replica's digest at `slot`. */
  | { readonly _tag: "Agreed"; readonly slot: number; readonly own: string }
  /**
   * A majority holds another digest: this replica's state is the wrong one. `peers`: the
   * replicas of that majority, whose snapshots are safe to copy.
   */
  | {
      readonly _tag: "Diverged"
      readonly slot: number
      readonly own: string
      readonly majority: string
      readonly peers: ReadonlyArray<Address.Address>
    }
  /**
   * The digests differ and no digest can reach a majority any more (two replicas that
   * disagree, three that all differ): which state is right cannot be known from here.
   */
  | {
      readonly _tag: "Split"
      readonly slot: number
      readonly own: string
      readonly others: ReadonlyArray<{ readonly replica: Address.Address; readonly digest: string }>
    }

/** Keeps at most `RECENT` entries, dropping the lowest slots. */
const bounded = (map: Map<number, string>, slot: number, digest: string): boolean => {
  if (map.has(slot)) return false
  if (map.size >= RECENT) {
    const lowest = Math.min(...map.keys())
    if (slot < lowest) return false
    map.delete(lowest)
  }
  map.set(slot, digest)
  return true
}

export class Digests {
  /** This replica's digests, by slot. */
  readonly own = new Map<number, string>()
  /** Each peer's digests, by slot. */
  readonly heard = new Map<Address.Address, Map<number, string>>()
  private readonly peers: ReadonlyArray<Address.Address>
  /** Replicas in the configuration, this one included. */
  private readonly total: number

  constructor(peers: ReadonlyArray<Address.Address>, total: number) {
    this.peers = peers
    this.total = total
    for (const p of peers) this.heard.set(p, new Map())
  }

  /** More than half of the configuration's replicas. */
  get majority(): number {
    return Math.floor(this.total / 2) + 1
  }

  /** The latest slot this replica has a digest of. */
  get latest(): number | undefined {
    return this.own.size === 0 ? undefined : Math.max(...this.own.keys())
  }

  /** Forgets this replica's digests below `slot` (its state there was replaced). */
  forgetOwnBelow(slot: number): void {
    for (const s of this.own.keys()) if (s < slot) this.own.delete(s)
  }

  /** This replica's digest at `slot`: the messages that tell its peers. */
  recordOwn(slot: number, digest: string): Array<Outbound> {
    if (!bounded(this.own, slot, digest)) return []
    return this.peers.map((to) => ({
      to,
      message: new Message.Digest({ slot, digest, heard: this.heard.get(to)!.has(slot) })
    }))
  }

  /** A peer's digest: the answer it asks for, if any. */
  recordPeer(from: Address.Address, message: Message.Digest): Array<Outbound> {
    const heard = this.heard.get(from)
    if (heard === undefined) return [] // not a replica of this configuration
    const known = heard.get(message.slot)
    if (known === undefined) bounded(heard, message.slot, message.digest)
    const own = this.own.get(message.slot)
    if (message.heard || own === undefined) return []
    return [{ to: from, message: new Message.Digest({ slot: message.slot, digest: own, heard: true }) }]
  }

  /** Timer: the latest digest again, to the peers not heard at its slot. */
  tick(): Array<Outbound> {
    const slot = this.latest
    if (slot === undefined) return []
    const digest = this.own.get(slot)!
    const out: Array<Outbound> = []
    for (const to of this.peers) {
      const heard = this.heard.get(to)!
      if (heard.has(slot)) continue
      // a peer far ahead has forgotten this slot: it will never answer
      if (heard.size > 0 && Math.min(...heard.keys()) > slot) continue
      out.push({ to, message: new Message.Digest({ slot, digest, heard: false }) })
    }
    return out
  }

  /** The verdict at `slot`, once this replica's digest and enough of its peers' are in. */
  verdict(slot: number): Verdict | undefined {
    const own = this.own.get(slot)
    if (own === undefined) return undefined
    const counts = new Map<string, Array<Address.Address>>()
    let unknown = 0
    for (const [peer, heard] of this.heard) {
      const d = heard.get(slot)
      if (d === undefined) {
        unknown++
        continue
      }
      const holders = counts.get(d)
      if (holders === undefined) counts.set(d, [peer])
      else holders.push(peer)
    }
    const majority = this.majority
    const mine = 1 + (counts.get(own)?.length ?? 0)
    if (mine >= majority) return { _tag: "Agreed", slot, own }
    for (const [digest, holders] of counts) {
      if (digest !== own && holders.length >= majority) {
        return { _tag: "Diverged", slot, own, majority: digest, peers: holders }
      }
    }
    // the digests heard differ from this one; can any still reach a majority?
    if (counts.size === 0) return undefined
    let best = mine
    for (const [digest, holders] of counts) if (digest !== own && holders.length > best) best = holders.length
    if (best + unknown >= majority) return undefined
    const others: Array<{ replica: Address.Address; digest: string }> = []
    for (const [digest, holders] of counts) for (const replica of holders) others.push({ replica, digest })
    return { _tag: "Split", slot, own, others }
  }

  /**
   * The digest a majority of the configuration's replicas other than this one hold at
   * `slot`, if there is one (to check a copied snapshot before installing it).
   */
  majorityOfPeers(slot: number): string | undefined {
    const counts = new Map<string, number>()
    for (const heard of this.heard.values()) {
      const d = heard.get(slot)
      if (d !== undefined) counts.set(d, (counts.get(d) ?? 0) + 1)
    }
    for (const [digest, n] of counts) if (n >= this.majority) return digest
    return undefined
  }

  /**
   * The highest slot above `slot` at which a majority of the configuration's replicas
   * other than this one hold the same digest: a state a peer serves, and this replica
   * can check, ahead of `slot`.
   */
  agreedByPeersAbove(slot: number): number | undefined {
    let best: number | undefined
    for (const heard of this.heard.values()) {
      for (const s of heard.keys()) {
        if (s > slot && (best === undefined || s > best) && this.majorityOfPeers(s) !== undefined) best = s
      }
    }
    return best
  }
}

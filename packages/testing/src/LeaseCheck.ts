/**
 * The simulator's check of leases (docs/protocol.md#leases): no lease ends early from its
 * holder's point of view.
 *
 * A holder counts on its lease until `sent + ttl·(1−ε)` on its own clock, `sent` being
 * when it sent its last keep-alive (or grant) that succeeded (`LeaseKeeper.validUntil`);
 * the simulation converts that to simulated time with the holder's clock rate. Observers
 * on every replica note when a lease first disappears from a replica's applied state
 * (its keys deleted with it). A lease that ended before its holder stopped counting on it
 * is a violation, unless the holder revoked it itself. Both orders are checked: an end
 * seen before the keep-alive's answer arrived, and an answer arriving after the end.
 *
 * @since 0.3.0
 */
import type { Kv } from "@synod/kv"
import { HashMap } from "effect"

interface Held {
  readonly holder: string
  /** Simulated time until which the holder counts on it. */
  validUntil: number
  /** When the holder sent the keep-alive (or grant) that gave `validUntil`. */
  sentAt: number
  revoking: boolean
}

export class LeaseCheck {
  private readonly violations: Array<string>
  private readonly held = new Map<number, Held>()
  /** Lease id → the first simulated time a replica's applied state no longer had it. */
  private readonly ended = new Map<number, number>()
  /** Holders' leases that ended without being revoked by their holder. */
  expiries = 0

  constructor(violations: Array<string>) {
    this.violations = violations
  }

  /** `holder` got lease `id` (a grant sent at `sentAt`) and counts on it until `validUntil`. */
  granted(id: number, holder: string, sentAt: number, validUntil: number): void {
    this.held.set(id, { holder, validUntil, sentAt, revoking: false })
    this.check(id)
  }

  /** A keep-alive of lease `id` sent at `sentAt` succeeded: the holder counts on it until `validUntil`. */
  kept(id: number, sentAt: number, validUntil: number): void {
    const h = this.held.get(id)
    if (h === undefined) return
    if (validUntil > h.validUntil) {
      h.validUntil = validUntil
      h.sentAt = sentAt
    }
    this.check(id)
  }

  /** The holder revokes lease `id` itself: its end is not an expiry. */
  revoking(id: number): void {
    const h = this.held.get(id)
    if (h !== undefined) h.revoking = true
  }

  /** A replica's applied state went from `before` to `after` at simulated time `now`. */
  observe(before: Kv.State, after: Kv.State, now: number): void {
    if (before.leases === after.leases) return
    for (const id of HashMap.keys(before.leases.byId)) {
      if (HashMap.has(after.leases.byId, id) || this.ended.has(id)) continue
      this.ended.set(id, now)
      if (this.held.has(id) && this.held.get(id)?.revoking !== true) this.expiries++
      this.check(id)
    }
  }

  private check(id: number): void {
    const h = this.held.get(id)
    const end = this.ended.get(id)
    if (h === undefined || end === undefined || h.revoking || end >= h.validUntil) return
    if (this.violations.length < 20) {
      this.violations.push(
        `LEASE: lease ${id} of ${h.holder} ended at ${end} ms, but its holder counts on it until ${h.validUntil.toFixed(1)} ms (its keep-alive sent at ${h.sentAt} ms succeeded)`
      )
    }
    // reported once
    h.revoking = true
  }
}

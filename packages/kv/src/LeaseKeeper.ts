/**
 * The lease keeper: the only thing that expires leases. It runs next to a leader (in the
 * process hosting it, reading the applied state of a replica there) and acts only while
 * that leader is active: it tracks each lease's deadline on its own monotonic clock and,
 * when one passes, proposes a `LeaseExpire` through the ordinary command path.
 *
 * - A lease's deadline is `now + ttl`, restarted whenever the keeper sees the lease's
 *   `renewals` change in the applied state (a keep-alive was applied), and set afresh for
 *   every lease when the keeper starts leading: a new leader extends every remaining TTL
 *   by the time the election took, as etcd does. A keeper never inherits a deadline.
 * - The expiry names each lease with the renewals the keeper saw; a keep-alive decided
 *   before it makes it a no-op for that lease (`Kv.apply`).
 *
 * Why a lease never expires early from its holder's point of view: the holder counts its
 * lease from when it *sent* its last successful keep-alive (or grant), `sent + ttl·(1−ε)`
 * on its own clock. That keep-alive was applied after it was sent, and the keeper started
 * the deadline when it saw it applied, later still; it proposes the expiry only a whole
 * `ttl` after that on its clock, and the expiry is applied later again. What remains is
 * the two clocks' rates: the argument holds as long as the keeper's clock does not run
 * faster than the holder's by more than a factor 1/(1−ε) (with ε = 5%, a relative drift
 * of about 2.5% each way; quartz drifts by parts per million). Pauses, message delays,
 * leader changes and a lagging replica only make the keeper later. Nothing else about
 * time is assumed: wall clocks are never read.
 *
 * The pure part (`observe`, `due`) decides; `run` is the loop around it.
 *
 * @since 0.3.0
 */
import { Effect } from "effect"
import type * as Kv from "./Kv.ts"
import * as Lease from "./Lease.ts"

/** A holder considers its lease lost at `sent + ttl·(1−ε)` (its last successful keep-alive's send time). */
export const holderMargin = 0.05

/** The time a holder may count on, on its own clock, after a keep-alive it sent at `sentAt` succeeded. */
export const validUntil = (sentAt: number, ttlMs: number): number => sentAt + ttlMs * (1 - holderMargin)

/** What the keeper knows of one lease. */
export interface Tracked {
  readonly renewals: number
  readonly ttlMs: number
  /** When it expires, on the keeper's clock. */
  readonly deadline: number
}

export type Deadlines = ReadonlyMap<number, Tracked>

/**
 * The deadlines after seeing `leases` at `now`: a lease not tracked yet, or whose renewals
 * changed, starts at `now + ttl`; one no longer there is dropped; the others keep theirs.
 */
export const observe = (tracked: Deadlines, leases: Lease.Leases, now: number): Map<number, Tracked> => {
  const next = new Map<number, Tracked>()
  for (const lease of Lease.all(leases)) {
    const known = tracked.get(lease.id)
    next.set(
      lease.id,
      known !== undefined && known.renewals === lease.renewals
        ? known
        : { renewals: lease.renewals, ttlMs: lease.ttlMs, deadline: now + lease.ttlMs }
    )
  }
  return next
}

/** The leases whose deadline has passed, earliest first, at most `Lease.maxExpiries`: what to expire. */
export const due = (tracked: Deadlines, now: number): Array<readonly [number, number]> =>
  Array.from(tracked.entries())
    .filter(([, t]) => t.deadline <= now)
    .sort(([a, x], [b, y]) => x.deadline - y.deadline || a - b)
    .slice(0, Lease.maxExpiries)
    .map(([id, t]) => [id, t.renewals] as const)

/**
 * Planted bug `leaseEarlyExpiry` (for the simulator to catch): the keeper tracks leases
 * while its leader is passive too, noting only when it first saw each one, and when its
 * leader becomes active it keeps those deadlines instead of starting every lease afresh:
 * a lease kept alive through the old leader expires at once under the new one.
 */
export const observeWhilePassive = (tracked: Deadlines, leases: Lease.Leases, now: number): Map<number, Tracked> => {
  const next = new Map<number, Tracked>()
  for (const lease of Lease.all(leases)) {
    const known = tracked.get(lease.id)
    next.set(
      lease.id,
      known === undefined
        ? { renewals: lease.renewals, ttlMs: lease.ttlMs, deadline: now + lease.ttlMs }
        : { ...known, renewals: lease.renewals }
    )
  }
  return next
}

export interface Options {
  /** The applied state of a replica in this process. */
  readonly applied: { readonly current: Effect.Effect<Kv.State> }
  /** Whether the leader next to it is active (the keeper acts only then). */
  readonly leading: Effect.Effect<boolean>
  /** Submits a command through the log (a client's `submit`). */
  readonly submit: (command: Kv.Command) => Effect.Effect<Kv.Result, unknown>
  /** The keeper's monotonic clock, in ms. */
  readonly now: () => number
  /** How often it looks at its leader's status and the applied state, and retries an expiry that got no answer. */
  readonly pollMs: number
  /** Plants `leaseEarlyExpiry` (see `observeWhilePassive`); tests only. */
  readonly plantedEarlyExpiry?: boolean
  /** Told of each expiry proposed (tests and traces). */
  readonly onPropose?: (leases: ReadonlyArray<readonly [number, number]>) => void
}

/** The keeper's loop; runs until interrupted (fork it in the scope of the server it serves). */
export const run = (options: Options): Effect.Effect<never> =>
  Effect.gen(function* () {
    let tracked: Map<number, Tracked> = new Map()
    let wasLeading = false
    let seenLeases: Lease.Leases | undefined
    let inFlight = false
    // ids proposed, and when: not proposed again before `pollMs` has passed
    const proposed = new Map<number, number>()
    for (;;) {
      const leading = yield* options.leading
      const state = yield* options.applied.current
      const now = options.now()
      if (!leading) {
        tracked = options.plantedEarlyExpiry === true ? observeWhilePassive(tracked, state.leases, now) : new Map()
        wasLeading = false
      } else {
        if (!wasLeading && options.plantedEarlyExpiry !== true) {
          // a new leader: every lease starts afresh, whatever its deadline was before
          tracked = observe(new Map(), state.leases, now)
        } else if (state.leases !== seenLeases) {
          tracked = observe(tracked, state.leases, now)
        }
        wasLeading = true
        for (const [id, at] of proposed) if (!tracked.has(id) || now - at >= options.pollMs) proposed.delete(id)
        const expire = due(tracked, now).filter(([id]) => !proposed.has(id))
        if (expire.length > 0 && !inFlight) {
          inFlight = true
          for (const [id] of expire) proposed.set(id, now)
          options.onPropose?.(expire)
          yield* Effect.forkChild(
            Effect.exit(options.submit({ _tag: "LeaseExpire", leases: expire })).pipe(
              Effect.ensuring(
                Effect.sync(() => {
                  inFlight = false
                })
              )
            )
          )
        }
      }
      seenLeases = state.leases
      // the next deadline not proposed yet; while an expiry is in flight, look again only after `pollMs`
      let next: number | undefined
      if (leading && !inFlight) {
        for (const [id, t] of tracked)
          if (!proposed.has(id) && (next === undefined || t.deadline < next)) next = t.deadline
      }
      // the state is looked at every `pollMs` (a keep-alive seen up to that late only makes
      // a deadline later), not at every command applied: the keeper costs nothing per command
      const waitMs = Math.max(1, Math.min(options.pollMs, next === undefined ? options.pollMs : next - now))
      yield* Effect.sleep(Math.ceil(waitMs))
    }
  }) as Effect.Effect<never>

/**
 * What one simulation run does, derived from its seed: cluster shape, workload, and which
 * kinds of faults the nemesis may inject. Every field can be overridden, which is how a
 * failing case is reduced to a smaller one.
 *
 * @since 0.1.0
 */
import type { PlantedBugs } from "@synod/actors/Hooks"

export interface Scenario {
  readonly seed: number
  /** Failures tolerated: 2f+1 acceptors, f+1 leaders and replicas. */
  readonly f: 1 | 2
  /** Colocated servers (each hosts all three roles) or every role on its own node. */
  readonly layout: "colocated" | "split"
  readonly clients: number
  readonly opsPerClient: number
  readonly keys: number
  /** Loss, duplication, delay and reordering. */
  readonly network: boolean
  /** Partitions, one-way cuts, isolated nodes. */
  readonly partitions: boolean
  /** Crash-restart of a minority of roles (memory lost, storage kept). */
  readonly crashes: boolean
  /** How long the nemesis acts, in simulated ms; then everything heals. */
  readonly faultMs: number
  /** Replicas snapshot every this many slots, and acceptors garbage-collect behind them. */
  readonly snapshotEvery: number
  /**
   * Some writes carry values of kilobytes (and a few are too large to send at all), on a
   * bus whose message limit is `Simulation.messageBytes`: batches, P1b pages, state
   * chunks and answers must all be sized to fit.
   */
  readonly largeValues: boolean
  /**
   * Clients that hold leases (grant, attach a key, keep alive, pause now and then) while
   * lease keepers run next to the leaders; each on a clock of its own rate (`LeaseCheck`).
   */
  readonly leaseHolders: number
  /**
   * The divergence nemesis: once, at a random moment of the fault phase, one replica's
   * state is changed without a command (a forged message applied, a bit flip). It acts
   * only in clusters of three replicas or more, where a majority can contradict one.
   */
  readonly corruption: boolean
  /**
   * The reconfiguration nemesis (docs/reconfiguration.md): servers are added, removed and
   * replaced (one at a time, through a replica's API) while the other faults act, with
   * spare servers running for every id a change can name. Not with `corruption`: the
   * divergence check counts the cluster config's replicas.
   */
  readonly reconfigure: boolean
  /**
   * The nemesis may also bring a rival (with `partitions`): a leader that stops hearing the
   * active one and competes while it still leads, reaches every acceptor and answers the
   * reader under its read lease, with no new work coming in. Only the acceptors' hold,
   * renewed by the leader's confirmations, keeps the rival off then
   * (docs/protocol.md#read-leases).
   */
  readonly rivals: boolean
  readonly bugs: Partial<PlantedBugs.PlantedBugs>
}

/** A small, fast, seedable PRNG (mulberry32): scenario choices must not depend on Effect's scheduling. */
export const prng = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const fromSeed = (seed: number, overrides: Partial<Omit<Scenario, "seed">> = {}): Scenario => {
  const r = prng(seed ^ 0x5eed)
  const base: Scenario = {
    seed,
    f: r() < 0.7 ? 1 : 2,
    layout: r() < 0.5 ? "colocated" : "split",
    clients: 1 + Math.floor(r() * 4),
    opsPerClient: 10 + Math.floor(r() * 20),
    keys: 1 + Math.floor(r() * 3),
    network: r() < 0.85,
    partitions: r() < 0.7,
    crashes: r() < 0.7,
    faultMs: 1000 + Math.floor(r() * 2000),
    snapshotEvery: [2, 4, 8][Math.floor(r() * 3)]!,
    largeValues: r() < 0.5,
    leaseHolders: r() < 0.6 ? 1 + Math.floor(r() * 2) : 0,
    // drawn last: the fields above stay what they were for every seed
    corruption: r() < 0.5,
    reconfigure: false,
    rivals: false,
    bugs: {}
  }
  // from a generator of its own, so that every other field stays what it was for every seed
  const drawn = prng(seed ^ 0xc0f19)() < 0.5
  // the divergence nemesis and this one exclude each other: an explicit choice of one wins
  const reconfigure = overrides.reconfigure ?? (overrides.corruption === true ? false : drawn)
  const corruption = overrides.corruption ?? (reconfigure ? false : base.corruption)
  // also from its own generator: seeds without rivals run as they did before the fault existed
  const rivals = overrides.rivals ?? prng(seed ^ 0x41a1)() < 0.3
  return { ...base, ...overrides, reconfigure, corruption, rivals }
}

export const describe = (s: Scenario): string =>
  `seed ${s.seed}: f=${s.f} ${s.layout}, ${s.clients} clients x ${s.opsPerClient} ops on ${s.keys} keys, ` +
  `snapshots every ${s.snapshotEvery} slots${s.largeValues ? ", large values" : ""}${s.leaseHolders > 0 ? `, ${s.leaseHolders} lease holders` : ""}${s.corruption ? ", a replica corrupted" : ""}${s.reconfigure ? ", reconfigurations" : ""}${s.rivals && s.partitions ? ", rivals" : ""}, faults for ${s.faultMs} ms: ${[s.network && "network", s.partitions && "partitions", s.crashes && "crashes"].filter(Boolean).join(", ") || "none"}` +
  (Object.keys(s.bugs).length > 0 ? `, planted: ${Object.keys(s.bugs).join(", ")}` : "")

/**
 * One deterministic simulation run: a whole cluster, its clients and a nemesis on the
 * in-memory bus, in one runtime, under one seed and the step-wise `SimClock`.
 *
 * Every role runs in its own scope, so the nemesis can crash any of them (memory lost,
 * the in-memory disk kept; writes not yet synced are lost) and restart it. After every
 * step (one fired timer or delivered message) the run stops at the first invariant
 * violation the `Checker` recorded. When the fault phase ends everything heals; from then
 * on every command must complete within a bounded simulated time (else: a stall), all
 * replicas must converge, their history of writes (what watches are served from) must be
 * the log's writes as the clients saw them placed (`HistoryCheck`), and the client
 * history must be linearizable (`KvModel`). The
 * state machine is the product's key-value store (`@synod/kv`).
 *
 * The divergence nemesis (`Scenario.corruption`) changes one replica's state without a
 * command; the checker then demands that the replica finds out (invariant V) and the
 * run does not end before it holds a state its peers agree with again. Answers that
 * replica gave while its state may have been the changed one are left out of the
 * linearizability check (their outcome counts as unknown): no protocol can vouch for
 * them, and they are exactly what detection bounds.
 *
 * Same seed, same scenario ⇒ the same run, step for step.
 *
 * @since 0.1.0
 */
import { Acceptor, Client, Leader, Replica } from "@synod/actors"
import { PlantedBugs, Probe, Tamper } from "@synod/actors/Hooks"
import {
  Address,
  Ballot,
  ClusterConfig,
  type Command,
  Configuration,
  InMemoryBus,
  Monotonic,
  Storage,
  Transport
} from "@synod/core"
import { Kv, LeaseKeeper } from "@synod/kv"
import { Effect, Exit, Fiber, Layer, Random, References, Scope } from "effect"
import { Checker } from "./Checker.ts"
import * as HistoryCheck from "./HistoryCheck.ts"
import { type Input, KvModel, type Output } from "./KvModel.ts"
import { LeaseCheck } from "./LeaseCheck.ts"
import { check, type Operation } from "./Linearizability.ts"
import { prng, type Scenario } from "./Scenario.ts"
import * as SimClock from "./SimClock.ts"
import { observeBus, type Timeline } from "./Timeline.ts"

export interface Report {
  readonly scenario: Scenario
  readonly steps: number
  readonly simMs: number
  readonly violations: ReadonlyArray<string>
  /** Why the run did not finish in time after the faults healed, if it did not. */
  readonly stall: string | undefined
  readonly linearizable: boolean
  /** The linearizability check gave up (too many interleavings): "linearizable" is then unproven. */
  readonly linearizabilityTimedOut: boolean
  /** The operations of the first key whose history is not linearizable. */
  readonly nonlinearizable?: ReadonlyArray<string>
  readonly operations: number
  readonly unknown: number
  /** Acceptor garbage collections, and snapshots replicas installed from peers. */
  readonly gcs: number
  readonly transfers: number
  /** Messages the bus dropped for exceeding its limit: a role sent more than a message carries. */
  readonly oversized: number
  /** The replica the divergence nemesis changed, if it acted; and how often it found out. */
  readonly corrupted?: string
  readonly detections: number
  /** Answers of the corrupted replica left out of the linearizability check. */
  readonly exempt: number
  /** Leases of the lease holders that ended without being revoked: the expiries the lease check judged. */
  readonly leaseExpiries: number
}

export const failed = (r: Report): boolean =>
  r.violations.length > 0 || r.stall !== undefined || !r.linearizable || r.oversized > 0

export interface RunOptions {
  /** Called with each trace line (deliveries, faults, client operations). */
  readonly trace?: (line: string) => void
  /** Filled with every message, fault, note and the first violation, for a space-time view. */
  readonly timeline?: Timeline
}

type Role = "acceptor" | "leader" | "replica"

/**
 * The network after the fault phase: connected but never perfect, since core NATS may
 * drop and a reconnect may replay. Liveness must hold under it.
 */
const mild: Partial<InMemoryBus.Faults> = {
  lossRate: 0.02,
  duplicateRate: 0.02,
  minDelay: 1,
  maxDelay: 5,
  maxReplayDelay: 0
}

/** The client that only reads, off the log (see the workload and the "stale" fault). */
const readerId = "reader"
/**
 * How far any clock's rate may stray from the simulated time's, each way: keepers and
 * lease holders each get a rate in `1 ± maxSkew`. Leases stay safe while a keeper's rate
 * over a holder's is below 1/(1−ε) (`LeaseKeeper.holderMargin`): 1.02/0.98 < 1/0.95.
 */
export const maxSkew = 0.02

/** Time after the heal within which a newly invoked command must not time out. */
const settleMs = 4000
/** Time after the heal within which the whole workload must be done and replicas converged. */
const boundMs = 40_000

export const configFor = (s: Scenario): ClusterConfig.ClusterConfig => {
  const n = 2 * s.f + 1
  const ids = (prefix: string, k: number) => Array.from({ length: k }, (_, i) => `${prefix}${i + 1}`)
  const roles =
    s.layout === "colocated"
      ? { acceptors: ids("s", n), leaders: ids("s", n), replicas: ids("s", n) }
      : { acceptors: ids("a", n), leaders: ids("l", s.f + 1), replicas: ids("r", s.f + 1) }
  return ClusterConfig.make({
    ...roles,
    window: 4,
    snapshotEvery: s.snapshotEvery,
    // digest slots by bytes too, spaced by the store's size (`snapshotRatio`, 2), between
    // them: a slot holds about 100 bytes of commands, so these fall between the slot counts
    snapshotBytes: 40 * s.snapshotEvery,
    snapshotMaxBytes: 120 * s.snapshotEvery,
    batch: { maxSize: 3 },
    timeouts: {
      retransmitMs: 40,
      heartbeatMs: 20,
      leaderTimeoutMs: 100,
      maxLeaderTimeoutMs: 1600,
      clientTimeoutMs: 2500
    },
    // read leases on, against clocks that drift as far as the bound allows (`clockOf`)
    reads: { lease: true, clockDrift: maxSkew }
  })
}

/**
 * The ids a configuration change may bring in (`Scenario.reconfigure`): two spare servers
 * colocated, or two spare nodes of each role split. They run from the start, with the
 * cluster config, like a new server an operator starts before adding it.
 */
export const sparesFor = (s: Scenario): Configuration.Members => {
  const n = 2 * s.f + 1
  return s.layout === "colocated"
    ? {
        acceptors: [`s${n + 1}`, `s${n + 2}`],
        leaders: [`s${n + 1}`, `s${n + 2}`],
        replicas: [`s${n + 1}`, `s${n + 2}`]
      }
    : {
        acceptors: [`a${n + 1}`, `a${n + 2}`],
        leaders: [`l${s.f + 2}`, `l${s.f + 3}`],
        replicas: [`r${s.f + 2}`, `r${s.f + 3}`]
      }
}

/**
 * The next configuration the reconfiguration nemesis asks for: one server of `kind` added
 * (up to one more than the cluster config has), removed (down to as many) or replaced by
 * one not in the configuration. Colocated, a server is all three roles at once.
 */
export const nextMembers = (
  r: () => number,
  current: Configuration.Members,
  base: Configuration.Members,
  spares: Configuration.Members,
  colocated: boolean
): { readonly members: Configuration.Members; readonly what: string } => {
  const kinds: ReadonlyArray<keyof Configuration.Members> = colocated
    ? ["acceptors"]
    : (["acceptors", "leaders", "replicas"] as const)
  const kind = kinds[Math.floor(r() * kinds.length)]!
  const ids = current[kind]
  const pool = [...base[kind], ...spares[kind]].filter((id) => !ids.includes(id))
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(r() * xs.length)]!
  const ops = [
    ...(ids.length <= base[kind].length && pool.length > 0 ? ["add"] : []),
    ...(ids.length > base[kind].length ? ["remove"] : []),
    ...(pool.length > 0 ? ["replace"] : [])
  ]
  const op = pick(ops)
  let next: Array<string>
  let what: string
  if (op === "add") {
    const id = pick(pool)
    next = [...ids, id]
    what = `add ${id}`
  } else if (op === "remove") {
    const id = pick(ids)
    next = ids.filter((x) => x !== id)
    what = `remove ${id}`
  } else {
    const out = pick(ids)
    const id = pick(pool)
    next = ids.map((x) => (x === out ? id : x))
    what = `replace ${out} by ${id}`
  }
  const members = colocated ? { acceptors: next, leaders: next, replicas: next } : { ...current, [kind]: next }
  return { members, what: colocated ? `${what} (server)` : `${what} (${kind})` }
}

/**
 * The bus's message limit in every run (NATS's is 1 MiB): small, so that kilobyte values
 * make every kind of message press against it.
 */
export const messageBytes = 16 * 1024

/** Text of about `chars` UTF-16 units, one to three UTF-8 bytes each. */
const filler = (chars: number): string => "x\u6f22\u00e9-".repeat(Math.ceil(chars / 4)).slice(0, chars)

/** A value that no message can carry: its client must refuse it. */
const oversized = (client: number, i: number) => `c${client}.${i}:${filler(messageBytes)}`

/**
 * A client's next command: puts, reads, deletes, compare-and-sets, transactions on two
 * keys and a few lists. A
 * compare-and-set mostly names the version this client last saw of the key (`seen`), so
 * that some succeed, else 0 ("only if absent") or one older than the last seen.
 */
const randomOp = (
  r: () => number,
  keys: number,
  client: number,
  i: number,
  large: boolean,
  seen: ReadonlyMap<string, number>
): Input => {
  const key = `k${Math.floor(r() * keys)}`
  const value = large && r() < 0.4 ? `c${client}.${i}:${filler(200 + Math.floor(r() * 4000))}` : `c${client}.${i}`
  const x = r()
  if (x < 0.35) return { _tag: "Put", key, value }
  if (x < 0.6) return { _tag: "Get", key }
  if (x < 0.7) return { _tag: "Del", key }
  if (x >= 0.82 && x < 0.95) {
    // a transaction on the key and its partner (k0 with k1, k2 with k3): guarded on the
    // version seen or on existence; the failure branch only reads (see `KvModel`)
    const index = Number(key.slice(1))
    const partner = (index ^ 1) < keys ? `k${index ^ 1}` : key
    const guard: Kv.Compare = r() < 0.7 ? { key, version: seen.get(key) ?? 0 } : { key: partner, exists: r() < 0.5 }
    // short values: two of them and a read back must fit a message with room to spare
    const short = `c${client}.${i}`
    const second: Kv.TxnOp = r() < 0.6 ? { op: "put", key: partner, value: `${short}'` } : { op: "del", key: partner }
    return {
      _tag: "Txn",
      compare: [guard],
      success: [{ op: "put", key, value: short }, second, { op: "get", key }],
      failure: [
        { op: "get", key },
        { op: "get", key: partner }
      ]
    }
  }
  if (x < 0.95) {
    const last = seen.get(key) ?? 0
    const y = r()
    return { _tag: "Cas", key, version: y < 0.7 ? last : y < 0.85 ? 0 : Math.max(0, last - 1), value }
  }
  // with large values one entry per list, so that the answer fits a message
  const after = r() < 0.3 ? `k${Math.floor(r() * keys)}` : undefined
  return {
    _tag: "List",
    prefix: "k",
    limit: large ? 1 : 1 + Math.floor(r() * keys),
    ...(after === undefined ? {} : { after })
  }
}

/** Records the versions an answer reveals, for the client's next compare-and-sets. */
const observe = (seen: Map<string, number>, input: Input, output: Output): void => {
  switch (output._tag) {
    case "Value":
    case "Written":
    case "Swapped":
      if ("key" in input) seen.set(input.key, output.version)
      break
    case "Deleted":
      if ("key" in input) seen.set(input.key, 0)
      break
    case "Transacted":
      for (const o of output.results) seen.set(o.key, o.op === "del" ? 0 : o.version)
      break
    case "Listed":
      for (const e of output.entries) seen.set(e.key, e.version)
  }
}

export const run = (scenario: Scenario, options: RunOptions = {}): Effect.Effect<Report> =>
  Effect.gen(function* () {
    const sim = yield* SimClock.make
    return yield* body(scenario, options, sim.clock).pipe(
      SimClock.provide(sim),
      Random.withSeed(`synod-${scenario.seed}`),
      // the simulation has its own trace; role logs would only interleave with it
      Effect.provideService(References.MinimumLogLevel, "None")
    )
  })

const body = (scenario: Scenario, options: RunOptions, clock: SimClock.SimClock) =>
  Effect.scoped(
    Effect.gen(function* () {
      const trace = options.trace
      const timeline = options.timeline
      const r = prng(scenario.seed)
      const config = configFor(scenario)
      const base: Configuration.Members = {
        acceptors: config.acceptors,
        leaders: config.leaders,
        replicas: config.replicas
      }
      const spares = scenario.reconfigure ? sparesFor(scenario) : { acceptors: [], leaders: [], replicas: [] }
      const checker = new Checker(
        config.acceptors.length,
        config.replicas.length,
        () => clock.currentTimeMillisUnsafe(),
        scenario.reconfigure ? { base, window: config.window } : undefined
      )
      /** The replicas that must converge: the latest configuration's (the cluster config's without changes). */
      const finalReplicas = (): ReadonlyArray<string> => {
        const h = checker.history()
        return h === undefined ? config.replicas : Configuration.latest(h).replicas
      }
      // the divergence nemesis reaches each replica's state through this
      const corrupters = new Map<string, (f: (state: unknown) => unknown) => void>()
      const tamper: Tamper.Tamper = { register: (id, corrupt) => corrupters.set(id, corrupt) }
      const bugs = { ...PlantedBugs.none, ...scenario.bugs }
      const disk = new Storage.MemoryDisk()
      // disks are mostly fast and sometimes slow: replies then lag behind their requests
      const storage = Storage.makeMemory(disk, {
        syncDelay: () => (r() < 0.9 ? 1 + Math.floor(r() * 3) : 5 + Math.floor(r() * 40))
      })
      const busOptions: InMemoryBus.Options = {
        faults: { minDelay: 1, maxDelay: 3 },
        maxMessageBytes: messageBytes,
        replayBuffer: 2000,
        ...(trace || timeline
          ? {
              onTrace: (e: InMemoryBus.TraceEntry) => {
                trace?.(`${e.time} ${e.event} ${e.from} -> ${e.to} ${e.tag}`)
                timeline?.message(e)
              }
            }
          : {})
      }
      const context = yield* Layer.build(InMemoryBus.layer(busOptions))
      const transport = context.mapUnsafe.get(Transport.Transport.key) as Transport.Transport["Service"]
      const now = () => clock.currentTimeMillisUnsafe()
      const rawBus = context.mapUnsafe.get(InMemoryBus.InMemoryBus.key) as InMemoryBus.InMemoryBus["Service"]
      const bus = timeline === undefined ? rawBus : observeBus(rawBus, timeline, now)
      const note = (line: string) => {
        trace?.(`${now()} ${line}`)
        timeline?.note(now(), line)
      }

      const provideAll = <A, E, R>(eff: Effect.Effect<A, E, R>) =>
        eff.pipe(
          Effect.provideService(Transport.Transport, transport),
          Effect.provideService(Storage.Storage, storage),
          Effect.provideService(Probe.Probe, checker),
          Effect.provideService(Monotonic.Monotonic, () => clock.currentTimeMillisUnsafe()),
          Effect.provideService(PlantedBugs.PlantedBugs, bugs),
          Effect.provideService(Tamper.Tamper, tamper)
        ) as Effect.Effect<A, E, Exclude<R, Transport.Transport | Storage.Storage>>

      // ---- leases: each keeper's and holder's clock runs at its own rate (from its own
      // generator, so that the rest of a seed's choices stay as they were)
      const lr = prng(scenario.seed ^ 0x1ea5e)
      const skew = () => 1 + (lr() * 2 - 1) * maxSkew
      const keeperRates = new Map(config.leaders.map((id) => [id, skew()] as const))
      const leaseCheck = new LeaseCheck(checker.violations)
      let keepers = 0
      /** The lease keepers' clients, by name (the "rival" fault keeps them from the leader's side). */
      const keeperClients: Array<string> = []

      // ---- roles, each in its own scope so it can crash and restart
      const running = new Map<string, Scope.Closeable>()
      const replicas = new Map<
        string,
        {
          readonly status: Effect.Effect<Replica.Status>
          readonly applied: Replica.Applied<Kv.State>
          readonly history: Effect.Effect<Configuration.History>
          readonly reconfigure: (
            members: Configuration.Members
          ) => Effect.Effect<{ readonly slot: number; readonly effective: number; readonly error?: string }>
        }
      >()
      // a running acceptor's pvalues, for the replica of its server to resolve `Chosen` against;
      // about one replica in four runs apart from its server's acceptor, as when one id's
      // roles are split over processes, and asks its leader for every value instead (drawn
      // from a generator of its own, so that the rest of a seed's choices stay as they were)
      const acceptors = new Map<string, (slot: number) => Command.PValue | undefined>()
      const ar = prng(scenario.seed ^ 0xc405e)
      const apart = new Set([...config.replicas, ...spares.replicas].filter(() => ar() < 0.25))
      const leaders = new Map<
        string,
        {
          readonly resign: (waitMs: number) => Effect.Effect<void>
          readonly transfer: (waitMs: number, to?: string) => Effect.Effect<unknown, Leader.TransferRefused>
          readonly status: Effect.Effect<Leader.Status>
        }
      >()
      // a replica's applied states as they change, for the lease check
      const observeLeases = (applied: Replica.Applied<Kv.State>) =>
        Effect.gen(function* () {
          let before = yield* applied.current
          for (;;) {
            const after = yield* applied.next(before)
            leaseCheck.observe(before, after, now())
            before = after
          }
        })
      // the lease keeper of leader `id`, reading the replica paired with it (the one on its
      // server when colocated), on its own clock and with a client of its own
      const keeper = (id: string, leader: { readonly status: Effect.Effect<{ readonly active: boolean }> }) =>
        Effect.gen(function* () {
          const replicaId = config.replicas[config.leaders.indexOf(id)] ?? config.replicas[0]!
          const rate = keeperRates.get(id) ?? 1
          const name = `keeper-${id}-${++keepers}`
          keeperClients.push(name)
          const client = yield* Client.make(Kv.machine, config, { id: name })
          let seq = 0
          yield* LeaseKeeper.run({
            applied: {
              current: Effect.suspend(() => replicas.get(replicaId)?.applied.current ?? Effect.succeed(Kv.initial))
            },
            leading: Effect.map(leader.status, (s) => s.active),
            submit: (command) =>
              Effect.suspend(() => {
                checker.submit(`${name}#${++seq}`)
                return Effect.tap(client.submit(command), (r) =>
                  Effect.sync(() => note(`keeper ${id}: ${JSON.stringify(command)} -> ${JSON.stringify(r)}`))
                )
              }),
            now: () => clock.currentTimeMillisUnsafe() * rate,
            pollMs: 2 * config.timeouts.heartbeatMs,
            plantedEarlyExpiry: bugs.leaseEarlyExpiry,
            onPropose: (leases) => note(`keeper ${id} proposes LeaseExpire ${JSON.stringify(leases)}`)
          })
        })
      // every node's monotonic clock runs at its own rate, within the drift bound the
      // config states (`reads.clockDrift`): read leases must hold with the clocks apart
      // (from a generator of its own, so that the rest of a seed's choices stay as they were)
      const cr = prng(scenario.seed ^ 0xc10c)
      const clockRates = new Map<string, number>()
      const clockOf = (id: string) => {
        // drawn once per node: a restarted role keeps its process's rate
        const rate = clockRates.get(id) ?? 1 + (cr() * 2 - 1) * maxSkew
        clockRates.set(id, rate)
        return () => clock.currentTimeMillisUnsafe() * rate
      }
      const roleKey = (role: Role, id: string) => `${role}/${id}`
      const start = (role: Role, id: string) =>
        Effect.gen(function* () {
          const scope = yield* Scope.make()
          running.set(roleKey(role, id), scope)
          timeline?.close(now(), (f) => f.kind === "crash" && f.targets[0] === roleKey(role, id))
          const eff: Effect.Effect<unknown, unknown, Transport.Transport | Storage.Storage | Scope.Scope> =
            role === "acceptor"
              ? Effect.tap(Acceptor.run(id, config), (handle) =>
                  Effect.sync(() => acceptors.set(id, handle.acceptedAt))
                )
              : role === "leader"
                ? Effect.tap(Leader.run(id, config), (handle) =>
                    Effect.andThen(
                      Effect.sync(() => leaders.set(id, handle)),
                      scenario.leaseHolders > 0 ? Effect.forkScoped(keeper(id, handle)) : Effect.void
                    )
                  )
                : Effect.tap(
                    Replica.run(id, config, Kv.machine, {
                      acceptedAt: apart.has(id) ? undefined : (slot) => acceptors.get(id)?.(slot)
                    }),
                    (handle) =>
                      Effect.andThen(
                        Effect.sync(() => replicas.set(id, handle)),
                        scenario.leaseHolders > 0 ? Effect.forkScoped(observeLeases(handle.applied)) : Effect.void
                      )
                  )
          yield* provideAll(eff.pipe(Effect.provideService(Monotonic.Monotonic, clockOf(id)))).pipe(
            Scope.provide(scope),
            Effect.orDie
          )
        })
      const crash = (role: Role, id: string) =>
        Effect.gen(function* () {
          const scope = running.get(roleKey(role, id))
          if (scope === undefined) return
          running.delete(roleKey(role, id))
          if (role === "acceptor") acceptors.delete(id)
          note(`crash ${role}/${id}`)
          timeline?.open(now(), "crash", `crashed ${role}/${id}`, [roleKey(role, id)])
          yield* Scope.close(scope, Exit.void)
        })
      const all: Array<readonly [Role, string]> = [
        ...config.acceptors.map((id) => ["acceptor", id] as const),
        ...config.replicas.map((id) => ["replica", id] as const),
        ...config.leaders.map((id) => ["leader", id] as const)
      ]
      // spare servers: started with the others, crashed and restarted like them (at most f
      // acceptors down at once over all of them, so in any configuration too)
      all.push(
        ...spares.acceptors.map((id) => ["acceptor", id] as const),
        ...spares.replicas.map((id) => ["replica", id] as const),
        ...spares.leaders.map((id) => ["leader", id] as const)
      )
      const nodes = [...new Set(all.map(([, id]) => id))]
      const down = (role: Role) => all.filter(([ro, id]) => ro === role && !running.has(roleKey(ro, id))).length
      const restartAll = Effect.suspend(() =>
        Effect.forEach(
          all.filter(([role, id]) => !running.has(roleKey(role, id))),
          ([role, id]) =>
            Effect.andThen(
              Effect.sync(() => note(`restart ${role}/${id}`)),
              start(role, id)
            ),
          { discard: true }
        )
      )

      // ---- the nemesis: random faults until faultMs, then heal
      const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(r() * xs.length)]!
      /**
       * Faults the nemesis left acting in the background (a partition that heals later, a
       * deposed leader reconnected after a while): the "rival" fault waits for none, else
       * their heal or partition would end its own early.
       */
      let background = 0
      /** Until when a "rival" fault holds: the reader reads on until then. */
      let rivalUntil = 0
      const inBackground = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.suspend(() => {
          background++
          return Effect.forkScoped(
            Effect.ensuring(
              effect,
              Effect.sync(() => background--)
            )
          )
        })
      /**
       * The "rival" fault: a rival competing while the leader still leads (the acceptors'
       * side of a read lease, docs/protocol.md#read-leases). The leader's role, a replica
       * and the reader on one side, every other leader and replica and every writing client
       * on the other, the acceptors reachable from both. The other leaders stop hearing the
       * leader and compete; no command reaches the leader any more, so nothing it accepts
       * holds them off after a lease, while the reader's questions keep its read lease
       * going. Only the acceptors' holds — renewed by its confirmations (B23), kept from a
       * restart (B24) — keep a rival from being adopted and committing writes that the
       * leader's lease reads would miss. Alone, and in place (the nemesis waits): a heal or
       * a partition of another fault would end it early.
       */
      const rival = Effect.gen(function* () {
        // over by the heal, as every other fault is, waits included: commands invoked after
        // it must not wait for it, and the checks count from `faultMs`
        const settle = 2 * config.timeouts.leaderTimeoutMs
        // its partition's shortest length: the rival needs a failure detector's timeout to compete
        const shortest = 300
        const enough = (more: number) => scenario.faultMs - now() >= settle + shortest + more
        const skip = (why: string) => Effect.sync(() => note(`rival: skipped (${why})`))
        if (readerDone) return yield* skip("the reader is done: no lease to hold")
        for (let i = 0; i < 100 && background > 0 && enough(10); i++) yield* Effect.sleep(10)
        if (background > 0) return yield* skip("another fault is still acting")
        if (!enough(0)) return yield* skip("too little of the fault phase left")
        yield* bus.heal
        yield* bus.setFaults(mild)
        yield* restartAll
        // a leader settled in (every role back, a few heartbeats), with nothing in flight
        yield* Effect.sleep(settle)
        for (let i = 0; i < 150 && checker.undecided.size > 0 && scenario.faultMs - now() > shortest; i++) {
          yield* Effect.sleep(2)
        }
        // the leader that is active, not the one of the highest ballot a scout started
        // (`currentLeader`): a rival refused is not the leader
        let leader: string | undefined
        let ballot: Ballot.Ballot | undefined
        for (const [id, handle] of leaders) {
          if (!running.has(roleKey("leader", id))) continue
          const status = yield* handle.status
          if (status.active && (ballot === undefined || Ballot.greaterThan(status.ballot, ballot))) {
            leader = id
            ballot = status.ballot
          }
        }
        if (leader === undefined || ballot === undefined) return yield* skip("no active leader")
        if (checker.undecided.size > 0) return yield* skip("commands still in flight")
        const left = scenario.faultMs - now()
        if (left < shortest) return yield* skip("too little of the fault phase left")
        const ms = Math.min(shortest + Math.floor(r() * 900), left)
        // every leader and replica but the two on the leader's side, spares included (a
        // reconfiguration may have made them members), and every client that writes: the
        // lists are made again after a restart, which starts lease keepers with new names
        const replica = scenario.layout === "colocated" ? leader : pick(config.replicas)
        const side = [Address.leader(leader), Address.replica(replica), Address.client(readerId)]
        const groups = () => [
          side,
          [
            ...[...config.leaders, ...spares.leaders].filter((l) => l !== leader).map(Address.leader),
            ...[...config.replicas, ...spares.replicas].filter((x) => x !== replica).map(Address.replica),
            ...[
              ...Array.from({ length: scenario.clients }, (_, c) => `k${c}`),
              ...Array.from({ length: scenario.leaseHolders }, (_, h) => `h${h}`),
              ...keeperClients,
              "kd"
            ].map(Address.client)
          ]
        ]
        note(`rival: partition [${side}] | [other leaders and replicas, writers] for ${ms} ms`)
        yield* bus.partition(groups())
        rivalUntil = now() + ms
        // in half of them (with crashes), acceptors restart meanwhile: each may have
        // granted the lease, which it keeps in memory only, so each must hold the rival
        // off from its start (B24). Split: every running acceptor, one after the other (a
        // rolling restart); colocated: one server other than the leader's, whose leader
        // then listens before it competes, so that another server's leader is the rival
        const restartAfter = scenario.crashes && r() < 0.5 ? Math.floor((r() * ms) / 2) : undefined
        const others = [...config.acceptors, ...spares.acceptors].filter(
          (a) => a !== leader && running.has(roleKey("acceptor", a))
        )
        const restarting = scenario.layout !== "colocated" ? others : others.length > 0 ? [pick(others)] : []
        if (restartAfter !== undefined && restarting.length > 0) {
          yield* Effect.sleep(restartAfter)
          let spent = restartAfter
          const roles =
            scenario.layout === "colocated" ? (["leader", "replica", "acceptor"] as const) : (["acceptor"] as const)
          for (const id of restarting) {
            for (const role of roles) yield* crash(role, id)
            for (const role of roles) yield* start(role, id)
            note(`rival: restarted ${roles.map((role) => `${role}/${id}`).join(", ")}`)
            const gap = 1 + Math.floor(r() * 10)
            yield* Effect.sleep(gap)
            spent += gap
          }
          yield* bus.partition(groups())
          yield* Effect.sleep(Math.max(0, ms - spent))
        } else yield* Effect.sleep(ms)
        const after = running.has(roleKey("leader", leader)) ? yield* leaders.get(leader)!.status : undefined
        const at = (b: Ballot.Ballot) => `${b.round}.${b.leader}`
        const outcome =
          after === undefined
            ? "is down"
            : after.active && Ballot.equals(after.ballot, ballot)
              ? "held on"
              : `is ${after.active ? "active" : "passive"} at ${at(after.ballot)}, was at ${at(ballot)}`
        note(`rival: partition over; leader/${leader} ${outcome}`)
        yield* bus.partition([])
      })
      const nemesis = Effect.gen(function* () {
        const kinds = [
          ...(scenario.network ? ["network", "network", "calm", "replay"] : []),
          ...(scenario.partitions
            ? [
                "partition",
                "cut",
                "isolate",
                "heal",
                "depose",
                "depose",
                "flap",
                "strand",
                "gc-depose",
                "echo",
                "tail",
                "stale",
                "stale",
                ...(scenario.rivals ? ["rival", "rival"] : [])
              ]
            : []),
          ...(scenario.crashes ? ["crash", "crash", "restart", "wipe", "resign"] : [])
        ]
        let wipes = 0
        let resigns = 0
        if (kinds.length === 0) return
        while (clock.currentTimeMillisUnsafe() < scenario.faultMs) {
          yield* Effect.sleep(20 + Math.floor(r() * 180))
          switch (pick(kinds)) {
            case "network": {
              // now and then very late messages and late replays of old ones, as around a
              // transport reconnect: the stale replies that B3/B4-style bugs trip over
              const faults = {
                lossRate: r() * 0.3,
                duplicateRate: r() * 0.4,
                minDelay: 1,
                maxDelay: 1 + Math.floor(r() < 0.3 ? r() * 400 : r() * 30),
                maxReplayDelay: r() < 0.7 ? Math.floor(r() * 2000) : 0
              }
              note(
                `faults loss=${faults.lossRate.toFixed(2)} dup=${faults.duplicateRate.toFixed(2)} delay<=${faults.maxDelay}`
              )
              yield* bus.setFaults(faults)
              break
            }
            case "replay": {
              const n = yield* bus.replay(10 + Math.floor(r() * 200))
              note(`replay ${n} old messages`)
              break
            }
            case "calm":
              note("faults mild")
              yield* bus.setFaults(mild)
              break
            case "partition": {
              const side = nodes.filter(() => r() < 0.5)
              const other = nodes.filter((n) => !side.includes(n))
              note(`partition [${side}] | [${other}]`)
              yield* bus.partition([side, other])
              break
            }
            case "cut": {
              const from = pick(nodes)
              const to = pick(nodes)
              note(`cut ${from} -> ${to}`)
              yield* bus.cut(from, to)
              break
            }
            case "isolate": {
              const n = pick(nodes)
              note(`isolate ${n}`)
              yield* bus.isolate(n)
              break
            }
            case "depose": {
              // leader churn: cut the presumed active leader off for a moment
              const leader = checker.currentLeader()
              if (leader === undefined) break
              const ms = 100 + Math.floor(r() * 400)
              note(`depose ${leader} for ${ms} ms`)
              yield* bus.isolate(leader)
              yield* inBackground(Effect.andThen(Effect.sleep(ms), bus.reconnect(leader)))
              break
            }
            case "flap": {
              // flapping leadership: depose the leader, then its successor, so the first
              // one may lead again while its old children and messages are still about
              const first = checker.currentLeader()
              if (first === undefined) break
              const ms = 150 + Math.floor(r() * 250)
              note(`flap: depose ${first} for ${ms} ms`)
              yield* bus.isolate(first)
              yield* inBackground(
                Effect.gen(function* () {
                  yield* Effect.sleep(ms)
                  yield* bus.reconnect(first)
                  const second = checker.currentLeader()
                  if (second === undefined || second === first) return
                  note(`flap: depose ${second} for ${ms} ms`)
                  yield* bus.isolate(second)
                  yield* Effect.sleep(ms)
                  yield* bus.reconnect(second)
                })
              )
              break
            }
            case "strand": {
              // a replica cut off long enough for several garbage collections to pass it by:
              // when it is back, the decisions it missed are gone and it must fetch a snapshot
              const id = pick(config.replicas)
              const ms = 400 + Math.floor(r() * 1200)
              note(`strand replica ${id} for ${ms} ms`)
              yield* bus.isolate(id)
              yield* inBackground(Effect.andThen(Effect.sleep(ms), bus.reconnect(id)))
              break
            }
            case "echo": {
              // the next time a leader starts a ballot after one of its own, its old
              // messages come back as it takes over (a reconnect flushing a send buffer):
              // rejections of its old P2as must not count for its new commanders (B3)
              const seen = checker.reelections.length
              yield* inBackground(
                Effect.gen(function* () {
                  for (let i = 0; i < 500 && checker.reelections.length === seen; i++) yield* Effect.sleep(2)
                  const leader = checker.reelections[seen]
                  if (leader === undefined) return
                  yield* Effect.sleep(Math.floor(r() * 8))
                  note(`echo: replay old messages of ${leader}`)
                  yield* bus.replay(300, leader)
                })
              )
              break
            }
            case "gc-depose": {
              // a leader change right after a garbage collection: the new leader must learn
              // the watermark from its quorum and skip the forgotten slots (B11)
              const seen = checker.gcs
              const ms = 100 + Math.floor(r() * 300)
              yield* inBackground(
                Effect.gen(function* () {
                  for (let i = 0; i < 100 && checker.gcs === seen; i++) yield* Effect.sleep(5)
                  const leader = checker.currentLeader()
                  if (leader === undefined || checker.gcs === seen) return
                  note(`depose ${leader} for ${ms} ms after a garbage collection`)
                  yield* bus.isolate(leader)
                  yield* Effect.sleep(ms)
                  yield* bus.reconnect(leader)
                })
              )
              break
            }
            case "wipe": {
              // a replica loses its disk: it restarts empty and must copy a peer's snapshot;
              // at most f such losses, so every forgotten slot survives on some replica
              const id = pick(config.replicas)
              if (wipes >= scenario.f || !running.has(roleKey("replica", id))) break
              wipes++
              yield* crash("replica", id)
              note(`wipe the disk of replica ${id}`)
              disk.wipeReplica(id)
              note(`restart replica/${id}`)
              yield* start("replica", id)
              break
            }
            case "tail": {
              // acceptors stop hearing replicas' progress, so they garbage-collect nothing and
              // their accepted tails grow; then the leader changes, and the new one's P1b
              // must carry the whole tail: in pages, or not at all past the message limit
              const ms = 300 + Math.floor(r() * 1200)
              note(`tail: acceptors hear no progress for ${ms} ms, then the leader is deposed`)
              for (const rep of config.replicas)
                for (const acc of config.acceptors) yield* bus.cut(`replica/${rep}`, `acceptor/${acc}`)
              yield* inBackground(
                Effect.gen(function* () {
                  yield* Effect.sleep(ms)
                  const leader = checker.currentLeader()
                  if (leader !== undefined) {
                    note(`tail: depose ${leader}`)
                    yield* bus.isolate(leader)
                    yield* Effect.sleep(100 + Math.floor(r() * 300))
                  }
                  note("tail: heal links")
                  yield* bus.heal
                })
              )
              break
            }
            case "stale": {
              // the reader stuck with a deposed leader: once nothing is in flight, the
              // leader's server (split: with a replica) and the reader on one side, every
              // other server and the writers on the other, where a new leader takes over and
              // writes go on. The old leader has nothing to decide and no one to hear from,
              // so it believes it leads: the reads its side serves must still be linearizable
              const ms = 500 + Math.floor(r() * 700)
              const replica = pick(config.replicas)
              yield* inBackground(
                Effect.gen(function* () {
                  for (let i = 0; i < 150 && checker.undecided.size > 0; i++) yield* Effect.sleep(2)
                  const leader = checker.currentLeader()
                  if (leader === undefined || checker.undecided.size > 0) return
                  const side = scenario.layout === "colocated" ? [leader] : [leader, replica]
                  const rest = nodes.filter((n) => !side.includes(n))
                  const writers = Array.from({ length: scenario.clients }, (_, c) => `client/k${c}`)
                  note(`stale: partition [${side},reader] | [${rest},writers] for ${ms} ms`)
                  yield* bus.partition([
                    [...side, `client/${readerId}`],
                    [...rest, ...writers]
                  ])
                  yield* Effect.sleep(ms)
                  note("stale: partition over")
                  yield* bus.partition([])
                })
              )
              break
            }
            case "rival":
              yield* rival
              break
            case "heal":
              note("heal links")
              yield* bus.heal
              break
            case "crash": {
              if (scenario.layout === "colocated") {
                const id = pick(nodes)
                if (down("acceptor") < scenario.f && running.has(roleKey("acceptor", id))) {
                  for (const role of ["leader", "replica", "acceptor"] as const) yield* crash(role, id)
                }
              } else {
                const [role, id] = pick(all)
                if (down(role) < scenario.f) yield* crash(role, id)
              }
              break
            }
            case "restart":
              yield* restartAll
              break
            case "resign": {
              // a clean stop of a leader (synod serve's SIGTERM): it hands the leadership
              // over, waits a little for its successor, then its role stops like a crash
              const id = pick(config.leaders)
              const handle = leaders.get(id)
              if (handle === undefined || !running.has(roleKey("leader", id))) break
              // every other time, first a transfer of the active leader to a named leader
              // (`synod leader transfer TO`): the one before it in order, not its successor
              // when there are three or more (no draw from the seed's randomness, so the
              // runs of seeds that never get here do not change)
              if (resigns++ % 2 === 1) {
                for (const [from, h] of leaders) {
                  if (!running.has(roleKey("leader", from)) || !(yield* h.status).active) continue
                  const i = config.leaders.indexOf(from)
                  const to = config.leaders[(i - 1 + config.leaders.length) % config.leaders.length]!
                  note(`transfer leader/${from} to ${to}`)
                  // refused when `to` left the configuration: nothing happens then
                  yield* Effect.exit(h.transfer(2 * config.timeouts.leaderTimeoutMs, to))
                  break
                }
              }
              note(`resign leader/${id}`)
              yield* handle.resign(2 * config.timeouts.leaderTimeoutMs)
              yield* crash("leader", id)
              break
            }
          }
        }
        note("heal everything")
        yield* bus.heal
        yield* bus.setFaults(mild)
        yield* restartAll
      })

      // ---- the workload: clients doing KV operations, recording the history
      const history: Array<Operation<Input, Output>> = []
      /** Each operation's command key (client#seq), by index in `history`. */
      const keys = new Map<Operation<Input, Output>, string>()
      /** The history as checked: answers the corrupted replica gave from a changed state count as unknown. */
      const checked = (): Array<Operation<Input, Output>> =>
        history.map((op) =>
          op.ret !== undefined && checker.exempt.has(keys.get(op) ?? "")
            ? { ...op, ret: undefined, output: undefined }
            : op
        )
      let clientsDone = 0
      let lateTimeouts = 0
      const healAt = scenario.faultMs
      const workload = (c: number) =>
        Effect.gen(function* () {
          const client = yield* provideAll(Client.make(Kv.machine, config, { id: `k${c}` }))
          const seen = new Map<string, number>()
          // the client's command seqs: reads off the log take none; they have their own ids
          let seq = 0
          let reads = 0
          for (let i = 0; i < scenario.opsPerClient; i++) {
            yield* Effect.sleep(Math.floor(r() * 40))
            if (scenario.largeValues && r() < 0.03) {
              // too large for any message: refused before anything is sent, never applied
              seq++
              const exit = yield* Effect.exit(client.submit({ _tag: "Put", key: "k0", value: oversized(c, i) }))
              const refused =
                Exit.isFailure(exit) &&
                exit.cause.reasons.some(
                  (reason) => reason._tag === "Fail" && (reason.error as { _tag?: string })._tag === "CommandTooLarge"
                )
              note(`client k${c} oversized Put -> ${refused ? "refused" : "NOT refused"}`)
              if (!refused) checker.violations.push(`M: client k${c} did not refuse a command larger than a message`)
              continue
            }
            const input = randomOp(r, scenario.keys, c, i, scenario.largeValues, seen)
            // gets and lists: three in four are read-index reads, off the log; the rest log reads
            const offLog = (input._tag === "Get" || input._tag === "List") && i % 4 !== 3
            if (!offLog) checker.submit(`k${c}#${++seq}`)
            else reads++
            const how = offLog ? "read " : ""
            const call = clock.currentTimeMillisUnsafe()
            const exit = yield* Effect.exit<Output, Client.SubmitError | Client.ReadError, never>(
              offLog ? client.read(input) : client.submit(input)
            )
            const ret = clock.currentTimeMillisUnsafe()
            if (Exit.isSuccess(exit)) {
              const op = { client: `k${c}`, input, call, ret, output: exit.value }
              // what the checker knows the answer by (`Checker.exempt`)
              keys.set(op, offLog ? `k${c}@${reads}` : `k${c}#${seq}`)
              history.push(op)
              observe(seen, input, exit.value)
              note(`client k${c} ${how}${input._tag} ${JSON.stringify(input)} -> ${JSON.stringify(exit.value)}`)
            } else {
              history.push({ client: `k${c}`, input, call, ret: undefined, output: undefined })
              note(`client k${c} ${how}${input._tag} ${JSON.stringify(input)} -> outcome unknown`)
              if (call >= healAt + settleMs) lateTimeouts++
            }
          }
          clientsDone++
        })

      // ---- the divergence nemesis: one replica's state changed without a command, once;
      // then reads keep coming until that replica holds a state its peers agree with, so
      // that digest slots follow the change however early the clients finished
      // ---- the reconfiguration nemesis: one change at a time, through a running replica of
      // the latest configuration, on a random stream of its own, until the faults heal
      const reconfigurer = Effect.gen(function* () {
        const rr = prng(scenario.seed ^ 0x4ec0f)
        while (now() < scenario.faultMs) {
          yield* Effect.sleep(150 + Math.floor(rr() * 450))
          const candidates = finalReplicas().filter((id) => running.has(roleKey("replica", id)) && replicas.has(id))
          if (candidates.length === 0) continue
          const via = candidates[Math.floor(rr() * candidates.length)]!
          const handle = replicas.get(via)!
          // the latest configuration decided (the replica may not have performed it yet)
          const current = Configuration.latest(checker.history() ?? (yield* handle.history))
          const { members, what } = nextMembers(rr, current, base, spares, scenario.layout === "colocated")
          note(`reconfigure through replica ${via}: ${what}`)
          const done = yield* Effect.timeoutOption(handle.reconfigure(members), 2000)
          note(
            done._tag === "None"
              ? `reconfigure ${what}: no answer in 2000 ms`
              : done.value.error !== undefined
                ? `reconfigure ${what}: refused: ${done.value.error}`
                : `reconfigure ${what}: decided in slot ${done.value.slot}, effective from slot ${done.value.effective}`
          )
        }
      })

      let probes = 0
      const divergence = Effect.gen(function* () {
        // its own generator, so that the other faults draw what they drew before it existed
        const rc = prng(scenario.seed ^ 0xd1fe)
        yield* Effect.sleep(100 + Math.floor(rc() * Math.max(1, scenario.faultMs - 100)))
        const id = config.replicas[Math.floor(rc() * config.replicas.length)]!
        const handle = replicas.get(id)
        const corrupt = corrupters.get(id)
        if (handle === undefined || corrupt === undefined || !running.has(roleKey("replica", id))) return
        const { slotOut } = yield* handle.status
        corrupt((state) => Kv.apply(state as Kv.State, { _tag: "Put", key: "k0", value: "corrupted" })[0])
        checker.corrupted(id, slotOut)
        note(`corrupt replica ${id}: k0 changed without a command at slot ${slotOut}`)
        timeline?.open(now(), "corrupt", `corrupted replica/${id}`, [roleKey("replica", id)])
        const client = yield* provideAll(Client.make(Kv.machine, config, { id: "kd" }))
        while (!checker.settled() && now() < healAt + boundMs) {
          yield* Effect.sleep(200 + Math.floor(rc() * 100))
          const input: Input = { _tag: "Get", key: "k0" }
          checker.submit(`kd#${++probes}`)
          const call = now()
          const exit = yield* Effect.exit(client.submit(input))
          if (Exit.isSuccess(exit)) {
            const op = { client: "kd", input, call, ret: now(), output: exit.value }
            keys.set(op, `kd#${probes}`)
            history.push(op)
            note(`client kd Get k0 -> ${JSON.stringify(exit.value)}`)
          } else {
            history.push({ client: "kd", input, call, ret: undefined, output: undefined })
            note("client kd Get k0 -> outcome unknown")
          }
        }
        timeline?.close(now(), (f) => f.kind === "corrupt")
      })
      // the reader: read-index reads only (gets of every key, a few lists), on a random
      // stream of its own; the "stale" fault strands it with a deposed leader
      let readerDone = false
      const reader = Effect.gen(function* () {
        const rr = prng(scenario.seed ^ 0x7ead)
        const client = yield* provideAll(Client.make(Kv.machine, config, { id: readerId }))
        // and on while a rival competes: its questions are what keep the leader's lease going
        for (let i = 0; i < 2 * scenario.opsPerClient || now() < rivalUntil; i++) {
          yield* Effect.sleep(Math.floor(rr() * 40))
          const input: Input =
            rr() < 0.9
              ? { _tag: "Get", key: `k${Math.floor(rr() * scenario.keys)}` }
              : { _tag: "List", prefix: "k", limit: scenario.largeValues ? 1 : scenario.keys }
          const call = clock.currentTimeMillisUnsafe()
          const exit = yield* Effect.exit(client.read(input))
          const ret = clock.currentTimeMillisUnsafe()
          if (Exit.isSuccess(exit)) {
            const op = { client: readerId, input, call, ret, output: exit.value }
            // the client numbers its reads from 1 (the key `Checker.exempt` uses for reads)
            keys.set(op, `${readerId}@${i + 1}`)
            history.push(op)
            note(`client ${readerId} read ${input._tag} ${JSON.stringify(input)} -> ${JSON.stringify(exit.value)}`)
          } else {
            history.push({ client: readerId, input, call, ret: undefined, output: undefined })
            note(`client ${readerId} read ${input._tag} ${JSON.stringify(input)} -> no answer`)
            if (call >= healAt + settleMs) lateTimeouts++
          }
        }
        readerDone = true
      })
      // ---- lease holders: grant a lease, attach a key, keep it alive (with pauses), each
      // on its own clock; when the workload is done, revoke it
      let holdersDone = 0
      const margin = 1 - LeaseKeeper.holderMargin
      const holder = (h: number) =>
        Effect.gen(function* () {
          const name = `h${h}`
          const rate = skew()
          const client = yield* provideAll(Client.make(Kv.machine, config, { id: name }))
          let seq = 0
          const submit = (command: Kv.Command) =>
            Effect.suspend(() => {
              checker.submit(`${name}#${++seq}`)
              return Effect.map(Effect.exit(client.submit(command)), (exit) =>
                Exit.isSuccess(exit) ? exit.value : undefined
              )
            })
          while (clientsDone < scenario.clients) {
            const ttlMs = 300 + Math.floor(lr() * 500)
            // what the holder counts on, in simulated time: ttl·(1−ε) on its clock
            const valid = (sentAt: number) => sentAt + (ttlMs * margin) / rate
            const grantSent = now()
            const granted = yield* submit({ _tag: "LeaseGrant", ttlMs })
            if (granted?._tag !== "LeaseGranted") {
              yield* Effect.sleep(50)
              continue
            }
            const id = granted.id
            note(`holder ${name} got lease ${id} (ttl ${ttlMs} ms, clock rate ${rate.toFixed(3)})`)
            leaseCheck.granted(id, name, grantSent, valid(grantSent))
            // until when this holder counts on the lease (simulated time)
            let counted = valid(grantSent)
            yield* submit({ _tag: "Put", key: `lease/${name}`, value: `${id}`, lease: id })
            for (;;) {
              const x = lr()
              if (x < 0.1) {
                const ms = Math.floor(lr() * 2 * ttlMs)
                note(`holder ${name} pauses ${ms} ms`)
                yield* Effect.sleep(ms)
              } else if (x < 0.25) {
                // at the last moment: the keep-alive races the keeper's expiry at the margin
                yield* Effect.sleep(Math.max(1, Math.floor(counted - now() - lr() * 0.1 * ttlMs)))
              } else yield* Effect.sleep(Math.floor((ttlMs * (0.25 + 0.5 * lr())) / rate))
              if (clientsDone >= scenario.clients) {
                leaseCheck.revoking(id)
                yield* submit({ _tag: "LeaseRevoke", id })
                break
              }
              const sent = now()
              const kept = yield* submit({ _tag: "LeaseKeepAlive", id })
              note(`holder ${name} keep-alive of lease ${id} sent at ${sent} -> ${JSON.stringify(kept ?? "unknown")}`)
              if (kept?._tag === "LeaseKept") {
                leaseCheck.kept(id, sent, valid(sent))
                counted = Math.max(counted, valid(sent))
              } else if (kept?._tag === "LeaseRefused") {
                note(`holder ${name} lost lease ${id}`)
                break
              }
            }
          }
          holdersDone++
        })

      const boot = Effect.gen(function* () {
        yield* Effect.sleep(1)
        for (const [role, id] of all) yield* start(role, id)
        if (scenario.reconfigure) yield* Effect.forkScoped(reconfigurer)
        yield* Effect.forkScoped(nemesis)
        if (scenario.corruption && config.replicas.length >= 3) yield* Effect.forkScoped(divergence)
        for (let c = 0; c < scenario.clients; c++) yield* Effect.forkScoped(workload(c))
        yield* Effect.forkScoped(reader)
        for (let h = 0; h < scenario.leaseHolders; h++) yield* Effect.forkScoped(holder(h))
      })
      const booted = yield* Effect.forkScoped(boot)
      // let the boot fiber reach its first sleep: from then on every step is tracked
      for (let i = 0; i < 100 && clock.sleepers() === 0; i++) yield* Effect.yieldNow

      // ---- the step loop
      const converged = (): boolean => {
        let top = 0
        for (const s of checker.decisions.keys()) if (s > top) top = s
        for (const id of finalReplicas()) {
          if ((checker.progress().get(id) ?? 1) !== top + 1) return false
        }
        return true
      }
      let steps = 0
      let stall: string | undefined
      for (;;) {
        const t = yield* clock.step
        if (t === undefined) {
          stall = "nothing left to run (deadlock)"
          break
        }
        steps++
        checker.deadlines(healAt)
        if (checker.violations.length > 0) {
          if (timeline !== undefined) timeline.violation = { time: t, text: checker.violations[0]! }
          break
        }
        if (lateTimeouts > 0) {
          stall = `a command invoked more than ${settleMs} ms after the faults healed timed out`
          break
        }
        if (
          clientsDone === scenario.clients &&
          readerDone &&
          holdersDone === scenario.leaseHolders &&
          t > healAt &&
          converged() &&
          checker.settled()
        )
          break
        if (t > healAt + boundMs) {
          stall =
            clientsDone < scenario.clients || !readerDone
              ? `clients still waiting ${boundMs} ms after the faults healed`
              : !checker.settled()
                ? `replica ${checker.corruption?.replica} still holds the state the nemesis changed ${boundMs} ms after the faults healed`
                : holdersDone < scenario.leaseHolders
                  ? `lease holders still waiting ${boundMs} ms after the faults healed`
                  : `replicas did not converge: next slots ${JSON.stringify(Object.fromEntries(checker.progress()))}, decided up to ${Math.max(0, ...checker.decisions.keys())}`
          break
        }
      }
      yield* Fiber.interrupt(booted)
      if (stall !== undefined && trace !== undefined) {
        // where each replica stands, to tell a stuck leader from a stuck replica
        for (const [id, handle] of replicas) {
          const { slotOut, pending, watermark, durable, leader } = yield* handle.status
          note(
            `stalled: replica ${id} slotOut ${slotOut} pending ${pending} watermark ${watermark} durable ${durable} following ${leader ?? "no leader"}`
          )
        }
      }
      if (checker.violations.length === 0 && stall === undefined) {
        // same slots performed must mean the same state, whether performed or installed
        const states = new Map<string, string>()
        // the latest configuration's replicas: a removed one stops getting decisions
        const final = finalReplicas()
        for (const [id, handle] of replicas) {
          if (final.includes(id)) states.set(id, JSON.stringify((yield* handle.status).state))
        }
        if (new Set(states.values()).size > 1) {
          checker.violations.push(
            `R: replicas converged to different states: ${JSON.stringify(Object.fromEntries(states))}`
          )
        }
        // the history watches are served from is the log's writes, as the clients saw them placed
        const first = replicas.get(final[0]!)
        if (checker.violations.length === 0 && first !== undefined) {
          const problem = HistoryCheck.check((yield* first.status).state, checked())
          if (problem !== undefined) checker.violations.push(problem)
        }
      }
      const simMs = clock.currentTimeMillisUnsafe()
      if (timeline !== undefined) {
        timeline.end = simMs
        if (stall !== undefined) timeline.stall = { time: simMs, text: stall }
        if (timeline.violation === undefined && checker.violations.length > 0) {
          timeline.violation = { time: simMs, text: checker.violations[0]! }
        }
      }
      for (const scope of running.values()) yield* Scope.close(scope, Exit.void)

      const lin =
        checker.violations.length === 0 && stall === undefined
          ? check(KvModel, checked())
          : { ok: true, timedOut: false, failingPartition: undefined }
      return {
        scenario,
        steps,
        simMs,
        violations: checker.violations,
        stall,
        linearizable: lin.ok,
        linearizabilityTimedOut: lin.timedOut,
        ...(lin.failingPartition === undefined ? {} : { nonlinearizable: lin.failingPartition }),
        operations: history.length,
        unknown: history.filter((h) => h.ret === undefined).length,
        gcs: checker.gcs,
        transfers: checker.installs,
        oversized: (yield* bus.stats).oversized,
        ...(checker.corruption === undefined ? {} : { corrupted: checker.corruption.replica }),
        detections: checker.detections,
        exempt: checker.exempt.size,
        leaseExpiries: leaseCheck.expiries
      } satisfies Report
    })
  )

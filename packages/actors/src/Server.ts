/**
 * A server: the roles one process hosts. The usual deployment colocates a replica, a
 * leader and an acceptor under one id ("servers play all roles"); `roles` picks any
 * subset, so each role can also run alone. Nothing else needs to know where a role runs:
 * roles find each other by address through the `Transport`.
 *
 * @since 0.1.0
 */
import type { Ballot, ClusterConfig, Configuration, StateMachine, Storage, Transport } from "@synod/core"
import { Clock, Effect, Layer, type Scope } from "effect"
import * as Acceptor from "./Acceptor.ts"
import * as Leader from "./Leader.ts"
import * as Learner from "./Learner.ts"
import * as Replica from "./Replica.ts"

export type Role = "acceptor" | "leader" | "replica" | "learner"

export interface Options<S, C, R> {
  readonly id: string
  readonly config: ClusterConfig.ClusterConfig
  readonly machine: StateMachine.StateMachine<S, C, R>
  /** Which roles to host; default: every role whose list in `config` contains `id`. */
  readonly roles?: ReadonlyArray<Role>
  /** The replica saves a snapshot when it stops cleanly, so a restart replays nothing. */
  readonly snapshotOnClose?: boolean
  /**
   * When it stops cleanly, an active leader hands the leadership over first (to the next
   * leader in the configured order, which competes at once) and waits, a few leader
   * timeouts at most, until the successor leads: a rolling restart costs no
   * failure-detection timeout.
   */
  readonly resignOnClose?: boolean
}

export const rolesOf = (id: string, config: ClusterConfig.ClusterConfig): Array<Role> => [
  ...(config.acceptors.includes(id) ? (["acceptor"] as const) : []),
  ...(config.leaders.includes(id) ? (["leader"] as const) : []),
  ...(config.replicas.includes(id) ? (["replica"] as const) : []),
  ...(config.learners.includes(id) ? (["learner"] as const) : [])
]

export interface Status {
  readonly id: string
  readonly acceptor?: Acceptor.Status
  readonly leader?: Leader.Status
  readonly replica?: Replica.Status
  readonly learner?: { readonly id: string; readonly slotOut: number }
}

/** A running server: its status on demand; its replica's applied state, when it hosts one. */
export interface Handle<S = unknown> {
  readonly status: Effect.Effect<Status>
  readonly applied?: Replica.Applied<S>
  /**
   * When it hosts a leader: hands an active leadership over to `to` (default: the next
   * leader in the configured order) and answers the ballot that leads once another leader
   * does (`undefined`: this leader was not active, or no other leader led within a few
   * timeouts). Fails when `to` is not another configured leader.
   */
  readonly transferLeadership?: (to?: string) => Effect.Effect<Ballot.Ballot | undefined, Leader.TransferRefused>
  /**
   * When it hosts a replica: the configuration history it performed, and a configuration
   * change proposed by it (docs/reconfiguration.md), answered once it performed the slot
   * that decided it: that slot, the slot the change governs from, or why it was refused.
   * Only this server's API may call it; clients cannot (`Request` carries commands only).
   */
  readonly history?: Effect.Effect<Configuration.History>
  /** `history` as it is now, read without an effect (a client's list of replicas, on every send). */
  readonly historyNow?: () => Configuration.History
  readonly reconfigure?: (members: Configuration.Members) => Effect.Effect<Replica.Reconfigured>
}

/**
 * Waits until the replica has answered every command it took (seen twice in a row, 10 ms
 * apart: a request may arrive in between), at most `maxMs`.
 */
const drain = (status: Effect.Effect<Replica.Status>, maxMs: number): Effect.Effect<void> =>
  Effect.gen(function* () {
    const clock = yield* Clock.Clock
    const until = clock.currentTimeMillisUnsafe() + maxMs
    let idle = 0
    while (idle < 2 && clock.currentTimeMillisUnsafe() < until) {
      idle = (yield* status).answering === 0 ? idle + 1 : 0
      if (idle < 2) yield* Effect.sleep(10)
    }
  })

/** Starts the server's roles; they run until the scope closes. */
export const run = <S, C, R>(
  options: Options<S, C, R>
): Effect.Effect<
  Handle<S>,
  Storage.StorageError | Transport.TransportError,
  Transport.Transport | Storage.Storage | Scope.Scope
> =>
  Effect.gen(function* () {
    const roles = options.roles ?? rolesOf(options.id, options.config)
    // acceptors first: a leader's first P1a should find them listening
    const acceptor = roles.includes("acceptor") ? yield* Acceptor.run(options.id, options.config) : undefined
    const replica = roles.includes("replica")
      ? yield* Replica.run(options.id, options.config, options.machine, {
          snapshotOnClose: options.snapshotOnClose === true,
          acceptedAt: acceptor?.acceptedAt
        })
      : undefined
    const leader = roles.includes("leader") ? yield* Leader.run(options.id, options.config) : undefined
    if (options.resignOnClose === true && replica !== undefined) {
      // runs after the resignation below (finalizers run last added first): clients send to
      // the replica next to the leader (docs/protocol.md#client), so a clean stop of the
      // leader's server would lose the commands its replica took and has not answered —
      // their clients would wait for a resend. It answers them first, as decided by the
      // successor; its answers name the successor, so its clients move there meanwhile.
      const drainMs = Math.min(5_000, 4 * options.config.timeouts.leaderTimeoutMs)
      yield* Effect.addFinalizer(() => drain(replica.status, drainMs))
    }
    if (leader !== undefined && options.resignOnClose === true) {
      // added after every role started, so it runs before any of them stops: the
      // successor's phase 1 can still count on this server's acceptor
      const waitMs = Math.min(5_000, 4 * options.config.timeouts.leaderTimeoutMs)
      yield* Effect.addFinalizer(() => leader.resign(waitMs))
    }
    const learner = roles.includes("learner") ? yield* Learner.run(options.id, options.config) : undefined
    const status = Effect.gen(function* () {
      return {
        id: options.id,
        ...(acceptor ? { acceptor: yield* acceptor.status } : {}),
        ...(leader ? { leader: yield* leader.status } : {}),
        ...(replica ? { replica: yield* replica.status } : {}),
        ...(learner ? { learner: yield* learner.status } : {})
      } satisfies Status
    })
    const waitMs = Math.min(5_000, 4 * options.config.timeouts.leaderTimeoutMs)
    return {
      status,
      ...(replica
        ? {
            applied: replica.applied,
            history: replica.history,
            historyNow: replica.historyNow,
            reconfigure: replica.reconfigure
          }
        : {}),
      ...(leader ? { transferLeadership: (to?: string) => leader.transfer(waitMs, to) } : {})
    } satisfies Handle<S>
  }).pipe(Effect.annotateLogs({ server: options.id }))

/** The server as a layer: its roles run as long as the layer is alive. */
export const layer = <S, C, R>(
  options: Options<S, C, R>
): Layer.Layer<never, Storage.StorageError | Transport.TransportError, Transport.Transport | Storage.Storage> =>
  Layer.effectDiscard(run(options))

/**
 * Every server of `config` in this process (an embedded cluster): one layer, one Storage
 * for all. Learners are not started here: whoever follows the log runs `Learner.run`.
 */
export const layerCluster = <S, C, R>(
  config: ClusterConfig.ClusterConfig,
  machine: StateMachine.StateMachine<S, C, R>
): Layer.Layer<never, Storage.StorageError | Transport.TransportError, Transport.Transport | Storage.Storage> =>
  Layer.effectDiscard(
    Effect.forEach(
      [...new Set([...config.acceptors, ...config.replicas, ...config.leaders])],
      (id) => run({ id, config, machine }),
      {
        discard: true
      }
    )
  )

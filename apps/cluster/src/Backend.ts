/**
 * What the HTTP API needs from the cluster: a way to submit key-value commands and the
 * status of the servers this process hosts. `Embedded` (for `synod up`) and `Serve`
 * (for `synod serve`) provide it; tests can provide their own.
 *
 * @since 0.1.0
 */
import type { Client, Replica, Server } from "@synod/actors"
import type { ClusterConfig } from "@synod/core"
import { Clock, Context, Effect } from "effect"
import { Kv } from "@synod/kv"
import type * as Api from "./Api.ts"

export class Backend extends Context.Service<
  Backend,
  {
    readonly cluster: string
    readonly transport: "memory" | "nats"
    submit(command: Kv.Command): Effect.Effect<Kv.Result, Client.SubmitError>
    /**
     * A read-index read (`Client.read`) of a `Get` or `List`: linearizable without a slot.
     * Without it, linearizable reads go through the log (`submit`).
     */
    read?(query: Kv.Command): Effect.Effect<Kv.Result, Client.ReadError>
    /**
     * `submit` for a caller that is not a fiber (`Client.submitPromise`): the HTTP API's
     * fast path (`KvFastPath`) answers with it, without a fiber per request.
     */
    submitPromise?(command: Kv.Command): Promise<Kv.Result>
    /** `read`, as `submitPromise` is `submit` (`Client.readPromise`). */
    readPromise?(query: Kv.Command): Promise<Kv.Result>
    readonly servers: Effect.Effect<ReadonlyArray<Server.Status>>
    /**
     * The applied state of a replica this process hosts, if it hosts one: watches and
     * backups are served from it.
     */
    readonly applied?: Replica.Applied<Kv.State>
    /** The servers this process hosts, for what only a server can do (hand its leadership over). */
    readonly handles?: ReadonlyArray<Server.Handle>
    /** The cluster's configuration, when known (the dashboard shows the replicas' window). */
    readonly config?: ClusterConfig.ClusterConfig
    /** Messages the roles of this process sent, by type (the dashboard's message rates). */
    readonly traffic?: { readonly sent: Readonly<Record<string, number>> }
    /**
     * Whether a server with node id `id` is running (hosted here, or holding its claim on
     * the cluster: `Presence.running`): a membership change adds only such nodes.
     */
    readonly running?: (id: string) => Effect.Effect<boolean>
  }
>()("@synod/cluster/Backend") {}

/** The size of a replica's store, read off its live state (encoding it would walk every key). */
const storeSize = (state: unknown): ReturnType<typeof Kv.summary> =>
  state instanceof Kv.State ? Kv.summary(state) : { keys: 0, revision: 0 }

/** A server's status in the API's shape. */
export const toApi = (s: Server.Status): Api.ServerStatus => ({
  id: s.id,
  ...(s.acceptor === undefined
    ? {}
    : {
        acceptor: {
          promised: { round: s.acceptor.promised.round, leader: s.acceptor.promised.leader },
          accepted: s.acceptor.accepted,
          watermark: s.acceptor.watermark
        }
      }),
  ...(s.leader === undefined
    ? {}
    : {
        leader: {
          ballot: { round: s.leader.ballot.round, leader: s.leader.ballot.leader },
          active: s.leader.active,
          decided: s.leader.decided,
          timeoutMs: Math.round(s.leader.timeoutMs)
        }
      }),
  ...(s.replica === undefined
    ? {}
    : {
        replica: {
          slotOut: s.replica.slotOut,
          verified: s.replica.verified,
          ...storeSize(s.replica.current),
          clients: s.replica.clients,
          pending: s.replica.pending,
          ...(s.replica.diverged === undefined
            ? {}
            : {
                diverged: {
                  slot: s.replica.diverged.slot,
                  digest: s.replica.diverged.own,
                  ...(s.replica.diverged.majority === undefined ? {} : { majority: s.replica.diverged.majority })
                }
              }),
          ...(s.replica.history.length > 1 ? { configurations: s.replica.history } : {})
        }
      })
})

/** The status answer of this process. */
export const status: Effect.Effect<Api.Status, never, Backend> = Effect.gen(function* () {
  const backend = yield* Backend
  const servers = yield* backend.servers
  return { cluster: backend.cluster, transport: backend.transport, servers: servers.map(toApi) }
})

export type Readiness =
  | { readonly ready: true; readonly leader: string }
  | { readonly ready: false; readonly reasons: ReadonlyArray<string> }

/**
 * Whether this process can serve: every replica it hosts is caught up (not below the GC
 * watermark, where it is still copying a peer's snapshot) and not diverged (its state
 * contradicted by its peers', docs/protocol.md#divergence-detection), and an active leader is known
 * (a hosted replica heard an active leader's heartbeat, or a hosted leader is active).
 */
export const readiness = (servers: ReadonlyArray<Server.Status>): Readiness => {
  const reasons: Array<string> = []
  for (const s of servers) {
    const r = s.replica
    if (r !== undefined && r.slotOut < r.watermark) {
      reasons.push(`replica ${s.id} is catching up: slot ${r.slotOut} is below the GC watermark ${r.watermark}`)
    }
    if (r?.diverged !== undefined) {
      reasons.push(
        `replica ${s.id} diverged: its state digest at slot ${r.diverged.slot} is not a majority's; it answers nothing until it recovered`
      )
    }
  }
  // a replica names the leader whose heartbeat last said it is active; a hosted leader's
  // own flag can be stale (a preempted leader that has not proposed since still says active)
  const leader =
    servers.find((s) => s.replica?.leader !== undefined)?.replica?.leader ??
    servers.find((s) => s.leader?.active === true)?.id
  if (leader === undefined) reasons.push("no active leader known")
  return leader !== undefined && reasons.length === 0 ? { ready: true, leader } : { ready: false, reasons }
}

/** The readiness of this process, from its servers' status alone (`/status`, the dashboard). */
export const ready: Effect.Effect<Readiness, never, Backend> = Effect.gen(function* () {
  const backend = yield* Backend
  return readiness(yield* backend.servers)
})

/** How long `/readyz` waits for its probe: a linearizable read through the cluster. */
export const probeMs = 1_000
/** A probe's outcome answers the `/readyz` requests of this long after it, so that probes cannot load the cluster. */
export const probeReuseMs = 500

/** The latest probe of each backend: when it started and its outcome (shared by those who wait for it). */
const probes = new WeakMap<object, { readonly at: number; readonly outcome: Effect.Effect<string | undefined> }>()

/**
 * Whether the cluster answers a linearizable read (a `Get`, by read index where the
 * backend has it) within `probeMs`: undefined if it does, else why not. A leader known
 * and replicas caught up are not enough: with a majority of acceptors gone, a leader
 * still heartbeats but nothing commits, and no read is answered once its lease runs out.
 */
export const probe: Effect.Effect<string | undefined, never, Backend> = Effect.gen(function* () {
  const backend = yield* Backend
  const now = yield* Clock.currentTimeMillis
  const last = probes.get(backend)
  if (last !== undefined && now - last.at < probeReuseMs) return yield* last.outcome
  const query: Kv.Command = { _tag: "Get", key: "synod/readyz" }
  const read: Effect.Effect<Kv.Result, { readonly _tag: string; readonly message?: string }> =
    backend.read !== undefined ? backend.read(query) : backend.submit(query)
  const outcome = yield* Effect.cached(
    read.pipe(
      Effect.timeoutOption(probeMs),
      Effect.map((r) =>
        r._tag === "Some"
          ? undefined
          : `no linearizable read answered within ${probeMs} ms: a majority of the acceptors may be unreachable`
      ),
      Effect.catch((e) => Effect.succeed(`a linearizable read failed: ${e.message ?? e._tag}`))
    )
  )
  probes.set(backend, { at: now, outcome })
  return yield* outcome
})

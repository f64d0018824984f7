/**
 * Runs the roles a `HostConfig` names in this process, on the transport and storage it
 * names: NATS or the in-memory bus; files under `dataDir` (fsynced) or memory. Logs are
 * JSON lines annotated with the node and role. Before any storage is opened the process
 * locks its data directory (`DataDirLock`) and, over NATS, claims its node id on the
 * cluster (`Presence`); either held by another process refuses the start, naming it.
 * Everything is scoped: closing the scope
 * (SIGTERM/SIGINT under `NodeRuntime.runMain`) stops taking work, lets in-flight syncs
 * finish, and drains the NATS connection.
 *
 * @since 0.1.0
 */
import { Server } from "@synod/actors"
import { ClusterConfig, InMemoryBus, type StateMachine, Storage, Transport } from "@synod/core"
import { NatsTransport, Presence } from "@synod/transport-nats"
import { createServer } from "node:http"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Context, Effect, Layer, Logger, References, type Scope } from "effect"
import { HttpRouter } from "effect/http"
import type { ServeError } from "effect/http/HttpServerError"
import { PrometheusMetrics } from "effect/observability"
import * as DataDirLock from "./DataDirLock.ts"
import * as FileStorage from "./FileStorage.ts"
import type { HostConfig } from "./HostConfig.ts"

/** A config's `transport` when it is NATS. */
export type NatsConfig = Extract<HostConfig["transport"], { readonly kind: "nats" }>

/**
 * One NATS connection called `name` to the config's servers, for its cluster (the subject
 * prefix `synod.<name>`), with its credentials and TLS; its `NatsConnection` and
 * `NatsStats` stay visible. `serverIds`: the cluster's node ids, whose clients' requests
 * must carry the cluster key's MAC when there is one (`NatsTransport`'s `serverIds`).
 */
export const natsTransport = (
  config: { readonly name: string; readonly transport: NatsConfig },
  name: string,
  serverIds?: ReadonlyArray<string>
) => {
  const t = config.transport
  return NatsTransport.layer({
    servers: t.servers,
    name,
    cluster: config.name,
    ...(t.auth === undefined ? {} : { auth: t.auth }),
    ...(t.tls === undefined ? {} : { tls: t.tls }),
    ...(t.clusterKey === undefined ? {} : { clusterKey: t.clusterKey }),
    ...(serverIds === undefined ? {} : { serverIds })
  })
}

/**
 * The transport a config names: the in-memory bus (a new one at each build) or a NATS
 * connection called `name` (`natsTransport`). The one place a transport is built from a
 * config: the host's own connection (`name`: the node id), `synod serve`'s API client (a
 * second connection) and `synod up` all use it.
 */
export const transport = (
  config: Pick<HostConfig, "name" | "transport">,
  name: string
): Layer.Layer<Transport.Transport, Transport.TransportError> => {
  const t = config.transport
  // one process: envelopes are handed over as they are, no codec work
  return t.kind === "memory"
    ? InMemoryBus.layer({ encode: false })
    : natsTransport({ name: config.name, transport: t }, name)
}

/** The transport; over NATS, once this process has claimed its node id on the cluster. */
const connect = Effect.fnUntraced(function* (
  config: HostConfig,
  presence: Omit<Presence.Options, "cluster" | "node">
): Effect.fn.Return<
  Context.Context<Transport.Transport>,
  Transport.TransportError | Presence.DuplicateNode,
  Scope.Scope
> {
  const t = config.transport
  if (t.kind === "memory") return yield* Layer.build(transport(config, config.node))
  const context = yield* Layer.build(
    natsTransport({ name: config.name, transport: t }, config.node, [
      ...new Set([config.node, ...ClusterConfig.serverIds(config.cluster)])
    ])
  )
  yield* Presence.claim({
    ...presence,
    cluster: config.name,
    node: config.node,
    ...(t.clusterKey === undefined ? {} : { clusterKey: t.clusterKey })
  }).pipe(Effect.provideContext(context))
  return context
})

const storageLayer = (config: HostConfig): Layer.Layer<Storage.Storage, Storage.StorageError> =>
  config.dataDir === undefined ? Storage.layerMemory() : FileStorage.layerNode({ dataDir: config.dataDir })

/** JSON log lines at the configured level. */
export const logging = (config: HostConfig) =>
  Layer.mergeAll(
    Logger.layer([Logger.consoleJson]),
    Layer.succeed(References.MinimumLogLevel, config.logLevel ?? "Info")
  )

/**
 * The Prometheus endpoint (`GET /metrics` on `metricsHost`:`metricsPort`, by default on
 * 127.0.0.1 only), if the config asks for one: every effect `Metric` of the process
 * (roles, NATS counters, WAL fsync latency).
 */
export const metricsServer = (config: HostConfig): Layer.Layer<never, ServeError> =>
  config.metricsPort === undefined || config.metricsPort === 0
    ? Layer.empty
    : HttpRouter.serve(PrometheusMetrics.layerHttp({ path: "/metrics" }), { disableLogger: true }).pipe(
        Layer.provide(
          NodeHttpServer.layer(createServer, { port: config.metricsPort, host: config.metricsHost ?? "127.0.0.1" })
        )
      )

export interface Options {
  /** How this process claims its node id over NATS (`Presence`; tests shorten the timings). */
  readonly presence?: Omit<Presence.Options, "cluster" | "node">
  /** Wraps the transport the roles use, e.g. to count what they send (the cluster app's dashboard). */
  readonly wrapTransport?: (transport: Transport.Transport["Service"]) => Transport.Transport["Service"]
}

/** A running host: its servers' handle, and the transport its roles use. */
export interface Running<S = unknown> extends Server.Handle<S> {
  /**
   * The roles' transport (unwrapped by `wrapTransport`): a client in this process that
   * sends through it reaches this process's roles in memory, without NATS.
   */
  readonly transport: Context.Context<Transport.Transport>
}

/** Starts the configured roles; they run until the scope closes. */
export const run = <S, C, R>(config: HostConfig, machine: StateMachine.StateMachine<S, C, R>, options: Options = {}) =>
  Effect.gen(function* () {
    if (config.dataDir !== undefined) yield* DataDirLock.acquire(config.dataDir)
    const connected = yield* connect(config, options.presence ?? {})
    const transport =
      options.wrapTransport === undefined
        ? connected
        : Context.add(
            connected,
            Transport.Transport,
            options.wrapTransport(Context.get(connected, Transport.Transport))
          )
    const storage = yield* Layer.build(storageLayer(config))
    const context = Context.merge(transport, storage)
    yield* Layer.build(metricsServer(config))
    const handle = yield* Server.run({
      id: config.node,
      config: config.cluster,
      machine,
      snapshotOnClose: true,
      resignOnClose: true,
      ...(config.roles === undefined ? {} : { roles: config.roles })
    }).pipe(Effect.provideContext(context))
    yield* Effect.logInfo("synod node started", {
      node: config.node,
      roles: config.roles ?? Server.rolesOf(config.node, config.cluster),
      transport: config.transport.kind,
      storage: config.dataDir ?? "memory"
    })
    const running: Running<S> = { ...handle, transport: connected }
    return running
  }).pipe(Effect.annotateLogs({ node: config.node }))

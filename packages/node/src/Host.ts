/**
 * Runs the roles a `HostConfig` names in this process, on the transport and storage it
 * names: NATS or the in-memory bus; files under `dataDir` (fsynced) or memory. Logs are
 * JSON lines annotated with the node and role. Everything is scoped: closing the scope
 * (SIGTERM/SIGINT under `NodeRuntime.runMain`) stops taking work, lets in-flight syncs
 * finish, and drains the NATS connection.
 *
 * @since 0.1.0
 */
import { Server } from "@synod/actors"
import { InMemoryBus, type StateMachine, Storage, Transport } from "@synod/core"
import { NatsTransport } from "@synod/transport-nats"
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Logger, References } from "effect"
import { HttpRouter } from "effect/http"
import type { ServeError } from "effect/http/HttpServerError"
import { PrometheusMetrics } from "effect/observability"
import * as FileStorage from "./FileStorage.ts"
import type { HostConfig } from "./HostConfig.ts"

const transportLayer = (config: HostConfig): Layer.Layer<Transport.Transport, Transport.TransportError> => {
  const t = config.transport
  if (t.kind === "memory") return InMemoryBus.layer()
  return NatsTransport.layer({
    servers: t.servers,
    name: config.node,
    cluster: config.name,
    ...(t.auth === undefined ? {} : { auth: t.auth }),
    ...(t.tls === undefined ? {} : { tls: t.tls })
  })
}

const storageLayer = (config: HostConfig): Layer.Layer<Storage.Storage, Storage.StorageError> =>
  config.dataDir === undefined ? Storage.layerMemory() : FileStorage.layerNode({ dataDir: config.dataDir })

/** JSON log lines at the configured level. */
export const logging = (config: HostConfig) =>
  Layer.mergeAll(
    Logger.layer([Logger.consoleJson]),
    Layer.succeed(References.MinimumLogLevel, config.logLevel ?? "Info")
  )

/**
 * The Prometheus endpoint (`GET /metrics` on `metricsPort`), if the config asks for one:
 * every effect `Metric` of the process (roles, NATS counters, WAL fsync latency).
 */
export const metricsServer = (config: HostConfig): Layer.Layer<never, ServeError> =>
  config.metricsPort === undefined || config.metricsPort === 0
    ? Layer.empty
    : HttpRouter.serve(PrometheusMetrics.layerHttp({ path: "/metrics" }), { disableLogger: true }).pipe(
        Layer.provide(NodeHttpServer.layer(createServer, { port: config.metricsPort }))
      )

/** Starts the configured roles; they run until the scope closes. */
export const run = <S, C, R>(config: HostConfig, machine: StateMachine.StateMachine<S, C, R>) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(Layer.merge(transportLayer(config), storageLayer(config)))
    yield* Layer.build(metricsServer(config))
    const handle = yield* Server.run({
      id: config.node,
      config: config.cluster,
      machine,
      snapshotOnClose: true,
      ...(config.roles === undefined ? {} : { roles: config.roles })
    }).pipe(Effect.provideContext(context))
    yield* Effect.logInfo("synod node started", {
      node: config.node,
      roles: config.roles ?? Server.rolesOf(config.node, config.cluster),
      transport: config.transport.kind,
      storage: config.dataDir ?? "memory"
    })
    return handle
  }).pipe(Effect.annotateLogs({ node: config.node }))

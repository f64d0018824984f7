/**
 * @synod/transport-nats: the `Transport` over NATS. `NatsTransport.layer(options)` replaces
 * the in-memory bus; `Subjects` is the subject scheme, `NatsConnection` the process's one
 * connection, `NatsStats` its counters, `Presence` one process per node id, `NatsConfig` a
 * nats-server authorization block for a cluster, `LogBudget` how much a listener logs of what it drops. Trace context travels in a `traceparent`
 * header (`@synod/core/Trace`).
 *
 * @since 0.1.0
 */
export * as ClusterKey from "./ClusterKey.ts"
export * as LogBudget from "./LogBudget.ts"
export * as NatsConfig from "./NatsConfig.ts"
export * as NatsConnection from "./NatsConnection.ts"
export * as NatsStats from "./NatsStats.ts"
export * as NatsTransport from "./NatsTransport.ts"
export * as Presence from "./Presence.ts"
export * as Subjects from "./Subjects.ts"

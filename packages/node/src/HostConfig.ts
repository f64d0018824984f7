/**
 * What a synod process is told: which cluster, which node it is and which roles it
 * hosts, where its data lives, how to reach the other roles (NATS, or the in-memory bus
 * when one process hosts everything), and its knobs. Decoded with Schema from a JSON
 * file, then overridden by environment variables and command-line flags (flags win);
 * a bad value fails with a message that names the field.
 *
 * @since 0.1.0
 */
import { Address, ClusterConfig } from "@synod/core"
import { Effect, Result, Schema, SchemaIssue } from "effect"

export const Role = Schema.Literals(["acceptor", "leader", "replica", "learner"])

export const NatsAuth = Schema.Union([
  Schema.Struct({ user: Schema.String, password: Schema.String }),
  Schema.Struct({ token: Schema.String }),
  Schema.Struct({ nkeySeed: Schema.String }),
  Schema.Struct({ credsFile: Schema.String })
])

const ClusterKeyValue = Schema.String.check(
  Schema.isMinLength(32, { message: "a cluster key is 32 to 1024 characters" }),
  Schema.isMaxLength(1024, { message: "a cluster key is 32 to 1024 characters" })
)

export const Transport = Schema.Union([
  Schema.Struct({
    kind: Schema.Literal("nats"),
    servers: Schema.Array(Schema.String).check(
      Schema.isMinLength(1, { message: "at least one NATS server is required" })
    ),
    auth: Schema.optionalKey(NatsAuth),
    tls: Schema.optionalKey(
      Schema.Struct({
        caFile: Schema.optionalKey(Schema.String),
        certFile: Schema.optionalKey(Schema.String),
        keyFile: Schema.optionalKey(Schema.String)
      })
    ),
    /**
     * Authenticated envelopes (`ClusterKey` of `@synod/transport-nats`, issue 14): every
     * server MACs what it sends and drops protocol messages without a valid MAC. `previous`
     * is also accepted, for a rotation. Also `SYNOD_CLUSTER_KEY`, `SYNOD_CLUSTER_KEY_PREVIOUS`.
     */
    clusterKey: Schema.optionalKey(
      Schema.Struct({ current: ClusterKeyValue, previous: Schema.optionalKey(ClusterKeyValue) })
    )
  }),
  Schema.Struct({ kind: Schema.Literal("memory") })
])

export const HostConfig = Schema.Struct({
  /** Cluster name: the NATS subject prefix `synod.<name>`. */
  name: Schema.String.check(
    Schema.isPattern(/^[A-Za-z0-9_-]{1,64}$/, { message: "a cluster name is 1-64 letters, digits, '_' or '-'" })
  ),
  cluster: ClusterConfig.ClusterConfig,
  /** This node's id; it hosts the roles of `cluster` listed under this id (or `roles`). */
  node: Address.Id,
  roles: Schema.optionalKey(Schema.Array(Role)),
  /**
   * Where durable state lives, locked by this process while it runs. Required over NATS
   * for a node hosting an acceptor or a leader; without it state is kept in memory (lost
   * on exit).
   */
  dataDir: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1, { message: "dataDir may not be empty" }))),
  transport: Transport,
  /** Port of the Prometheus metrics endpoint (0 or absent: none). */
  metricsPort: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))),
  /** Address the metrics endpoint listens on (default 127.0.0.1; "0.0.0.0" for every interface). */
  metricsHost: Schema.optionalKey(Schema.String),
  logLevel: Schema.optionalKey(Schema.Literals(["Debug", "Info", "Warn", "Error"]))
})
export type HostConfig = typeof HostConfig.Type

/** The log levels a config, `--log-level` and `SYNOD_LOG_LEVEL` name. */
export const logLevels = ["Debug", "Info", "Warn", "Error"] as const
export type LogLevel = (typeof logLevels)[number]

/**
 * A log level as a user may spell it: any case, and `warning` for `Warn`
 * (`debug`, `INFO`, `Warn`, `warning`, `error`); undefined for anything else.
 */
export const parseLogLevel = (s: string): LogLevel | undefined => {
  const lower = s.trim().toLowerCase()
  if (lower === "warning") return "Warn"
  return logLevels.find((l) => l.toLowerCase() === lower)
}

export class HostConfigError extends Schema.TaggedError<HostConfigError>()("HostConfigError", {
  message: Schema.String
}) {}

const formatter = SchemaIssue.makeFormatterDefault()
// a misspelt key is an error, not a default: `"token"` for `"tokens"` would leave an API open
const decodeConfig = Schema.decodeUnknownResult(HostConfig, { onExcessProperty: "error" })

/**
 * The top-level keys of a config file that other parts of the program read (`synod serve`'s
 * `http` and `tracing`): not the host's, but no mistake either.
 */
export const otherKeys: ReadonlyArray<string> = ["http", "tracing"]

/** Flags and environment variables that override the file (flags win over environment). */
export interface Overrides {
  readonly node?: string
  readonly dataDir?: string
  readonly nats?: string
  readonly metricsPort?: string
  readonly metricsHost?: string
  readonly logLevel?: string
  readonly clusterKey?: string
  readonly clusterKeyPrevious?: string
}

export const overridesFromEnv = (env: Record<string, string | undefined>): Overrides => ({
  ...(env.SYNOD_NODE ? { node: env.SYNOD_NODE } : {}),
  ...(env.SYNOD_DATA_DIR ? { dataDir: env.SYNOD_DATA_DIR } : {}),
  ...(env.SYNOD_NATS ? { nats: env.SYNOD_NATS } : {}),
  ...(env.SYNOD_METRICS_PORT ? { metricsPort: env.SYNOD_METRICS_PORT } : {}),
  ...(env.SYNOD_METRICS_HOST ? { metricsHost: env.SYNOD_METRICS_HOST } : {}),
  ...(env.SYNOD_LOG_LEVEL ? { logLevel: env.SYNOD_LOG_LEVEL } : {}),
  ...(env.SYNOD_CLUSTER_KEY ? { clusterKey: env.SYNOD_CLUSTER_KEY } : {}),
  ...(env.SYNOD_CLUSTER_KEY_PREVIOUS ? { clusterKeyPrevious: env.SYNOD_CLUSTER_KEY_PREVIOUS } : {})
})

/** Applies overrides to the raw (not yet decoded) config, then decodes it. */
export const decode = (raw: unknown, overrides: Overrides = {}): Result.Result<HostConfig, HostConfigError> => {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return Result.fail(new HostConfigError({ message: "invalid config: expected a JSON object" }))
  }
  const merged: Record<string, unknown> = { ...raw }
  for (const key of otherKeys) delete merged[key]
  if (overrides.node !== undefined) merged.node = overrides.node
  if (overrides.dataDir !== undefined) merged.dataDir = overrides.dataDir
  if (overrides.nats !== undefined)
    merged.transport = { kind: "nats", servers: overrides.nats.split(",").map((s) => s.trim()) }
  if (overrides.metricsPort !== undefined) merged.metricsPort = Number(overrides.metricsPort)
  if (overrides.metricsHost !== undefined) merged.metricsHost = overrides.metricsHost
  if (overrides.logLevel !== undefined) merged.logLevel = overrides.logLevel
  if (overrides.clusterKey !== undefined || overrides.clusterKeyPrevious !== undefined) {
    const t = merged.transport
    if (typeof t === "object" && t !== null && !Array.isArray(t)) {
      const file = (t as { clusterKey?: { current?: unknown; previous?: unknown } }).clusterKey
      const current = overrides.clusterKey ?? file?.current
      const previous = overrides.clusterKeyPrevious ?? file?.previous
      merged.transport = {
        ...t,
        clusterKey: { ...(current === undefined ? {} : { current }), ...(previous === undefined ? {} : { previous }) }
      }
    }
  }
  // spelled as a user may (any case, "warning"); anything else reaches the schema, which names it
  if (typeof merged.logLevel === "string") merged.logLevel = parseLogLevel(merged.logLevel) ?? merged.logLevel
  const r = decodeConfig(merged)
  if (Result.isFailure(r))
    return Result.fail(new HostConfigError({ message: `invalid config: ${formatter(r.failure.issue)}` }))
  const c = r.success
  const all = new Set([...c.cluster.acceptors, ...c.cluster.leaders, ...c.cluster.replicas, ...c.cluster.learners])
  if (c.roles === undefined && !all.has(c.node)) {
    return Result.fail(
      new HostConfigError({
        message: `invalid config: node "${c.node}" is not in cluster.acceptors, cluster.leaders, cluster.replicas or cluster.learners`
      })
    )
  }
  const roles = c.roles ?? [
    ...(c.cluster.acceptors.includes(c.node) ? (["acceptor"] as const) : []),
    ...(c.cluster.leaders.includes(c.node) ? (["leader"] as const) : [])
  ]
  const durable = roles.filter((r) => r === "acceptor" || r === "leader")
  if (c.transport.kind === "nats" && c.dataDir === undefined && durable.length > 0) {
    return Result.fail(
      new HostConfigError({
        message: `invalid config: dataDir is required: node "${c.node}" hosts ${durable.join(" and ")} over NATS, and a restarted acceptor must remember its promises and a restarted leader its round (set dataDir, --data-dir or SYNOD_DATA_DIR)`
      })
    )
  }
  return Result.succeed(c)
}

export const decodeEffect = (raw: unknown, overrides: Overrides = {}) => Effect.fromResult(decode(raw, overrides))

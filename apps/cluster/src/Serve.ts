/**
 * `synod serve`: one server of a cluster in this process, as `packages/node`'s host runs
 * it (roles from the config, durable storage under `dataDir`, NATS), plus the HTTP API
 * for the CLI and for users, submitting through a client on its own NATS connection.
 *
 * The config file is the host's (`HostConfig`) with an optional `http` section:
 *
 * ```json
 * { "name": "demo", "node": "s1", "dataDir": "./data/s1",
 *   "cluster": { "acceptors": ["s1","s2","s3"], "leaders": ["s1","s2","s3"], "replicas": ["s1","s2","s3"] },
 *   "transport": { "kind": "nats", "servers": ["nats://127.0.0.1:4222"] },
 *   "http": { "port": 8081 } }
 * ```
 *
 * `http.host` (default 127.0.0.1) and `http.maxBodyBytes` (the longest request body, default
 * 512 KiB) are optional, and so is the API's security (`HttpSecurity`): `http.tokens`
 * (`[{ "token": …, "scope": "read" | "write" }]`, plus `SYNOD_HTTP_TOKEN` and
 * `SYNOD_HTTP_READ_TOKEN` from the environment, comma-separated; never a flag), `http.tls`
 * (`{ "certFile", "keyFile" }`: HTTPS) and `http.hosts` (the names the `Host` header may
 * carry; also `SYNOD_HTTP_HOSTS`), required when `http.host` is not a loopback address.
 *
 * `tracing` (`{ "endpoint": "http://127.0.0.1:4318", "serviceName"?: … }`) sends traces to
 * an OTLP/HTTP collector (`Tracing`); `OTEL_EXPORTER_OTLP_ENDPOINT` does the same.
 *
 * @since 0.1.0
 */
import { readFileSync } from "node:fs"
import { createSecureContext } from "node:tls"
import { Client } from "@synod/actors"
import { Configuration } from "@synod/core"
import { Kv } from "@synod/kv"
import { Host, HostConfig } from "@synod/node"
import { NatsConnection, Presence } from "@synod/transport-nats"
import { Context, Effect, Layer, Option, Random, Result, Schema, SchemaIssue } from "effect"
import type * as ApiServer from "./ApiServer.ts"
import { Backend } from "./Backend.ts"
import * as HttpSecurity from "./HttpSecurity.ts"
import * as Dashboard from "./Dashboard.ts"
import * as LeaseKeeping from "./LeaseKeeping.ts"
import * as Tracing from "./Tracing.ts"

export const Port = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }, { message: "a port is 0-65535" }))

export const Http = Schema.Struct({
  /** 0 picks a free port (the process prints it). */
  port: Port,
  /** Default 127.0.0.1. */
  host: Schema.optionalKey(Schema.String),
  /** The longest request body accepted, in bytes; longer ones get a 413. Default 512 KiB. */
  maxBodyBytes: Schema.optionalKey(
    Schema.Int.check(
      Schema.isBetween(
        { minimum: 1024, maximum: 64 * 1024 * 1024 },
        { message: "maxBodyBytes is between 1024 and 64 MiB (67108864)" }
      )
    )
  ),
  // security (issue 14): see HttpSecurity
  /** Bearer tokens and their scopes; absent or empty: no authentication. */
  tokens: Schema.optionalKey(
    Schema.Array(HttpSecurity.TokenEntry).check(Schema.isMaxLength(64, { message: "at most 64 tokens" }))
  ),
  /** Names the `Host` header may carry (besides loopback names); required on a non-loopback `host`. */
  hosts: Schema.optionalKey(
    Schema.Array(HttpSecurity.HostName).check(
      Schema.isMinLength(1, { message: "name at least one host" }),
      Schema.isMaxLength(64, { message: "at most 64 hosts" })
    )
  ),
  /** HTTPS: PEM files of the certificate chain and of its private key. */
  tls: Schema.optionalKey(Schema.Struct({ certFile: Schema.String, keyFile: Schema.String }))
})
export type Http = typeof Http.Type

const Extras = Schema.Struct({
  http: Schema.optionalKey(Http),
  /** OTLP tracing (`Tracing`); the `OTEL_EXPORTER_OTLP_*` environment variables override it. */
  tracing: Schema.optionalKey(Tracing.Config)
})

export interface ServeConfig {
  readonly host: HostConfig.HostConfig
  /** Where the HTTP API listens; absent: no HTTP API. */
  readonly http: Http | undefined
  /** Where traces go, from the file (the environment may also say); absent: off unless the environment says. */
  readonly tracing?: Tracing.Config
}

export interface Overrides extends HostConfig.Overrides {
  readonly httpPort?: number
  readonly httpHost?: string
  /** Tokens and host names from the environment (`httpSecurityFromEnv`), added to the file's. */
  readonly httpTokens?: ReadonlyArray<HttpSecurity.TokenEntry>
  readonly httpHosts?: ReadonlyArray<string>
}

export class ServeConfigError extends Schema.TaggedError<ServeConfigError>()("ServeConfigError", {
  message: Schema.String
}) {}

const formatter = SchemaIssue.makeFormatterDefault()
const decodeExtras = Schema.decodeUnknownResult(Extras, { onExcessProperty: "error" })

/** Decodes a config file's contents with overrides (flags over environment over file). */
export const decode = (raw: unknown, overrides: Overrides = {}): Result.Result<ServeConfig, ServeConfigError> => {
  const host = HostConfig.decode(raw, overrides)
  if (Result.isFailure(host)) return Result.fail(new ServeConfigError({ message: host.failure.message }))
  // the host's keys are the host config's to check (it refuses unknown ones)
  const rawExtras = Object.fromEntries(
    HostConfig.otherKeys.flatMap((key) =>
      key in (raw as object) ? [[key, (raw as Record<string, unknown>)[key]]] : []
    )
  )
  const extras = decodeExtras(rawExtras)
  if (Result.isFailure(extras)) {
    return Result.fail(new ServeConfigError({ message: `invalid config: ${formatter(extras.failure.issue)}` }))
  }
  if (host.success.transport.kind !== "nats") {
    return Result.fail(
      new ServeConfigError({
        message:
          'invalid config: synod serve runs one server of a cluster whose servers talk over NATS: set transport to { "kind": "nats", "servers": [...] } or pass --nats URL (for a whole cluster in one process, use synod up)'
      })
    )
  }
  const fromFile = extras.success.http
  const port = overrides.httpPort ?? fromFile?.port
  const hostName = overrides.httpHost ?? fromFile?.host
  const maxBodyBytes = fromFile?.maxBodyBytes
  const tokens = [...(fromFile?.tokens ?? []), ...(overrides.httpTokens ?? [])]
  const hosts = [...(fromFile?.hosts ?? []), ...(overrides.httpHosts ?? [])]
  const tls = fromFile?.tls
  const http =
    port === undefined
      ? undefined
      : {
          port,
          ...(hostName === undefined ? {} : { host: hostName }),
          ...(maxBodyBytes === undefined ? {} : { maxBodyBytes }),
          ...(tokens.length === 0 ? {} : { tokens }),
          ...(hosts.length === 0 ? {} : { hosts }),
          ...(tls === undefined ? {} : { tls })
        }
  if (http !== undefined) {
    const exposed = exposedWithoutHosts(http.host, http.hosts)
    if (exposed !== undefined) return Result.fail(new ServeConfigError({ message: `invalid config: ${exposed}` }))
  }
  const tracing = extras.success.tracing
  return Result.succeed(tracing === undefined ? { host: host.success, http } : { host: host.success, http, tracing })
}

// ---------------------------------------------------------------------------------------
// the HTTP API's security (issue 14)

/** Why an API on `host` with `hosts` may not start: listening beyond loopback without naming its hosts. */
export const exposedWithoutHosts = (
  host: string | undefined,
  hosts: ReadonlyArray<string> | undefined
): string | undefined =>
  host === undefined || HttpSecurity.isLoopback(host) || (hosts !== undefined && hosts.length > 0)
    ? undefined
    : `http.hosts is required when the HTTP API listens on a non-loopback address (${host}): list the host names clients use (or set SYNOD_HTTP_HOSTS)`

const decodeTokenList = Schema.decodeUnknownResult(Schema.Array(HttpSecurity.Token))
const decodeHostList = Schema.decodeUnknownResult(Schema.Array(HttpSecurity.HostName))
const split = (s: string) =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x.length > 0)

/**
 * The API's tokens and host names from the environment: `SYNOD_HTTP_TOKEN` (read-write) and
 * `SYNOD_HTTP_READ_TOKEN` (read-only), `SYNOD_HTTP_HOSTS`, each comma-separated. A bad
 * value fails naming the variable (never echoing a token).
 */
export const httpSecurityFromEnv = (
  env: Record<string, string | undefined>
): Result.Result<Pick<Overrides, "httpTokens" | "httpHosts">, ServeConfigError> => {
  const tokens: Array<HttpSecurity.TokenEntry> = []
  for (const [name, scope] of [
    ["SYNOD_HTTP_TOKEN", "write"],
    ["SYNOD_HTTP_READ_TOKEN", "read"]
  ] as const) {
    const value = env[name]
    if (value === undefined || value === "") continue
    const decoded = decodeTokenList(split(value))
    if (Result.isFailure(decoded)) {
      return Result.fail(
        new ServeConfigError({
          message: `invalid ${name}: a token is 16-256 characters of letters, digits and - . _ ~ + / (comma-separated)`
        })
      )
    }
    for (const token of decoded.success) tokens.push({ token, scope })
  }
  const hostsValue = env.SYNOD_HTTP_HOSTS
  let hosts: ReadonlyArray<string> = []
  if (hostsValue !== undefined && hostsValue !== "") {
    const decoded = decodeHostList(split(hostsValue))
    if (Result.isFailure(decoded)) {
      return Result.fail(
        new ServeConfigError({ message: `invalid SYNOD_HTTP_HOSTS: ${formatter(decoded.failure.issue)}` })
      )
    }
    hosts = decoded.success
  }
  return Result.succeed({
    ...(tokens.length === 0 ? {} : { httpTokens: tokens }),
    ...(hosts.length === 0 ? {} : { httpHosts: hosts })
  })
}

/**
 * `ApiServer.layer`'s options for `http`: the TLS files read, and checked to be a
 * certificate and its key; a file that cannot be read or a pair that does not match fails
 * naming the field.
 */
export const apiOptions = Effect.fnUntraced(function* (
  http: Http
): Effect.fn.Return<ApiServer.Options, ServeConfigError> {
  const { tls, ...rest } = http
  if (tls === undefined) return rest
  const read = (field: string, file: string) =>
    Effect.try({
      try: () => readFileSync(file, "utf8"),
      catch: (e) =>
        new ServeConfigError({
          message: `invalid config: http.tls.${field}: cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`
        })
    })
  const cert = yield* read("certFile", tls.certFile)
  const key = yield* read("keyFile", tls.keyFile)
  yield* Effect.try({
    try: () => createSecureContext({ cert, key }),
    catch: (e) =>
      new ServeConfigError({
        message: `invalid config: http.tls: ${tls.certFile} and ${tls.keyFile} are not a PEM certificate and its private key: ${e instanceof Error ? e.message : String(e)}`
      })
  })
  return { ...rest, tls: { cert, key } }
})

/**
 * Starts the server's roles (via `Host.run`) and a client for the HTTP API; both run
 * until the scope closes.
 */
export const backend = (config: HostConfig.HostConfig) =>
  Layer.effect(
    Backend,
    Effect.gen(function* () {
      // what the roles send, by type, for the dashboard
      const traffic = Dashboard.makeTraffic()
      const handle = yield* Host.run(config, Kv.machine, {
        wrapTransport: (transport) => Dashboard.countSends(traffic, transport)
      })
      const t = config.transport
      if (t.kind !== "nats") return yield* Effect.die(new Error("synod serve needs a NATS transport"))
      // The API's client sends through the roles' transport: a request to this server's
      // replica, and its answer, stay in this process, with no NATS hop or encoding (a
      // second connection cost every request a publish of its own, the requests of many
      // HTTP connections arriving in as many I/O callbacks). Its id is new at every start:
      // a restarted process must not reuse sequence numbers. It is in the node's scope
      // (`<node>.http-…`), so the node's NATS user may read its answers from other servers.
      const context = handle.transport
      const id = `${config.node}.http-${(yield* Random.nextIntBetween(0, 2 ** 48)).toString(36)}`
      // it sends to the replicas of the latest configuration this server's replica performed
      // (docs/reconfiguration.md), the cluster config's until the configuration changes:
      // read as it is at each send (it was polled every retransmission period, a wake-up
      // of an idle server ten times a second)
      const historyNow = handle.historyNow
      const latest = (): ReadonlyArray<string> =>
        historyNow === undefined ? config.cluster.replicas : Configuration.latest(historyNow()).replicas
      const client = yield* Client.make(Kv.machine, config.cluster, { id, replicas: latest }).pipe(
        Effect.provideContext(context)
      )
      // the lease keeper next to this server's leader, expiring leases while it leads
      yield* LeaseKeeping.start([handle], config.cluster, client.submit)
      return Backend.of({
        cluster: config.name,
        transport: "nats",
        submit: client.submit,
        read: client.read,
        submitPromise: client.submitPromise,
        readPromise: client.readPromise,
        servers: Effect.map(handle.status, (s) => [s]),
        handles: [handle],
        ...(handle.applied === undefined ? {} : { applied: handle.applied }),
        config: config.cluster,
        traffic,
        running: (node) =>
          node === config.node
            ? Effect.succeed(true)
            : Option.match(Context.getOption(context, NatsConnection.NatsConnection), {
                onNone: () => Effect.succeed(false),
                onSome: (connection) =>
                  Presence.running({
                    cluster: config.name,
                    node,
                    ...(t.clusterKey === undefined ? {} : { clusterKey: t.clusterKey })
                  }).pipe(Effect.provideService(NatsConnection.NatsConnection, connection))
              })
      })
    })
  )

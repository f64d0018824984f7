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
 * 512 KiB) are optional.
 *
 * @since 0.1.0
 */
import { Client } from "@synod/actors"
import { Kv } from "@synod/kv"
import { Host, HostConfig } from "@synod/node"
import { Effect, Layer, Random, Result, Schema, SchemaIssue } from "effect"
import { Backend } from "./Backend.ts"
import * as Dashboard from "./Dashboard.ts"

export const Port = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }, { message: "a port is 0-65535" }))

export const Http = Schema.Struct({
  /** 0 picks a free port (the process prints it). */
  port: Port,
  /** Default 127.0.0.1. */
  host: Schema.optionalKey(Schema.String),
  /** The longest request body accepted, in bytes; longer ones get a 413. Default 512 KiB. */
  maxBodyBytes: Schema.optionalKey(
    Schema.Int.check(Schema.isGreaterThanOrEqualTo(1024, { message: "maxBodyBytes is at least 1024" }))
  )
})
export type Http = typeof Http.Type

const Extras = Schema.Struct({ http: Schema.optionalKey(Http) })

export interface ServeConfig {
  readonly host: HostConfig.HostConfig
  /** Where the HTTP API listens; absent: no HTTP API. */
  readonly http: Http | undefined
}

export interface Overrides extends HostConfig.Overrides {
  readonly httpPort?: number
  readonly httpHost?: string
}

export class ServeConfigError extends Schema.TaggedError<ServeConfigError>()("ServeConfigError", {
  message: Schema.String
}) {}

const formatter = SchemaIssue.makeFormatterDefault()
const decodeExtras = Schema.decodeUnknownResult(Extras)

/** Decodes a config file's contents with overrides (flags over environment over file). */
export const decode = (raw: unknown, overrides: Overrides = {}): Result.Result<ServeConfig, ServeConfigError> => {
  const host = HostConfig.decode(raw, overrides)
  if (Result.isFailure(host)) return Result.fail(new ServeConfigError({ message: host.failure.message }))
  const extras = decodeExtras(raw)
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
  const http =
    port === undefined
      ? undefined
      : {
          port,
          ...(hostName === undefined ? {} : { host: hostName }),
          ...(maxBodyBytes === undefined ? {} : { maxBodyBytes })
        }
  return Result.succeed({ host: host.success, http })
}

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
      // The host keeps its connection to itself; the API's client gets its own. Its id is
      // new at every start: a restarted process must not reuse sequence numbers.
      const context = yield* Layer.build(Host.natsTransport({ name: config.name, transport: t }, `${config.node}-http`))
      const id = `${config.node}-http-${(yield* Random.nextIntBetween(0, 2 ** 48)).toString(36)}`
      const client = yield* Client.make(Kv.machine, config.cluster, { id }).pipe(Effect.provideContext(context))
      return Backend.of({
        cluster: config.name,
        transport: "nats",
        submit: client.submit,
        servers: Effect.map(handle.status, (s) => [s]),
        config: config.cluster,
        traffic
      })
    })
  )

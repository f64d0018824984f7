/**
 * The `synod` command line (effect's CLI module):
 *
 * - `synod up` — a 3-server cluster in this process with the HTTP API;
 * - `synod serve --config FILE` — one server of a cluster over NATS, with the HTTP API;
 * - `synod kv get|put|del|cas|list` — key-value operations against a running cluster;
 * - `synod status` — per server: leader and ballot, acceptor promise, slotOut and lag.
 *
 * Exit codes: 0 done; 1 the cluster said no (key not found, version conflict) or an
 * unexpected error; 2 wrong arguments or a bad config; 3 the outcome is unknown (the
 * command timed out: it may or may not have been applied); 4 the cluster could not be
 * reached, or `up`/`serve` could not start (e.g. the port is taken).
 *
 * @since 0.1.0
 */
import { Host, HostConfig } from "@synod/node"
import { Kv } from "@synod/kv"
import { Config, Console, Effect, FileSystem, Layer, Logger, Option, References, Result, Schema } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import { FetchHttpClient } from "effect/http"
import { HttpApiClient } from "effect/http-api"
import * as Api from "./Api.ts"
import * as ApiServer from "./ApiServer.ts"
import * as Embedded from "./Embedded.ts"
import * as Lifecycle from "./Lifecycle.ts"
import * as Serve from "./Serve.ts"
import * as Tracing from "./Tracing.ts"
import { version } from "./Version.ts"

/** A failure the CLI reports in one line, with its exit code. */
export class CliFailure extends Schema.TaggedError<CliFailure>()("CliFailure", {
  message: Schema.String,
  exitCode: Schema.Int
}) {
  override get [CliError.userMessage](): string {
    return this.message
  }
}

export const ExitCode = { no: 1, usage: 2, unknown: 3, unreachable: 4 } as const

const fail = (exitCode: number, message: string) => Effect.fail(new CliFailure({ message, exitCode }))

/** Log lines go to stderr, so stdout carries only what a command prints. */
const logging = (level: HostConfig.LogLevel) =>
  Layer.mergeAll(Layer.succeed(Logger.LogToStderr, true), Layer.succeed(References.MinimumLogLevel, level))

/** `--log-level`, else `SYNOD_LOG_LEVEL`: the same flag and spellings for `up` and `serve`. */
const logLevelFlag = Flag.String("log-level").pipe(
  Flag.withDescription("debug, info, warn or error (any case; default info; or SYNOD_LOG_LEVEL)"),
  Flag.withFallbackConfig(Config.String("SYNOD_LOG_LEVEL")),
  Flag.optional
)

/** The log level a `--log-level` value names, or a usage error naming the accepted ones. */
const logLevelOf = (value: Option.Option<string>) => {
  if (Option.isNone(value)) return Effect.succeed(Option.none<HostConfig.LogLevel>())
  const level = HostConfig.parseLogLevel(value.value)
  return level === undefined
    ? fail(
        ExitCode.usage,
        `--log-level (or SYNOD_LOG_LEVEL): expected debug, info, warn or error, got "${value.value}"`
      )
    : Effect.succeed(Option.some(level))
}

/** An error's message, or its tag, followed by its cause's message when that says more. */
const describe = (e: unknown): string => {
  if (!(e instanceof Error)) return String(e)
  const own = e.message !== "" ? e.message : "_tag" in e ? String(e._tag) : e.name
  const cause = e.cause instanceof Error ? e.cause.message : undefined
  return cause !== undefined && cause !== "" && !own.includes(cause) ? `${own}: ${cause}` : own
}

/** `{ [key]: value }` when the option has a value, else `{}`: for optional fields. */
const ifSome = <K extends string, A>(key: K, o: Option.Option<A>): Partial<Record<K, A>> =>
  Option.isSome(o) ? ({ [key]: o.value } as Record<K, A>) : {}

const splitUrls = (s: string): Array<string> =>
  s
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u.length > 0)

// ---------------------------------------------------------------------------------------
// synod up

const usage = (url: string) => {
  const json = `-H 'content-type: application/json'`
  return [
    `Try it from another terminal:`,
    `  curl -X PUT ${url}/kv/greeting ${json} -d '{"value":"hello"}'`,
    `  curl ${url}/kv/greeting`,
    `  curl -X POST ${url}/kv/greeting/cas ${json} -d '{"version":1,"value":"hi"}'`,
    `  curl '${url}/kv?prefix=gr'`,
    `  curl ${url}/status`,
    `or with the CLI:`,
    `  npx -y pnpm@10.34.9 synod kv put greeting hello --url ${url}`,
    `  npx -y pnpm@10.34.9 synod kv get greeting --url ${url}`,
    `  npx -y pnpm@10.34.9 synod status --url ${url}`,
    `OpenAPI document: ${url}${Api.openApiPath}`,
    `Live dashboard: ${url}/ui   Prometheus metrics: ${url}/metrics`,
    `Stop with Ctrl-C.`
  ].join("\n")
}

const up = Command.make(
  "up",
  {
    port: Flag.Int("port").pipe(
      Flag.withDescription("Port of the HTTP API (0: any free port)"),
      Flag.withSchema(Serve.Port),
      Flag.withDefault(8080)
    ),
    host: Flag.String("host").pipe(
      Flag.withDescription("Address the HTTP API listens on"),
      Flag.withDefault("127.0.0.1")
    ),
    nats: Flag.String("nats").pipe(
      Flag.withDescription("NATS URL(s), comma-separated: the servers talk over NATS instead of the in-memory bus"),
      Flag.optional
    ),
    name: Flag.String("name").pipe(
      Flag.withDescription("Cluster name: the NATS subject prefix synod.<name>"),
      Flag.withDefault("synod")
    ),
    logLevel: logLevelFlag
  },
  Effect.fn(function* ({ port, host, nats, name, logLevel }) {
    const level = Option.getOrElse(yield* logLevelOf(logLevel), () => "Info" as const)
    const urls = Option.map(nats, splitUrls)
    const options: Embedded.Options = Option.isSome(urls) ? { nats: urls.value, name } : {}
    yield* Effect.gen(function* () {
      const context = yield* Layer.build(
        ApiServer.layer({ port, host }).pipe(Layer.provide(Embedded.layer(options)))
      ).pipe(Effect.catch((e) => fail(ExitCode.unreachable, `synod up: cannot start: ${describe(e)}`)))
      const url = yield* ApiServer.url.pipe(Effect.provideContext(context))
      const where = Option.isSome(urls)
        ? `over NATS (${urls.value.join(", ")}, cluster "${name}")`
        : "on the in-memory bus"
      yield* Console.log(
        `synod up: 3 servers (s1, s2, s3) in this process ${where}; each hosts a replica, a leader and an acceptor.`
      )
      yield* Console.log(`HTTP API on ${url}\n`)
      yield* Console.log(usage(url))
      return yield* Lifecycle.serve("synod up", { url, transport: Option.isSome(urls) ? "nats" : "memory" })
    }).pipe(
      Effect.scoped,
      Lifecycle.stopped("synod up"),
      Effect.provide(Tracing.layer(process.env)),
      Effect.provide(logging(level))
    )
  })
).pipe(
  Command.withDescription(
    "Run a 3-server cluster in this process (in-memory bus, or NATS with --nats) with the HTTP API on a local port"
  ),
  Command.withExamples([
    { command: "synod up", description: "Cluster on the in-memory bus, HTTP API on http://127.0.0.1:8080" },
    { command: "synod up --port 9000 --nats nats://127.0.0.1:4222", description: "The same over NATS" }
  ])
)

// ---------------------------------------------------------------------------------------
// synod serve

const serve = Command.make(
  "serve",
  {
    config: Flag.String("config").pipe(Flag.withDescription("The server's JSON config file")),
    httpPort: Flag.Int("http-port").pipe(
      Flag.withDescription("Port of the HTTP API (overrides http.port of the config; 0: any free port)"),
      Flag.withSchema(Serve.Port),
      Flag.optional
    ),
    httpHost: Flag.String("http-host").pipe(
      Flag.withDescription("Address the HTTP API listens on (default 127.0.0.1)"),
      Flag.optional
    ),
    node: Flag.String("node").pipe(Flag.withDescription("This server's id (overrides node)"), Flag.optional),
    dataDir: Flag.String("data-dir").pipe(
      Flag.withDescription("Durable state directory (overrides dataDir)"),
      Flag.optional
    ),
    nats: Flag.String("nats").pipe(
      Flag.withDescription("NATS URL(s), comma-separated (overrides transport)"),
      Flag.optional
    ),
    logLevel: logLevelFlag
  },
  Effect.fn(function* (flags) {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(flags.config)
      .pipe(Effect.catch((e) => fail(ExitCode.usage, `cannot read config ${flags.config}: ${describe(e)}`)))
    const raw = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => new CliFailure({ message: `${flags.config} is not JSON: ${describe(e)}`, exitCode: ExitCode.usage })
    })
    const overrides: Serve.Overrides = {
      ...HostConfig.overridesFromEnv(process.env),
      ...ifSome("node", flags.node),
      ...ifSome("dataDir", flags.dataDir),
      ...ifSome("nats", flags.nats),
      ...ifSome("httpPort", flags.httpPort),
      ...ifSome("httpHost", flags.httpHost),
      ...ifSome("logLevel", yield* logLevelOf(flags.logLevel))
    }
    const decoded = Serve.decode(raw, overrides)
    if (Result.isFailure(decoded)) return yield* fail(ExitCode.usage, `${flags.config}: ${decoded.failure.message}`)
    const { host, http } = decoded.success
    yield* Effect.gen(function* () {
      const backend = Serve.backend(host)
      const started = yield* (
        http === undefined
          ? Layer.build(backend).pipe(Effect.as(Option.none<string>()))
          : Layer.build(ApiServer.layer(http).pipe(Layer.provide(backend))).pipe(
              Effect.flatMap((context) => ApiServer.url.pipe(Effect.provideContext(context))),
              Effect.map(Option.some)
            )
      ).pipe(Effect.catch((e) => fail(ExitCode.unreachable, `synod serve: cannot start: ${describe(e)}`)))
      yield* Console.log(
        `synod serve: node ${host.node} of cluster "${host.name}"; ${Option.match(started, {
          onNone: () => "no HTTP API (set http.port or --http-port)",
          onSome: (url) => `HTTP API on ${url}`
        })}`
      )
      return yield* Lifecycle.serve("synod serve", {
        node: host.node,
        cluster: host.name,
        ...(Option.isSome(started) ? { url: started.value } : {})
      })
    }).pipe(
      Effect.scoped,
      Lifecycle.stopped("synod serve"),
      Effect.provide(Tracing.layer(process.env)),
      Effect.provide(Host.logging(host))
    )
  })
).pipe(
  Command.withDescription(
    "Run one server of a cluster over NATS (roles, data dir and NATS from the config), with the HTTP API"
  ),
  Command.withExamples([
    { command: "synod serve --config s1.json", description: "The server the config names" },
    { command: "synod serve --config s1.json --http-port 8081", description: "With the HTTP API on port 8081" }
  ])
)

// ---------------------------------------------------------------------------------------
// the HTTP client side: synod kv, synod status

const urlFlag = Flag.String("url").pipe(
  Flag.withDescription("HTTP API of the cluster; several comma-separated URLs are tried in order until one answers"),
  Flag.withFallbackConfig(Config.String("SYNOD_URL")),
  Flag.withDefault("http://127.0.0.1:8080")
)

type ApiClient = HttpApiClient.ForApi<typeof Api.Api>

const clientFor = (baseUrl: string) =>
  HttpApiClient.make(Api.Api, { baseUrl }).pipe(Effect.provide(FetchHttpClient.layer))

/** Why a request failed, as the CLI reports it. */
const explain = (url: string, error: unknown): CliFailure => {
  const tag = typeof error === "object" && error !== null && "_tag" in error ? error._tag : undefined
  switch (tag) {
    case "KeyNotFound":
    case "VersionConflict":
      return new CliFailure({ message: (error as Error).message, exitCode: ExitCode.no })
    case "BadRequest":
      return new CliFailure({ message: (error as Api.BadRequest).message, exitCode: ExitCode.usage })
    case "OutcomeUnknown":
      return new CliFailure({
        message: `outcome unknown: ${(error as Api.OutcomeUnknown).message}`,
        exitCode: ExitCode.unknown
      })
    case "HttpClientError":
      return new CliFailure({
        message: `cannot reach the cluster at ${url}: ${(error as Error).message}`,
        exitCode: ExitCode.unreachable
      })
    default:
      return new CliFailure({
        message: `unexpected answer from ${url}: ${error instanceof Error ? error.message : String(error)}`,
        exitCode: ExitCode.no
      })
  }
}

/**
 * Runs `f` against the first URL that can be reached. Only a request that never got
 * through is tried on the next URL: one that timed out may have been applied.
 */
const withCluster = <A, E>(urls: string, f: (client: ApiClient) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const list = splitUrls(urls)
    if (list.length === 0) return yield* fail(ExitCode.usage, "--url: no URL given")
    let last: CliFailure | undefined
    for (const url of list) {
      const client = yield* clientFor(url)
      const r = yield* Effect.result(f(client).pipe(Effect.mapError((e) => explain(url, e))))
      if (Result.isSuccess(r)) return r.success
      last = r.failure
      if (last.exitCode !== ExitCode.unreachable) break
    }
    return yield* Effect.fail(last!)
  })

const print = (value: unknown) => Console.log(JSON.stringify(value))

const kv = Command.make("kv").pipe(
  Command.withSharedFlags({ url: urlFlag }),
  Command.withDescription("Key-value operations against a running cluster (through its HTTP API)")
)

const keyArg = Argument.String("key").pipe(Argument.withDescription("The key"), Argument.withSchema(Kv.Key))
const valueArg = Argument.String("value").pipe(Argument.withDescription("The value"), Argument.withSchema(Kv.Value))

const get = Command.make("get", { key: keyArg }, ({ key }) =>
  Effect.flatMap(kv, ({ url }) => withCluster(url, (c) => c.kv.get({ params: { key } }))).pipe(Effect.flatMap(print))
).pipe(Command.withDescription("Print a key's value and version (exit 1 when absent)"))

const put = Command.make("put", { key: keyArg, value: valueArg }, ({ key, value }) =>
  Effect.flatMap(kv, ({ url }) => withCluster(url, (c) => c.kv.put({ params: { key }, payload: { value } }))).pipe(
    Effect.flatMap(print)
  )
).pipe(Command.withDescription("Write a key; prints its new version"))

const del = Command.make("del", { key: keyArg }, ({ key }) =>
  Effect.flatMap(kv, ({ url }) => withCluster(url, (c) => c.kv.del({ params: { key } }))).pipe(Effect.flatMap(print))
).pipe(Command.withDescription("Delete a key"))

const cas = Command.make(
  "cas",
  {
    key: keyArg,
    version: Argument.Int("version").pipe(
      Argument.withDescription("The version the key must have (0: it must be absent)"),
      Argument.withSchema(Kv.Version)
    ),
    value: valueArg
  },
  ({ key, version, value }) =>
    Effect.flatMap(kv, ({ url }) =>
      withCluster(url, (c) => c.kv.cas({ params: { key }, payload: { version, value } }))
    ).pipe(Effect.flatMap(print))
).pipe(Command.withDescription("Compare-and-set: write only if the key's version matches (exit 1 on a conflict)"))

const list = Command.make(
  "list",
  {
    prefix: Argument.String("prefix").pipe(
      Argument.withDescription("Key prefix (default: all keys)"),
      Argument.optional
    ),
    limit: Flag.Int("limit").pipe(
      Flag.withDescription(`Most entries to print (1-${Kv.maxListLimit})`),
      Flag.withSchema(Kv.Limit),
      Flag.withDefault(100)
    ),
    after: Flag.String("after").pipe(
      Flag.withDescription("Only keys after this one: the `next` of the previous page"),
      Flag.optional
    )
  },
  ({ prefix, limit, after }) =>
    Effect.flatMap(kv, ({ url }) =>
      withCluster(url, (c) =>
        c.kv.list({
          query: {
            limit,
            ...(Option.isSome(prefix) ? { prefix: prefix.value } : {}),
            ...(Option.isSome(after) ? { after: after.value } : {})
          }
        })
      )
    ).pipe(Effect.flatMap(print))
).pipe(Command.withDescription("List keys by prefix, in key order"))

// ---------------------------------------------------------------------------------------
// synod status

export interface Row extends Api.ServerStatus {
  /** How many slots this replica is behind the most advanced one seen. */
  readonly lag?: number
}

/** Merges the answers of several processes: one row per server id, with lag. */
export const merge = (answers: ReadonlyArray<Api.Status>): Array<Row> => {
  const byId = new Map<string, Api.ServerStatus>()
  for (const a of answers) for (const s of a.servers) byId.set(s.id, s)
  const servers = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const top = Math.max(0, ...servers.map((s) => s.replica?.slotOut ?? 0))
  return servers.map((s) => (s.replica === undefined ? s : { ...s, lag: top - s.replica.slotOut }))
}

const ballot = (b: { readonly round: number; readonly leader: string }) =>
  b.round === 0 && b.leader === "" ? "⊥" : `${b.round}.${b.leader}`

export const renderStatus = (rows: ReadonlyArray<Row>): string => {
  const active = rows
    .filter((r) => r.leader?.active === true)
    .sort((a, b) => b.leader!.ballot.round - a.leader!.ballot.round || (a.id < b.id ? 1 : -1))[0]
  const head = active
    ? `active leader: ${active.id} at ballot ${ballot(active.leader!.ballot)}`
    : "active leader: none seen (an election may be under way)"
  const table = [
    ["server", "leader", "ballot", "promised", "accepted", "gcBelow", "slotOut", "lag", "keys", "revision"],
    ...rows.map((r) => [
      r.id,
      r.leader === undefined ? "-" : r.leader.active ? "active" : "passive",
      r.leader === undefined ? "-" : ballot(r.leader.ballot),
      r.acceptor === undefined ? "-" : ballot(r.acceptor.promised),
      r.acceptor === undefined ? "-" : String(r.acceptor.accepted),
      r.acceptor === undefined ? "-" : String(r.acceptor.watermark),
      r.replica === undefined ? "-" : String(r.replica.slotOut),
      r.lag === undefined ? "-" : String(r.lag),
      r.replica === undefined ? "-" : String(r.replica.keys),
      r.replica === undefined ? "-" : String(r.replica.revision)
    ])
  ]
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)))
  const lines = table.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join("  ")
      .trimEnd()
  )
  return [head, ...lines].join("\n")
}

const status = Command.make(
  "status",
  {
    url: Flag.String("url").pipe(
      Flag.withDescription("HTTP API(s) to ask, comma-separated: every process of a cluster started with synod serve"),
      Flag.withFallbackConfig(Config.String("SYNOD_URL")),
      Flag.withDefault("http://127.0.0.1:8080")
    ),
    json: Flag.Boolean("json").pipe(Flag.withDescription("Print JSON instead of a table"), Flag.withDefault(false))
  },
  Effect.fn(function* ({ url, json }) {
    const urls = splitUrls(url)
    if (urls.length === 0) return yield* fail(ExitCode.usage, "--url: no URL given")
    const answers = yield* Effect.forEach(
      urls,
      (u) =>
        Effect.flatMap(clientFor(u), (c) => c.status()).pipe(
          Effect.mapError((e) => explain(u, e)),
          Effect.result
        ),
      { concurrency: "unbounded" }
    )
    const ok = answers.filter(Result.isSuccess).map((r) => r.success)
    const failed = answers.filter(Result.isFailure).map((r) => r.failure)
    if (ok.length === 0) return yield* Effect.fail(failed[0]!)
    const rows = merge(ok)
    if (json) {
      yield* print({ servers: rows, unreachable: failed.map((f) => f.message) })
    } else {
      yield* Console.log(renderStatus(rows))
      for (const f of failed) yield* Console.error(f.message)
    }
  })
).pipe(
  Command.withDescription(
    "Per server: leader (active or not) and its ballot, acceptor promise and GC watermark, replica slotOut and lag"
  )
)

// ---------------------------------------------------------------------------------------

export const synod = Command.make("synod").pipe(
  Command.withDescription("synod: a replicated key-value and coordination service on Multi-Paxos"),
  Command.withSubcommands([up, serve, kv.pipe(Command.withSubcommands([get, put, del, cas, list])), status])
)

export const run = Command.run(synod, { version })

/**
 * The `synod` command line (effect's CLI module):
 *
 * - `synod up` — a 3-server cluster in this process with the HTTP API;
 * - `synod serve --config FILE` — one server of a cluster over NATS, with the HTTP API;
 * - `synod init` — the config files of an N-server cluster for `synod serve`;
 * - `synod kv get|put|del|cas|list|txn|watch` — key-value operations, transactions and
 *   watches against a running cluster;
 * - `synod snapshot save|restore FILE` — back up a store, seed a new cluster from a backup;
 * - `synod lease grant|keepalive|revoke|list` — leases; `synod lock NAME -- command…` runs a
 *   command while holding a lock; `synod elect NAME VALUE` campaigns and leads until stopped;
 * - `synod status` — per server: leader and ballot, acceptor promise, slotOut and lag;
 * - `synod nats-config` — a nats-server authorization block for a cluster (`NatsConfig`).
 *
 * Exit codes: 0 done; 1 the cluster said no (key not found, version conflict) or an
 * unexpected error; 2 wrong arguments or a bad config; 3 the outcome is unknown (the
 * command timed out: it may or may not have been applied); 4 the cluster could not be
 * reached, or `up`/`serve` could not start (e.g. the port is taken); 5 the API refused the
 * credentials (no token, an unknown one, a read-only token for a write, a Host it does
 * not answer to).
 *
 * The HTTP commands send a bearer token when one is given: `--token-file FILE`, else the
 * file named by `SYNOD_TOKEN_FILE`, else the token itself in `SYNOD_TOKEN` (never on the
 * command line, where other users of the machine could read it).
 *
 * @since 0.1.0
 */
import { spawn } from "node:child_process"
import { createReadStream, lstatSync, realpathSync, statSync } from "node:fs"
import { randomBytes } from "node:crypto"
import { Address, Configuration } from "@synod/core"
import { AtomicFile, Host, HostConfig } from "@synod/node"
import { NatsConfig } from "@synod/transport-nats"
import { Kv, KvLease } from "@synod/kv"
import { Config, Console, Effect, FileSystem, Layer, Logger, Option, References, Result, Schema, Stream } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient } from "effect/http-api"
import * as Api from "./Api.ts"
import * as ApiServer from "./ApiServer.ts"
import * as Backup from "./Backup.ts"
import * as Embedded from "./Embedded.ts"
import * as Lifecycle from "./Lifecycle.ts"
import * as Init from "./Init.ts"
import * as LeaseClient from "./LeaseClient.ts"
import * as Lock from "./Lock.ts"
import * as Serve from "./Serve.ts"
import * as Tracing from "./Tracing.ts"
import { version } from "./Version.ts"
import * as WatchClient from "./WatchClient.ts"

/** A failure the CLI reports in one line, with its exit code. */
export class CliFailure extends Schema.TaggedError<CliFailure>()("CliFailure", {
  message: Schema.String,
  exitCode: Schema.Int
}) {
  override get [CliError.userMessage](): string {
    return this.message
  }
}

export const ExitCode = { no: 1, usage: 2, unknown: 3, unreachable: 4, denied: 5 } as const

const fail = (exitCode: number, message: string) => Effect.fail(new CliFailure({ message, exitCode }))

/** Most bytes of a config, token or transaction file the CLI reads (`readBounded`). */
export const maxInputBytes = 1024 * 1024
/** Most bytes of a backup file `snapshot restore` reads: about the longest string Node can hold. */
export const maxBackupBytes = 512 * 1024 * 1024

/**
 * `file`'s text (`-`: standard input), read up to `maxBytes` and refused past them with
 * the usage exit code, naming `what`: `/dev/zero` or an endless pipe given as a file took
 * gigabytes before. `regular`: only a regular file is read.
 */
const readBounded = (file: string, maxBytes: number, what: string, regular = false) =>
  Effect.gen(function* () {
    const name = file === "-" ? "stdin" : file
    const path = file === "-" ? "/dev/stdin" : file
    if (regular) {
      const isFile = yield* Effect.try({
        try: () => statSync(path).isFile(),
        catch: (e) =>
          new CliFailure({ message: `cannot read ${what} ${name}: ${describe(e)}`, exitCode: ExitCode.usage })
      })
      if (!isFile) return yield* fail(ExitCode.usage, `cannot read ${what} ${name}: not a regular file`)
    }
    const read = yield* Effect.callback<Buffer | "over", Error>((resume) => {
      const chunks: Array<Buffer> = []
      let bytes = 0
      const stream = createReadStream(path)
      stream.on("data", (chunk) => {
        const b = chunk as Buffer
        bytes += b.length
        if (bytes > maxBytes) {
          stream.destroy()
          resume(Effect.succeed("over"))
          return
        }
        chunks.push(b)
      })
      stream.on("error", (e) => resume(Effect.fail(e)))
      stream.on("end", () => resume(Effect.succeed(Buffer.concat(chunks))))
      return Effect.sync(() => stream.destroy())
    }).pipe(Effect.catch((e) => fail(ExitCode.usage, `cannot read ${what} ${name}: ${describe(e)}`)))
    if (read === "over") return yield* fail(ExitCode.usage, `${what} ${name} is over ${maxBytes} bytes`)
    return read.toString("utf8")
  })

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
    `or with the CLI (node_modules/.bin/synod, or npx -y pnpm@10.34.9 exec synod):`,
    `  synod kv put greeting hello --url ${url}`,
    `  synod kv get greeting --url ${url}`,
    `  synod status --url ${url}`,
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
    // the API's tokens and host names come from the environment only (issue 14)
    const security = Serve.httpSecurityFromEnv(process.env)
    if (Result.isFailure(security)) return yield* fail(ExitCode.usage, `synod up: ${security.failure.message}`)
    const { httpTokens, httpHosts } = security.success
    const exposed = Serve.exposedWithoutHosts(host, httpHosts)
    if (exposed !== undefined)
      return yield* fail(ExitCode.usage, `synod up: ${exposed.replace("http.hosts", "SYNOD_HTTP_HOSTS")}`)
    yield* Effect.gen(function* () {
      const api = {
        port,
        host,
        ...(httpTokens ? { tokens: httpTokens } : {}),
        ...(httpHosts ? { hosts: httpHosts } : {})
      }
      const context = yield* Layer.build(ApiServer.layer(api).pipe(Layer.provide(Embedded.layer(options)))).pipe(
        Effect.catch((e) => fail(ExitCode.unreachable, `synod up: cannot start: ${describe(e)}`))
      )
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
    const text = yield* readBounded(flags.config, maxInputBytes, "config")
    const raw = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => new CliFailure({ message: `${flags.config} is not JSON: ${describe(e)}`, exitCode: ExitCode.usage })
    })
    const security = Serve.httpSecurityFromEnv(process.env)
    if (Result.isFailure(security)) return yield* fail(ExitCode.usage, security.failure.message)
    const overrides: Serve.Overrides = {
      ...HostConfig.overridesFromEnv(process.env),
      ...security.success,
      ...ifSome("node", flags.node),
      ...ifSome("dataDir", flags.dataDir),
      ...ifSome("nats", flags.nats),
      ...ifSome("httpPort", flags.httpPort),
      ...ifSome("httpHost", flags.httpHost),
      ...ifSome("logLevel", yield* logLevelOf(flags.logLevel))
    }
    const decoded = Serve.decode(raw, overrides)
    if (Result.isFailure(decoded)) return yield* fail(ExitCode.usage, `${flags.config}: ${decoded.failure.message}`)
    const { host, http, tracing } = decoded.success
    // TLS files read and checked before anything starts (issue 14)
    const api =
      http === undefined
        ? undefined
        : yield* Serve.apiOptions(http).pipe(Effect.catch((e) => fail(ExitCode.usage, `${flags.config}: ${e.message}`)))
    yield* Effect.gen(function* () {
      const backend = Serve.backend(host)
      const started = yield* (
        api === undefined
          ? Layer.build(backend).pipe(Effect.as(Option.none<string>()))
          : Layer.build(ApiServer.layer(api).pipe(Layer.provide(backend))).pipe(
              Effect.flatMap((context) => ApiServer.url.pipe(Effect.provideContext(context))),
              // the server's address says http: say https when it serves TLS
              Effect.map((url) => Option.some(api.tls === undefined ? url : url.replace(/^http:/, "https:")))
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
      Effect.provide(Tracing.layer(process.env, { instance: host.node, config: tracing })),
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
// synod init

const init = Command.make(
  "init",
  {
    servers: Flag.Int("servers").pipe(
      Flag.withDescription(`How many servers (1-${Init.maxServers}): s1..sN, each an acceptor, a leader and a replica`),
      Flag.withSchema(Init.Servers),
      Flag.withDefault(3)
    ),
    nats: Flag.String("nats").pipe(
      Flag.withDescription("NATS URL(s) the servers connect to, comma-separated"),
      Flag.withDefault("nats://127.0.0.1:4222")
    ),
    dataDir: Flag.String("data-dir").pipe(
      Flag.withDescription("Data root: server sK keeps its state in <data-dir>/sK (relative: to where it runs)"),
      Flag.withDefault("data")
    ),
    httpPort: Flag.Int("http-port").pipe(
      Flag.withDescription("HTTP port of s1; sK listens on this + K - 1"),
      Flag.withSchema(Serve.Port),
      Flag.withDefault(8081)
    ),
    httpHost: Flag.String("http-host").pipe(
      Flag.withDescription("Address the HTTP APIs listen on (default 127.0.0.1)"),
      Flag.optional
    ),
    name: Flag.String("name").pipe(
      Flag.withDescription("Cluster name: the NATS subject prefix synod.<name>"),
      Flag.withDefault("synod")
    ),
    dir: Flag.String("dir").pipe(Flag.withDescription("Where to write s1.json..sN.json"), Flag.withDefault(".")),
    force: Flag.Boolean("force").pipe(Flag.withDescription("Overwrite existing files"), Flag.withDefault(false))
  },
  Effect.fn(function* (flags) {
    const fs = yield* FileSystem.FileSystem
    const made = Init.configs({
      servers: flags.servers,
      name: flags.name,
      nats: splitUrls(flags.nats),
      dataRoot: flags.dataDir,
      httpPort: flags.httpPort,
      ...ifSome("httpHost", flags.httpHost)
    })
    if (Result.isFailure(made)) return yield* fail(ExitCode.usage, `synod init: ${made.failure}`)
    const files = made.success
    const path = (f: Init.File) => Init.pathIn(flags.dir, f)
    if (!flags.force) {
      for (const f of files) {
        if (yield* fs.exists(path(f)).pipe(Effect.orElseSucceed(() => false)))
          return yield* fail(ExitCode.usage, `synod init: ${path(f)} exists (--force overwrites it)`)
      }
    }
    yield* AtomicFile.makeDirectory(flags.dir).pipe(
      Effect.catch((e) => fail(ExitCode.usage, `synod init: cannot create ${flags.dir}: ${describe(e)}`))
    )
    for (const f of files) {
      yield* fs
        .writeFileString(path(f), `${JSON.stringify(f.config, null, 2)}\n`)
        .pipe(Effect.catch((e) => fail(ExitCode.usage, `synod init: cannot write ${path(f)}: ${describe(e)}`)))
    }
    yield* Console.log(
      `synod init: wrote ${files.map(path).join(", ")}: cluster "${flags.name}" of ${files.length} server(s) over ${flags.nats}\n`
    )
    yield* Console.log(Init.nextSteps(flags.dir, files))
  })
).pipe(
  Command.withDescription("Write the config files of an N-server cluster over NATS, one per synod serve process"),
  Command.withExamples([
    { command: "synod init", description: "s1.json..s3.json: NATS on 127.0.0.1:4222, data/sK, HTTP ports 8081-8083" },
    {
      command: "synod init --servers 5 --nats nats://10.0.0.5:4222 --data-dir /var/lib/synod --http-port 9001",
      description: "Five servers"
    }
  ])
)

// ---------------------------------------------------------------------------------------
// the HTTP client side: synod kv, synod status

const urlFlag = Flag.String("url").pipe(
  Flag.withDescription("HTTP API of the cluster; several comma-separated URLs are tried in order until one answers"),
  Flag.withFallbackConfig(Config.String("SYNOD_URL")),
  Flag.withDefault("http://127.0.0.1:8080")
)

/** `--token-file`: the API's bearer token is read from a file (or env), never given on the command line. */
const tokenFileFlag = Flag.String("token-file").pipe(
  Flag.withDescription(
    "File holding the HTTP API's bearer token (else the file in SYNOD_TOKEN_FILE, or the token in SYNOD_TOKEN)"
  ),
  Flag.withFallbackConfig(Config.String("SYNOD_TOKEN_FILE")),
  Flag.optional
)

/** The bearer token to send: from `file`, else `SYNOD_TOKEN`; none when neither is set. */
const readToken = Effect.fnUntraced(function* (file: Option.Option<string>) {
  if (Option.isNone(file)) {
    const env = process.env.SYNOD_TOKEN?.trim()
    return env === undefined || env === "" ? Option.none<string>() : Option.some(env)
  }
  const text = yield* readBounded(file.value, maxInputBytes, "the token file")
  const token = text.trim()
  if (token === "" || /\s/.test(token) || token.length > 4096) {
    return yield* fail(ExitCode.usage, `the token file ${file.value} must hold one token on one line`)
  }
  return Option.some(token)
})

type ApiClient = HttpApiClient.ForApi<typeof Api.Api>

const clientFor = (baseUrl: string, token: Option.Option<string> = Option.none()) =>
  HttpApiClient.make(Api.Api, {
    baseUrl,
    ...(Option.isSome(token)
      ? { transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(token.value)) }
      : {})
  }).pipe(Effect.provide(FetchHttpClient.layer))

/** Why a request failed, as the CLI reports it. */
const explain = (url: string, error: unknown): CliFailure => {
  const tag = typeof error === "object" && error !== null && "_tag" in error ? error._tag : undefined
  switch (tag) {
    case "KeyNotFound":
    case "VersionConflict":
    case "RestoreRefused":
    case "Compacted":
    case "NoReplica":
    case "NotReady":
    case "NotLeading":
    case "TransferTimedOut":
    case "LeaseNotFound":
    case "LeaseRefused":
    case "LeaseLost":
    case "QueueTooLong":
    case "LockRefused":
      return new CliFailure({ message: (error as Error).message, exitCode: ExitCode.no })
    case "Unreachable":
      return new CliFailure({ message: (error as Error).message, exitCode: ExitCode.unreachable })
    case "BadRequest":
      return new CliFailure({ message: (error as Api.BadRequest).message, exitCode: ExitCode.usage })
    case "Unauthorized":
    case "Forbidden":
    case "HostNotAllowed":
      return new CliFailure({
        message: `${url} refused the request: ${(error as Error).message}${tag === "Unauthorized" ? " (give the token with --token-file, SYNOD_TOKEN_FILE or SYNOD_TOKEN)" : ""}`,
        exitCode: ExitCode.denied
      })
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
/** `--url`'s comma-separated list, each an http:// or https:// URL, or a usage failure naming the one that is not. */
const httpUrls = (urls: string) =>
  Effect.gen(function* () {
    const list = splitUrls(urls)
    if (list.length === 0) return yield* fail(ExitCode.usage, "--url: no URL given")
    for (const url of list) {
      const protocol = URL.canParse(url) ? new URL(url).protocol : undefined
      if (protocol !== "http:" && protocol !== "https:") {
        return yield* fail(ExitCode.usage, `--url: ${url.slice(0, 200)} is not an http:// or https:// URL`)
      }
    }
    return list
  })

const withCluster = <A, E>(
  urls: string,
  tokenFile: Option.Option<string>,
  f: (client: ApiClient) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    const list = yield* httpUrls(urls)
    const token = yield* readToken(tokenFile)
    let last: CliFailure | undefined
    for (const url of list) {
      const client = yield* clientFor(url, token)
      const r = yield* Effect.result(f(client).pipe(Effect.mapError((e) => explain(url, e))))
      if (Result.isSuccess(r)) return r.success
      last = r.failure
      if (last.exitCode !== ExitCode.unreachable) break
    }
    return yield* Effect.fail(last!)
  })

const print = (value: unknown) => Console.log(JSON.stringify(value))

const kv = Command.make("kv").pipe(
  Command.withSharedFlags({ url: urlFlag, tokenFile: tokenFileFlag }),
  Command.withDescription("Key-value operations against a running cluster (through its HTTP API)")
)

const keyArg = Argument.String("key").pipe(Argument.withDescription("The key"), Argument.withSchema(Kv.Key))
const valueArg = Argument.String("value").pipe(Argument.withDescription("The value"), Argument.withSchema(Kv.Value))

const serializableFlag = Flag.Boolean("serializable").pipe(
  Flag.withDescription(
    "Read the server's replica at once, without the log: possibly stale (the answer says so, with the revision read)"
  ),
  Flag.withDefault(false)
)

const consistencyFlag = Flag.Literals("consistency", ["linearizable", "log", "serializable"]).pipe(
  Flag.withDescription(
    "linearizable (default): a read index, no slot; log: the read is a command in the log; serializable: the server's replica at once, possibly stale"
  ),
  Flag.optional
)

/** The consistency a read asks for: `--consistency`, or `--serializable`; absent, the server's default (linearizable). */
const readQuery = (consistency: Option.Option<Api.Consistency>, serializable: boolean) =>
  serializable
    ? { consistency: "serializable" as const }
    : Option.isSome(consistency)
      ? { consistency: consistency.value }
      : {}

const get = Command.make(
  "get",
  { key: keyArg, serializable: serializableFlag, consistency: consistencyFlag },
  ({ key, serializable, consistency }) =>
    Effect.flatMap(kv, ({ url, tokenFile }) =>
      withCluster(url, tokenFile, (c) => c.kv.get({ params: { key }, query: readQuery(consistency, serializable) }))
    ).pipe(Effect.flatMap(print))
).pipe(Command.withDescription("Print a key's value and version (exit 1 when absent)"))

const leaseFlag = Flag.Int("lease").pipe(
  Flag.withDescription("Attach the key to this lease (synod lease grant): it is deleted when the lease ends"),
  Flag.optional
)

const put = Command.make("put", { key: keyArg, value: valueArg, lease: leaseFlag }, ({ key, value, lease }) =>
  Effect.flatMap(kv, ({ url, tokenFile }) =>
    withCluster(url, tokenFile, (c) => c.kv.put({ params: { key }, payload: { value, ...ifSome("lease", lease) } }))
  ).pipe(Effect.flatMap(print))
).pipe(Command.withDescription("Write a key (with --lease: attached to a lease); prints its new version"))

const del = Command.make("del", { key: keyArg }, ({ key }) =>
  Effect.flatMap(kv, ({ url, tokenFile }) => withCluster(url, tokenFile, (c) => c.kv.del({ params: { key } }))).pipe(
    Effect.flatMap(print)
  )
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
    Effect.flatMap(kv, ({ url, tokenFile }) =>
      withCluster(url, tokenFile, (c) => c.kv.cas({ params: { key }, payload: { version, value } }))
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
    ),
    serializable: serializableFlag,
    consistency: consistencyFlag
  },
  ({ prefix, limit, after, serializable, consistency }) =>
    Effect.flatMap(kv, ({ url, tokenFile }) =>
      withCluster(url, tokenFile, (c) =>
        c.kv.list({
          query: {
            ...readQuery(consistency, serializable),
            limit,
            ...(Option.isSome(prefix) ? { prefix: prefix.value } : {}),
            ...(Option.isSome(after) ? { after: after.value } : {})
          }
        })
      )
    ).pipe(Effect.flatMap(print))
).pipe(Command.withDescription("List keys by prefix, in key order"))

/** Reads a JSON file, or stdin for `-`; a CLI failure (exit 2) naming the file and what is wrong. */
const readJson = (file: string) =>
  Effect.gen(function* () {
    const name = file === "-" ? "stdin" : file
    const text = yield* readBounded(file, maxInputBytes, "the file")
    return yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => new CliFailure({ message: `${name} is not JSON: ${describe(e)}`, exitCode: ExitCode.usage })
    })
  })

const decodeTxn = Schema.decodeUnknownResult(Api.TxnBody, { onExcessProperty: "error", errors: "all" })

const txn = Command.make(
  "txn",
  {
    file: Argument.String("file").pipe(
      Argument.withDescription(
        'The transaction as JSON: {"compare": [...], "success": [...], "failure": [...]}; - for stdin'
      ),
      Argument.withDefault("-")
    )
  },
  ({ file }) =>
    Effect.gen(function* () {
      const raw = yield* readJson(file)
      const body = decodeTxn(raw)
      if (Result.isFailure(body)) {
        return yield* fail(
          ExitCode.usage,
          `${file === "-" ? "stdin" : file}: invalid transaction: ${body.failure.message}`
        )
      }
      const { url, tokenFile } = yield* kv
      return yield* withCluster(url, tokenFile, (c) => c.txn({ payload: body.success }))
    }).pipe(Effect.flatMap(print))
).pipe(
  Command.withDescription(
    "A transaction from a JSON file (or stdin): if every comparison holds, the success operations, else the failure ones, atomically; prints {succeeded, results, revision}"
  ),
  Command.withExamples([
    {
      command: `echo '{"compare":[{"key":"lock","exists":false}],"success":[{"op":"put","key":"lock","value":"me"}]}' | synod kv txn`,
      description: "Take a lock only if nobody holds it"
    },
    { command: "synod kv txn txn.json", description: "The transaction in txn.json" }
  ])
)

const watchCommand = Command.make(
  "watch",
  {
    prefix: Argument.String("prefix").pipe(
      Argument.withDescription("Watch the keys under this prefix (default: every key)"),
      Argument.optional
    ),
    key: Flag.String("key").pipe(
      Flag.withDescription("Watch this key only (instead of a prefix)"),
      Flag.withSchema(Kv.Key),
      Flag.optional
    ),
    fromRevision: Flag.Int("from-revision").pipe(
      Flag.withDescription("The first revision to report (default: the next write)"),
      Flag.withSchema(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1, { message: "a revision is 1 or more" }))),
      Flag.optional
    ),
    count: Flag.Int("count").pipe(
      Flag.withDescription("Stop after this many events (default: run until interrupted)"),
      Flag.withSchema(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1, { message: "--count is 1 or more" }))),
      Flag.optional
    ),
    progress: Flag.Boolean("progress").pipe(
      Flag.withDescription('Also print progress reports: {"progress": revision}'),
      Flag.withDefault(false)
    )
  },
  Effect.fn(function* ({ prefix, key, fromRevision, count, progress }) {
    const { url, tokenFile } = yield* kv
    if (Option.isSome(prefix) && Option.isSome(key))
      return yield* fail(ExitCode.usage, "give a prefix or --key, not both")
    const urls = yield* httpUrls(url)
    const token = yield* readToken(tokenFile)
    const stream = WatchClient.messages({
      urls,
      ...ifSome("token", token),
      ...ifSome("prefix", prefix),
      ...ifSome("key", key),
      ...ifSome("fromRevision", fromRevision)
    }).pipe(Stream.filter((m) => progress || m._tag === "Event"))
    yield* (Option.isSome(count) ? Stream.take(stream, count.value) : stream).pipe(
      Stream.runForEach((m) => print(m._tag === "Event" ? m.event : { progress: m.revision })),
      Effect.catchTags({
        Compacted: (e) => fail(ExitCode.no, e.message),
        BadRequest: (e) => fail(ExitCode.usage, e.message),
        WatchUnreachable: (e) => fail(ExitCode.unreachable, e.message)
      })
    )
  })
).pipe(
  Command.withDescription(
    "Print the writes to a prefix (or --key) as JSON lines, in revision order, from --from-revision on; moves to the next --url if a server goes away"
  ),
  Command.withExamples([
    { command: "synod kv watch config/", description: "Every write under config/ from now on" },
    { command: "synod kv watch --key lock --from-revision 7", description: "The writes to lock from revision 7" }
  ])
)

// ---------------------------------------------------------------------------------------
// synod lease, synod lock, synod elect

const lease = Command.make("lease").pipe(
  Command.withSharedFlags({ url: urlFlag, tokenFile: tokenFileFlag }),
  Command.withDescription(
    "Leases: a TTL kept alive by its holder; keys attached to one (synod kv put --lease) are deleted when it ends"
  )
)

const ttlArg = Argument.Finite("ttl").pipe(
  Argument.withDescription(`Seconds the lease lives without a keep-alive (${0.1} to 86400)`)
)
const leaseIdArg = Argument.Int("id").pipe(Argument.withDescription("The lease id"))

const leaseGrant = Command.make("grant", { ttl: ttlArg }, ({ ttl }) =>
  Effect.flatMap(lease, ({ url, tokenFile }) =>
    withCluster(url, tokenFile, (c) => c.lease.grant({ payload: { ttl } }))
  ).pipe(Effect.flatMap(print))
).pipe(
  Command.withDescription("Grant a lease; prints {id, ttl}"),
  Command.withExamples([{ command: "synod lease grant 10", description: "A lease of 10 seconds" }])
)

const leaseKeepAlive = Command.make("keepalive", { id: leaseIdArg }, ({ id }) =>
  Effect.flatMap(lease, ({ url, tokenFile }) =>
    withCluster(url, tokenFile, (c) => c.lease.keepalive({ params: { id } }))
  ).pipe(Effect.flatMap(print))
).pipe(Command.withDescription("Keep a lease alive once: its whole TTL starts again (exit 1 if it ended)"))

const leaseRevoke = Command.make("revoke", { id: leaseIdArg }, ({ id }) =>
  Effect.flatMap(lease, ({ url, tokenFile }) =>
    withCluster(url, tokenFile, (c) => c.lease.revoke({ params: { id } }))
  ).pipe(Effect.flatMap(print))
).pipe(Command.withDescription("Revoke a lease now and delete its keys; prints {id, deleted, revision}"))

const leaseList = Command.make(
  "list",
  {
    limit: Flag.Int("limit").pipe(
      Flag.withDescription(`Most leases to print (1-${KvLease.maxListLimit})`),
      Flag.withSchema(KvLease.ListLimit),
      Flag.withDefault(KvLease.maxListLimit)
    ),
    after: Flag.Int("after").pipe(
      Flag.withDescription("Only leases of a higher id: the last id of the previous page"),
      Flag.withSchema(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0, { message: "--after is a lease id" }))),
      Flag.optional
    )
  },
  ({ limit, after }) =>
    Effect.flatMap(lease, ({ url, tokenFile }) =>
      withCluster(url, tokenFile, (c) =>
        c.lease.list({ query: { limit, ...(Option.isSome(after) ? { after: after.value } : {}) } })
      )
    ).pipe(Effect.flatMap(print))
).pipe(
  Command.withDescription(
    "List the leases alive, in id order: {leases: [{id, ttl, keys}], more}; with more, ask again with --after the last id"
  ),
  Command.withExamples([
    { command: "synod lease list --limit 10", description: "The first ten leases" },
    { command: "synod lease list --after 42", description: "The next page, after lease 42" }
  ])
)

const recipeTtlFlag = Flag.Finite("ttl").pipe(
  Flag.withDescription(
    "Seconds of the lease behind it (default 10): if this process dies, the lock is released within about that"
  ),
  Flag.withDefault(10)
)

/** A lease for `synod lock`/`synod elect`, kept alive until the scope closes (then revoked). */
const recipeLease = (url: string, tokenFile: Option.Option<string>, ttl: number) =>
  Effect.gen(function* () {
    const urls = splitUrls(url)
    if (urls.length === 0) return yield* fail(ExitCode.usage, "--url: no URL given")
    if (!(ttl >= 0.1 && ttl <= 86400)) return yield* fail(ExitCode.usage, "--ttl is in seconds, between 0.1 and 86400")
    const token = yield* readToken(tokenFile)
    const connection = { urls, ...ifSome("token", token) }
    const held = yield* LeaseClient.grant({ ...connection, ttlMs: Math.round(ttl * 1000) }).pipe(
      Effect.mapError((e) => explain(urls[0]!, e))
    )
    return { connection, lease: held }
  })

const nameArg = (what: string) =>
  Argument.String("name").pipe(
    Argument.withDescription(`The ${what}'s name`),
    Argument.withSchema(
      Schema.String.check(
        Schema.isMinLength(1, { message: "a name must not be empty" }),
        Schema.isMaxLength(256, { message: "a name is at most 256 characters" }),
        // the queue of `a` is the keys under `lock/a/`: `a/b`'s would be among them
        Schema.isPattern(/^[^/]*$/, { message: "a name may not contain '/' (one name's queue would hold another's)" })
      )
    )
  )

/** Runs `argv` with `env` added; answers its exit code (128 + signal number if a signal ended it). */
const runChild = (argv: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => spawn(argv[0]!, argv.slice(1), { stdio: "inherit", env: { ...process.env, ...env } })),
    (child) =>
      Effect.callback<number, CliFailure>((resume) => {
        child.once("error", (e) => resume(fail(ExitCode.usage, `cannot run ${argv[0]}: ${e.message}`)))
        child.once("exit", (code, signal) =>
          resume(Effect.succeed(code ?? 128 + (signal === null ? 0 : (osSignals[signal] ?? 0))))
        )
      }),
    // interrupted (the lock was lost, or this process is stopping): the command stops too
    (child) =>
      Effect.sync(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      })
  )

/**
 * `synod lock`/`synod elect` failing before the lock is got (or the election won): the
 * message names the lock and what went wrong; the exit code is `explain`'s (1 the lease
 * was lost, the queue is too long or the cluster refused; 4 unreachable; 5 access denied).
 */
const recipeFailure = (url: string, what: string, error: Lock.LockError): CliFailure => {
  const failure = explain(url, error)
  switch (error._tag) {
    case "LeaseLost":
      return new CliFailure({
        message: `${what}: the lease ${error.id} ended while waiting (${error.message})`,
        exitCode: failure.exitCode
      })
    case "QueueTooLong":
    case "LockRefused":
    case "Unreachable":
      return new CliFailure({ message: `${what}: ${error.message}`, exitCode: failure.exitCode })
    case "Unauthorized":
    case "Forbidden":
    case "HostNotAllowed":
      return new CliFailure({ message: `${what}: ${failure.message}`, exitCode: failure.exitCode })
  }
}

const osSignals: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }

const lock = Command.make(
  "lock",
  {
    url: urlFlag,
    tokenFile: tokenFileFlag,
    ttl: recipeTtlFlag,
    name: nameArg("lock"),
    command: Argument.String("command").pipe(
      Argument.withDescription("The command to run while holding the lock (after --)"),
      Argument.variadic({ min: 1 })
    )
  },
  ({ url, tokenFile, ttl, name, command }) =>
    Effect.scoped(
      Effect.gen(function* () {
        const { connection, lease: held } = yield* recipeLease(url, tokenFile, ttl)
        const got = yield* Lock.acquire({ ...connection, lease: held, name }).pipe(
          Effect.mapError((e) => recipeFailure(connection.urls[0]!, `cannot get the lock ${name}`, e))
        )
        yield* Console.error(JSON.stringify({ lock: name, key: got.key, fence: got.fence, revision: got.revision }))
        const code = yield* Effect.raceFirst(
          runChild(command, {
            SYNOD_LOCK_KEY: got.key,
            SYNOD_LOCK_FENCE: String(got.fence),
            SYNOD_LEASE_ID: String(held.id)
          }),
          Effect.andThen(
            held.lost,
            fail(
              ExitCode.no,
              `lost the lock ${name}: its lease ${held.id} ended or could not be kept alive; the command was stopped`
            )
          )
        )
        if (code !== 0) return yield* fail(code, `the command exited with code ${code}`)
      })
    )
).pipe(
  Command.withDescription(
    `Run a command while holding a lock (waiting for the holders before it); the lock is released when the command ends, or when this process dies (within --ttl). The command gets SYNOD_LOCK_FENCE, a fencing token higher for every later holder, to hand to what it protects. Exit code: the command's; 1 if the lock was lost (the command is stopped), or its lease ended while waiting, more than ${Lock.maxWaiters} waiters queued, or the cluster refused a request; 4 if no server could be reached; 5 if access was denied`
  ),
  Command.withExamples([
    { command: "synod lock backup -- ./backup.sh", description: "One backup at a time across machines" },
    {
      command: `synod lock --ttl 5 deploy -- sh -c 'echo "deploying with fence $SYNOD_LOCK_FENCE"'`,
      description: "Use the fencing token"
    }
  ])
)

const elect = Command.make(
  "elect",
  {
    url: urlFlag,
    tokenFile: tokenFileFlag,
    ttl: recipeTtlFlag,
    name: nameArg("election"),
    value: Argument.String("value").pipe(
      Argument.withDescription("This candidate's value (its address, say): what observers see"),
      Argument.withSchema(Kv.Value)
    )
  },
  ({ url, tokenFile, ttl, name, value }) =>
    Effect.scoped(
      Effect.gen(function* () {
        const { connection, lease: held } = yield* recipeLease(url, tokenFile, ttl)
        const won = yield* Lock.campaign({ ...connection, lease: held, name, value }).pipe(
          Effect.mapError((e) => recipeFailure(connection.urls[0]!, `cannot campaign in the election ${name}`, e))
        )
        yield* print({ election: name, leader: value, key: won.key, fence: won.fence, revision: won.revision })
        // leads until stopped (SIGINT/SIGTERM: resigns) or until its lease is lost
        yield* held.lost
        return yield* fail(
          ExitCode.no,
          `lost the leadership of ${name}: lease ${held.id} ended or could not be kept alive`
        )
      })
    )
).pipe(
  Command.withDescription(
    `Campaign in an election and lead until stopped: prints {election, leader, fence, ...} once elected; Ctrl-C (or SIGTERM) resigns; if this process dies, the next candidate leads within --ttl. Exit 1 if the leadership was lost, its lease ended while campaigning, more than ${Lock.maxWaiters} candidates queued, or the cluster refused a request; 4 if no server could be reached; 5 if access was denied`
  ),
  Command.withExamples([{ command: "synod elect scheduler host-a:9000", description: "Lead the scheduler election" }])
)

// ---------------------------------------------------------------------------------------
// synod snapshot save|restore

const snapshot = Command.make("snapshot").pipe(
  Command.withSharedFlags({ url: urlFlag, tokenFile: tokenFileFlag }),
  Command.withDescription("Back up a cluster's store to a file, or seed a new cluster from one")
)

const fileArg = Argument.String("file").pipe(Argument.withDescription("The backup file"))

const save = Command.make("save", { file: fileArg }, ({ file }) =>
  Effect.gen(function* () {
    const { url, tokenFile } = yield* snapshot
    // written whole, then renamed over the file: through a symbolic link to the file it
    // names; a device, a pipe or a directory is not a file to replace (renamed over, /dev/full was)
    const target = yield* Effect.try({
      try: () => {
        const stat = lstatSync(file, { throwIfNoEntry: false })
        if (stat === undefined) return file
        const real = stat.isSymbolicLink() ? realpathSync(file) : file
        return statSync(real).isFile() ? real : undefined
      },
      catch: (e) => new CliFailure({ message: `cannot write ${file}: ${describe(e)}`, exitCode: ExitCode.no })
    })
    if (target === undefined)
      return yield* fail(ExitCode.usage, `cannot write ${file}: it exists and is not a regular file`)
    const backup = yield* withCluster(url, tokenFile, (c) => c.snapshot.save())
    const fs = yield* FileSystem.FileSystem
    // a crash leaves the old file or none, never half of one
    const temp = `${target}.partial`
    yield* fs.writeFileString(temp, `${JSON.stringify(backup)}\n`).pipe(
      Effect.andThen(fs.rename(temp, target)),
      Effect.catch((e) => fail(ExitCode.no, `cannot write ${file}: ${describe(e)}`))
    )
    yield* print({ file, revision: backup.revision, keys: backup.keys, sha256: backup.sha256 })
  })
).pipe(
  Command.withDescription(
    "Write a consistent backup of the store (its entries at one revision, with a SHA-256) to FILE"
  )
)

const restore = Command.make("restore", { file: fileArg }, ({ file }) =>
  Effect.gen(function* () {
    const { url, tokenFile } = yield* snapshot
    const text = yield* readBounded(file, maxBackupBytes, "the backup", true)
    const parsed = Backup.parse(text)
    if (Result.isFailure(parsed))
      return yield* fail(ExitCode.usage, `${file}: damaged backup: ${parsed.failure.message}`)
    const backup = parsed.success
    const id = `${Date.now().toString(36)}-${Math.floor(Math.random() * 2 ** 32).toString(36)}`
    const parts = Backup.chunks(backup.entries)
    let answer: { readonly staged: number; readonly revision: number } = { staged: 0, revision: 0 }
    for (let index = 0; index < parts.length; index++) {
      const last = index === parts.length - 1
      const payload = {
        id,
        index,
        entries: parts[index]!,
        ...(last ? { done: { revision: backup.revision } } : {})
      }
      answer = yield* withCluster(url, tokenFile, (c) => c.snapshot.restore({ payload }))
    }
    yield* print({ restored: file, revision: answer.revision, keys: answer.staged })
  })
).pipe(
  Command.withDescription(
    "Seed a new cluster (no write ever) with a backup file: checked whole first (a damaged file exits 2 saying what is wrong), then sent in chunks that take effect at once"
  )
)

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
  // the configuration history, once it changed: from the replica that performed the most
  const reporting = rows
    .filter((r) => r.replica?.configurations !== undefined)
    .sort((a, b) => b.replica!.slotOut - a.replica!.slotOut)[0]
  const history = reporting?.replica?.configurations
  // the highest GC watermark an acceptor reported: whether the servers removed are retired
  const watermark = Math.max(1, ...rows.map((r) => r.acceptor?.watermark ?? 1))
  const configurations =
    history === undefined
      ? []
      : [
          `configurations (as replica ${reporting!.id} performed them):`,
          ...history.map((e) => `  ${renderEntry(e)}`),
          ...Configuration.removed(history, watermark).map((r) => `  ${renderRemoved(r, watermark)}`)
        ]
  return [head, ...lines, ...configurations].join("\n")
}

/** One configuration of the history, as `synod status` and `synod member list` print it. */
const renderEntry = (e: Configuration.Entry): string =>
  `from slot ${e.from}${e.decidedAt === 0 ? " (cluster config)" : ` (decided in slot ${e.decidedAt})`}: acceptors ${e.members.acceptors.join(",")}; leaders ${e.members.leaders.join(",")}; replicas ${e.members.replicas.join(",")}`

/** A server a change removed, and whether it may be stopped yet (docs/reconfiguration.md, rule 7). */
const renderRemoved = (r: Configuration.Removed, watermark: number): string =>
  r.retired
    ? `${r.id}: removed (from slot ${r.leftAt}), retired: it may be stopped and its data deleted`
    : `${r.id}: removed (from slot ${r.leftAt}), not retired yet: keep it running until the GC watermark (${watermark}) passes slot ${r.leftAt}`

// ---------------------------------------------------------------------------------------
// synod member list | add | remove | replace (docs/reconfiguration.md)

const member = Command.make("member").pipe(
  Command.withSharedFlags({ url: urlFlag, tokenFile: tokenFileFlag }),
  Command.withDescription("The cluster's configuration: list it, add, remove or replace a server")
)

/** The history from the first process that answers. */
const membersOf = (urls: ReadonlyArray<string>, token: Option.Option<string>) =>
  Effect.gen(function* () {
    let last: CliFailure | undefined
    for (const u of urls) {
      const client = yield* clientFor(u, token)
      const r = yield* Effect.result(client.members().pipe(Effect.mapError((e) => explain(u, e))))
      if (r._tag === "Success") return r.success
      last = r.failure
    }
    return yield* Effect.fail(last!)
  })

const memberList = Command.make("list", {}, () =>
  Effect.gen(function* () {
    const { url, tokenFile } = yield* member
    const urls = splitUrls(url)
    if (urls.length === 0) return yield* fail(ExitCode.usage, "--url: no URL given")
    const r = yield* membersOf(urls, yield* readToken(tokenFile))
    yield* print({
      members: Configuration.latest(r.history),
      from: r.history[r.history.length - 1]!.from,
      watermark: r.watermark,
      removed: r.removed
    })
    for (const e of r.history) yield* Console.error(renderEntry(e))
    for (const x of r.removed) yield* Console.error(renderRemoved(x, r.watermark))
  })
).pipe(
  Command.withDescription(
    "Print the latest configuration {members, from} (the slot it governs from), the GC watermark and the servers removed {id, leftAt, retired} (retired: it may be stopped and its data deleted); the whole history on stderr"
  )
)

/**
 * Proposes `next` through the given processes: first, when a server `leaving` hosts the
 * active leader, hands the leadership over to a leader that stays; then asks each
 * process in turn, preferring one whose server stays, until one answers.
 */
const change = (
  urls: ReadonlyArray<string>,
  token: Option.Option<string>,
  next: Configuration.Members,
  leaving: string | undefined
) =>
  Effect.gen(function* () {
    let transferredTo: string | undefined
    if (leaving !== undefined) {
      for (const u of urls) {
        const client = yield* clientFor(u, token)
        const st = yield* Effect.result(client.status())
        if (st._tag === "Failure") continue
        const leads = st.success.servers.some((s) => s.id === leaving && s.leader?.active === true)
        const to = next.leaders[0]
        if (!leads || to === undefined) continue
        const r = yield* Effect.result(client.transferLeader({ query: { to } }))
        if (r._tag === "Success") transferredTo = r.success.leader
      }
    }
    let last: CliFailure | undefined
    const ordered = [...urls].sort((a, b) => Number(a.includes(`/${leaving}`)) - Number(b.includes(`/${leaving}`)))
    for (const u of ordered) {
      const client = yield* clientFor(u, token)
      const r = yield* Effect.result(
        client.changeMembers({ payload: next }).pipe(Effect.mapError((e) => explain(u, e)))
      )
      if (r._tag === "Success") {
        return yield* print({
          ...r.success,
          ...(r.success.transferredTo === undefined && transferredTo !== undefined ? { transferredTo } : {})
        })
      }
      if (r.failure.exitCode === ExitCode.usage) return yield* Effect.fail(r.failure)
      last = r.failure
    }
    return yield* Effect.fail(last!)
  })

const serverId = (name: string, description: string) =>
  Argument.String(name).pipe(Argument.withDescription(description), Argument.withSchema(Address.Id))

/** `members` with `id` added to every kind (a colocated server: acceptor, leader and replica). */
export const withServer = (m: Configuration.Members, id: string): Configuration.Members => ({
  acceptors: m.acceptors.includes(id) ? m.acceptors : [...m.acceptors, id],
  leaders: m.leaders.includes(id) ? m.leaders : [...m.leaders, id],
  replicas: m.replicas.includes(id) ? m.replicas : [...m.replicas, id]
})

/** `members` without `id` in any kind. */
export const withoutServer = (m: Configuration.Members, id: string): Configuration.Members => ({
  acceptors: m.acceptors.filter((x) => x !== id),
  leaders: m.leaders.filter((x) => x !== id),
  replicas: m.replicas.filter((x) => x !== id)
})

/** `members` with `out` replaced by `into` wherever it is. */
export const replacing = (m: Configuration.Members, out: string, into: string): Configuration.Members => ({
  acceptors: m.acceptors.map((x) => (x === out ? into : x)),
  leaders: m.leaders.map((x) => (x === out ? into : x)),
  replicas: m.replicas.map((x) => (x === out ? into : x))
})

const isIn = (m: Configuration.Members, id: string) =>
  m.acceptors.includes(id) || m.leaders.includes(id) || m.replicas.includes(id)

const memberChange = (name: "add" | "remove" | "replace", args: { readonly id: string; readonly into?: string }) =>
  Effect.gen(function* () {
    const { url, tokenFile } = yield* member
    const urls = splitUrls(url)
    if (urls.length === 0) return yield* fail(ExitCode.usage, "--url: no URL given")
    const token = yield* readToken(tokenFile)
    const current = Configuration.latest((yield* membersOf(urls, token)).history)
    switch (name) {
      case "add":
        if (isIn(current, args.id)) return yield* fail(ExitCode.usage, `${args.id} is already a member`)
        return yield* change(urls, token, withServer(current, args.id), undefined)
      case "remove": {
        if (!isIn(current, args.id)) return yield* fail(ExitCode.usage, `${args.id} is not a member`)
        const next = withoutServer(current, args.id)
        if (next.acceptors.length === 0 || next.leaders.length === 0 || next.replicas.length === 0) {
          return yield* fail(ExitCode.usage, `removing ${args.id} would leave no acceptor, leader or replica`)
        }
        return yield* change(urls, token, next, args.id)
      }
      default: {
        const into = args.into!
        if (!isIn(current, args.id)) return yield* fail(ExitCode.usage, `${args.id} is not a member`)
        if (isIn(current, into)) return yield* fail(ExitCode.usage, `${into} is already a member`)
        return yield* change(urls, token, replacing(current, args.id, into), args.id)
      }
    }
  })

const memberAdd = Command.make(
  "add",
  { id: serverId("id", "The server to add (running already, started with roles)") },
  ({ id }) => memberChange("add", { id })
).pipe(
  Command.withDescription(
    "Add a server (its acceptor, leader and replica) to the latest configuration; prints {slot, effective, members}: the change governs from slot `effective` on"
  )
)

const memberRemove = Command.make("remove", { id: serverId("id", "The server to remove") }, ({ id }) =>
  memberChange("remove", { id })
).pipe(
  Command.withDescription(
    "Remove a server from the latest configuration (its leader, if active, hands over first); prints {slot, effective, members}"
  )
)

const memberReplace = Command.make(
  "replace",
  {
    id: serverId("old", "The server to replace"),
    into: serverId("new", "The server that takes its place (running already)")
  },
  ({ id, into }) => memberChange("replace", { id, into })
).pipe(
  Command.withDescription(
    "Replace a server by another in one change (a dead one too: the procedure in the README); prints {slot, effective, members}"
  )
)

// ---------------------------------------------------------------------------------------
// synod leader transfer

const leader = Command.make("leader").pipe(
  Command.withSharedFlags({ url: urlFlag, tokenFile: tokenFileFlag }),
  Command.withDescription("The cluster's leadership")
)

const transfer = Command.make(
  "transfer",
  {
    to: Argument.String("to").pipe(
      Argument.withDescription("The leader to hand over to (default: the most caught-up other leader)"),
      Argument.withSchema(Address.Id),
      Argument.optional
    )
  },
  ({ to }) =>
    Effect.gen(function* () {
      const { url, tokenFile } = yield* leader
      const urls = splitUrls(url)
      if (urls.length === 0) return yield* fail(ExitCode.usage, "--url: no URL given")
      const token = yield* readToken(tokenFile)
      const query = Option.isSome(to) ? { to: to.value } : {}
      // only the process hosting the active leader can hand it over: ask each in turn
      let last: CliFailure | undefined
      for (const u of urls) {
        const client = yield* clientFor(u, token)
        const r = yield* Effect.result(client.transferLeader({ query }).pipe(Effect.mapError((e) => explain(u, e))))
        if (r._tag === "Success") return yield* print(r.success)
        // a refused target is refused by every server: no need to ask the others
        if (r.failure.exitCode === ExitCode.usage) return yield* Effect.fail(r.failure)
        last = r.failure
      }
      return yield* Effect.fail(last!)
    })
).pipe(
  Command.withDescription(
    "Hand the leadership over to TO, or by default to the most caught-up other leader, with no window in which writes fail (give every server's API in --url; the one that leads does it); prints {from, leader, ballot}"
  )
)

const status = Command.make(
  "status",
  {
    url: Flag.String("url").pipe(
      Flag.withDescription("HTTP API(s) to ask, comma-separated: every process of a cluster started with synod serve"),
      Flag.withFallbackConfig(Config.String("SYNOD_URL")),
      Flag.withDefault("http://127.0.0.1:8080")
    ),
    json: Flag.Boolean("json").pipe(Flag.withDescription("Print JSON instead of a table"), Flag.withDefault(false)),
    tokenFile: tokenFileFlag
  },
  Effect.fn(function* ({ url, json, tokenFile }) {
    const urls = splitUrls(url)
    if (urls.length === 0) return yield* fail(ExitCode.usage, "--url: no URL given")
    const token = yield* readToken(tokenFile)
    const answers = yield* Effect.forEach(
      urls,
      (u) =>
        Effect.flatMap(clientFor(u, token), (c) => c.status()).pipe(
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
// synod nats-config (issue 14: only servers speak the protocol)

/** A fresh password: 144 random bits, base64url (no character the config must escape). */
const newPassword = () => randomBytes(18).toString("base64url")

const natsConfig = Command.make(
  "nats-config",
  {
    config: Flag.String("config").pipe(
      Flag.withDescription("A server config of the cluster: its name and every node id are taken from it"),
      Flag.optional
    ),
    name: Flag.String("name").pipe(Flag.withDescription("Cluster name (instead of --config)"), Flag.optional),
    servers: Flag.String("servers").pipe(
      Flag.withDescription("Server node ids, comma-separated (instead of --config)"),
      Flag.optional
    ),
    clients: Flag.String("clients").pipe(
      Flag.withDescription("Client scopes, comma-separated: one NATS user each, for clients with ids <scope>.<name>"),
      Flag.withDefault("")
    )
  },
  Effect.fn(function* (flags) {
    let cluster: string
    let nodes: Array<string>
    if (Option.isSome(flags.config)) {
      const file = flags.config.value
      const text = yield* readBounded(file, maxInputBytes, "config")
      const raw = yield* Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: (e) => new CliFailure({ message: `${file} is not JSON: ${describe(e)}`, exitCode: ExitCode.usage })
      })
      const decoded = HostConfig.decode(raw)
      if (Result.isFailure(decoded)) return yield* fail(ExitCode.usage, `${file}: ${decoded.failure.message}`)
      const c = decoded.success
      cluster = Option.getOrElse(flags.name, () => c.name)
      nodes = [...new Set([...c.cluster.acceptors, ...c.cluster.leaders, ...c.cluster.replicas, ...c.cluster.learners])]
    } else {
      if (Option.isNone(flags.name) || Option.isNone(flags.servers)) {
        return yield* fail(ExitCode.usage, "nats-config: give --config FILE, or --name and --servers")
      }
      cluster = flags.name.value
      nodes = splitUrls(flags.servers.value)
    }
    const rendered = NatsConfig.render({
      cluster,
      servers: nodes.map((user) => ({ user, password: newPassword() })),
      clients: splitUrls(flags.clients).map((user) => ({ user, password: newPassword() }))
    })
    if (Result.isFailure(rendered)) return yield* fail(ExitCode.usage, `nats-config: ${rendered.failure}`)
    yield* Console.log(rendered.success)
  })
).pipe(
  Command.withDescription(
    "Print a nats-server authorization block for a cluster: a user per server and per client scope, with fresh passwords; clients may only send requests and read their own responses"
  ),
  Command.withExamples([
    { command: "synod nats-config --config s1.json --clients app > auth.conf", description: "From a server config" },
    { command: "synod nats-config --name demo --servers s1,s2,s3 --clients app,web", description: "From flags" }
  ])
)

// ---------------------------------------------------------------------------------------

export const synod = Command.make("synod").pipe(
  Command.withDescription("synod: a replicated key-value and coordination service on Multi-Paxos"),
  Command.withSubcommands([
    up,
    serve,
    init,
    kv.pipe(Command.withSubcommands([get, put, del, cas, list, txn, watchCommand])),
    snapshot.pipe(Command.withSubcommands([save, restore])),
    lease.pipe(Command.withSubcommands([leaseGrant, leaseKeepAlive, leaseRevoke, leaseList])),
    lock,
    elect,
    status,
    leader.pipe(Command.withSubcommands([transfer])),
    member.pipe(Command.withSubcommands([memberList, memberAdd, memberRemove, memberReplace])),
    natsConfig
  ])
)

export const run = Command.run(synod, { version })

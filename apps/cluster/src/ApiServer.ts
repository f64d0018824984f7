/**
 * The HTTP API's implementation: each key-value endpoint submits one command through the
 * `Backend` (a read: a read-index read by default, a command with `consistency=log`, or
 * this process's replica with `consistency=serializable`) and maps its result to the
 * `Api` shapes; `/status`, `/healthz` and `/readyz`
 * ask the hosted servers; `/openapi.json` is generated from the same `Api` definition.
 *
 * A request that does not decode is answered 400 with a `BadRequest` naming the field;
 * a command that timed out is answered 504 with `{"outcome": "unknown"}`. A body over
 * `maxBodyBytes` is answered 413 without being read whole (a `Content-Length` over it is
 * refused before any byte; a chunked body once the limit is passed). Every error answer,
 * the router's included (404, 405 with `Allow`, 413, 415), has a JSON body
 * `{"_tag": ..., "message": ...}`.
 *
 * @since 0.1.0
 */
import { isUtf8 } from "node:buffer"
import { readFileSync } from "node:fs"
import type { Socket } from "node:net"
import { createServer, STATUS_CODES, type Server } from "node:http"
import type { Duplex } from "node:stream"
import { createServer as createHttpsServer } from "node:https"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { ByteSize, Cause, Effect, Layer } from "effect"
import {
  FindMyWay,
  HttpIncomingMessage,
  HttpRouter,
  HttpServer,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "effect/http"
import { HttpApi, HttpApiBuilder } from "effect/http-api"
import { PrometheusMetrics } from "effect/observability"
import { ClusterConfig, Configuration, Trace } from "@synod/core"
import { Kv } from "@synod/kv"
import * as Api from "./Api.ts"
import { Backend, probe, readiness, ready, status } from "./Backend.ts"
import * as HttpSecurity from "./HttpSecurity.ts"
import { internalErrorBody, notUtf8, RequestErrorsLive } from "./RequestErrors.ts"
import * as BackupHandlers from "./BackupHandlers.ts"
import * as TxnHandlers from "./TxnHandlers.ts"
import * as LeaseHandlers from "./LeaseHandlers.ts"
import * as Submit from "./Submit.ts"
import * as WatchHandlers from "./WatchHandlers.ts"
import * as Dashboard from "./Dashboard.ts"
import * as HttpMetrics from "./HttpMetrics.ts"
import * as KvFastPath from "./KvFastPath.ts"
import * as ProcessMetrics from "./ProcessMetrics.ts"

const unexpected = (command: Kv.Command, result: Kv.Result) =>
  Effect.die(new Error(`unexpected result ${result._tag} for ${command._tag}`))

const KvHandlers = HttpApiBuilder.group(
  Api.Api,
  "kv",
  Effect.fn(function* (handlers) {
    const backend = yield* Backend
    // tracing off: no span (not even the built-in tracer's, which records nothing)
    const traced = yield* Trace.Enabled
    const { send: submit, readIndex } = Submit.forApi(backend, traced)
    /**
     * The local replica's state as it is: no slot, no round trip, possibly stale; never a
     * state its peers contradict (docs/protocol.md#divergence-detection).
     */
    const local = Effect.suspend(() => {
      const applied = backend.applied
      if (applied === undefined) {
        return Effect.fail(new Api.NoReplica({ message: "this process hosts no replica to read from" }))
      }
      return Effect.flatMap(applied.diverged, (diverged) =>
        diverged === undefined
          ? applied.current
          : Effect.fail(
              new Api.NoReplica({
                message: `this process's replica has diverged from its peers (its state digest at slot ${diverged.slot} is not a majority's): no serializable reads until it has recovered; read without consistency=serializable`
              })
            )
      )
    })
    /** A read at `consistency` (default linearizable): the result, and the state it came from when local. */
    const read = (query: Kv.Command, consistency: Api.Consistency | undefined) =>
      consistency === "serializable"
        ? Effect.map(local, (state) => ({ result: Kv.apply(state, query)[1], state: state as Kv.State | undefined }))
        : Effect.map(consistency === "log" ? submit(query) : readIndex(query), (result) => ({
            result,
            state: undefined as Kv.State | undefined
          }))
    return handlers.handleAll({
      get: Effect.fn(function* ({ params: { key }, query }) {
        const command: Kv.Command = { _tag: "Get", key }
        const { result: r, state } = yield* read(command, query.consistency)
        const answer = yield* Submit.found(key, r)
        if (state === undefined) return answer
        return { ...answer, consistency: "serializable" as const, revision: state.revision }
      }),
      put: ({ params: { key }, payload }) => Submit.put(submit, key, payload),
      del: Effect.fn(function* ({ params: { key } }) {
        const command: Kv.Command = { _tag: "Del", key }
        const r = yield* submit(command)
        if (r._tag !== "Deleted") return yield* unexpected(command, r)
        return { key, existed: r.existed }
      }),
      cas: Effect.fn(function* ({ params: { key }, payload }) {
        const command: Kv.Command = { _tag: "Cas", key, version: payload.version, value: payload.value }
        const r = yield* submit(command)
        if (r._tag !== "Swapped") return yield* unexpected(command, r)
        if (!r.ok) {
          return yield* Api.VersionConflict.of({ key, expected: payload.version, version: r.version, value: r.value })
        }
        return { key, version: r.version }
      }),
      list: Effect.fn(function* ({ query }) {
        const prefix = query.prefix ?? ""
        const command: Kv.Command = {
          _tag: "List",
          prefix,
          limit: query.limit ?? 100,
          ...(query.after === undefined ? {} : { after: query.after })
        }
        const { result: r } = yield* read(command, query.consistency)
        if (r._tag !== "Listed") return yield* unexpected(command, r)
        const last = r.entries.at(-1)
        return {
          prefix,
          entries: r.entries,
          more: r.more,
          ...(r.more && last !== undefined ? { next: last.key } : {}),
          revision: r.revision
        }
      })
    })
  })
)

const SystemHandlers = HttpApiBuilder.group(Api.Api, "system", (handlers) =>
  handlers.handleAll({
    status: () => status,
    transferLeader: Effect.fn(function* ({ query }) {
      const backend = yield* Backend
      const handles = backend.handles ?? []
      const refused = (message: string) => new Api.BadRequest({ message, issues: [{ path: ["to"], message }] })
      // a target no leader could take is refused here too, not only by the server that leads
      const leaders = backend.config?.leaders
      if (query.to !== undefined && leaders !== undefined && !leaders.includes(query.to)) {
        return yield* refused(`${query.to} is not a configured leader (leaders: ${leaders.join(", ")})`)
      }
      for (const handle of handles) {
        const s = yield* handle.status
        if (s.leader?.active !== true || handle.transferLeadership === undefined) continue
        const leads = yield* handle
          .transferLeadership(query.to)
          .pipe(Effect.catchTag("TransferRefused", (e) => Effect.fail(refused(e.message))))
        if (leads === undefined) {
          return yield* new Api.TransferTimedOut({
            message: `leader ${s.id} handed over${query.to === undefined ? "" : ` to ${query.to}`}, but no leader took over within a few leader timeouts`
          })
        }
        return {
          from: s.id,
          leader: leads.leader,
          ballot: { round: leads.round, leader: leads.leader }
        }
      }
      const known = readiness(yield* backend.servers)
      return yield* new Api.NotLeading({
        message: "this process hosts no active leader: ask the server that leads",
        ...(known.ready ? { leader: known.leader } : {})
      })
    }),
    members: Effect.fn(function* () {
      const backend = yield* Backend
      const handles = backend.handles ?? []
      // the highest GC watermark any role of this process knows of: each is a true one
      let watermark = 1
      for (const handle of handles) {
        const s = yield* handle.status
        watermark = Math.max(watermark, s.acceptor?.watermark ?? 1, s.replica?.watermark ?? 1)
      }
      for (const handle of handles) {
        if (handle.history === undefined) continue
        const s = yield* handle.status
        const history = yield* handle.history
        return {
          replica: s.id,
          slotOut: s.replica?.slotOut ?? 1,
          history,
          watermark,
          removed: Configuration.removed(history, watermark)
        }
      }
      return yield* new Api.NoReplica({ message: "this process hosts no replica: ask a server that does" })
    }),
    changeMembers: Effect.fn(function* ({ payload }) {
      const backend = yield* Backend
      const handles = backend.handles ?? []
      const proposer = handles.find((h) => h.reconfigure !== undefined)
      if (proposer === undefined) {
        return yield* new Api.NoReplica({ message: "this process hosts no replica: ask a server that does" })
      }
      // a node the change adds must be running already: a configuration naming acceptors
      // (or leaders, or replicas) that do not exist can never commit again, this change
      // included (a majority of its acceptors would be needed to undo it)
      if (backend.running !== undefined && proposer.history !== undefined) {
        const history = yield* proposer.history
        const before = new Set(ClusterConfig.serverIds(Configuration.latest(history)))
        const added = ClusterConfig.serverIds(payload).filter((id) => !before.has(id))
        const answers = yield* Effect.forEach(added, (id) => backend.running!(id), { concurrency: "unbounded" })
        const missing = added.filter((_, i) => !answers[i])
        if (missing.length > 0) {
          return yield* new Api.ChangeRefused({
            slot: 0,
            message: `no server is running as ${missing.join(", ")}: start ${missing.length === 1 ? "it" : "them"} (synod serve) before adding ${missing.length === 1 ? "it" : "them"}; nothing was proposed`
          })
        }
      }
      // the active leader of this process, if the change removes it: hand over first, to
      // a leader of the new configuration, so no write waits for a failure-detection timeout
      let transferredTo: string | undefined
      for (const handle of handles) {
        const s = yield* handle.status
        if (s.leader?.active !== true || handle.transferLeadership === undefined) continue
        if (payload.leaders.includes(s.id)) continue
        const to = payload.leaders.find((l) => l !== s.id)
        if (to === undefined) continue
        const leads = yield* Effect.exit(handle.transferLeadership(to))
        if (leads._tag === "Success" && leads.value !== undefined) transferredTo = leads.value.leader
      }
      // at most a few seconds: a change waits for its slot like any command
      const timeoutMs = Math.max(5_000, 20 * (backend.config?.timeouts.leaderTimeoutMs ?? 300))
      const done = yield* Effect.timeoutOption(proposer.reconfigure!(payload), timeoutMs)
      if (done._tag === "None") {
        return yield* new Api.ChangeTimedOut({
          message: `the change was proposed but not performed within ${timeoutMs} ms: it may still be decided (GET /members tells)`
        })
      }
      const r = done.value
      if (r.error !== undefined) {
        if (r.slot === 0)
          return yield* new Api.BadRequest({ message: r.error, issues: [{ path: [], message: r.error }] })
        return yield* new Api.ChangeRefused({ message: r.error, slot: r.slot })
      }
      return {
        slot: r.slot,
        effective: r.effective,
        members: r.members,
        ...(transferredTo === undefined ? {} : { transferredTo })
      }
    }),
    healthz: () => Effect.succeed({ status: "ok" as const }),
    readyz: Effect.fn(function* () {
      const r = yield* ready
      const reasons = r.ready ? [] : [...r.reasons]
      // only when the status says ready: a probe of a process that knows it is not would only wait
      if (r.ready) {
        const failed = yield* probe
        if (failed !== undefined) reasons.push(failed)
      }
      if (!r.ready || reasons.length > 0) {
        return yield* new Api.NotReady({ message: `not ready: ${reasons.join("; ")}`, reasons })
      }
      return { status: "ready" as const, leader: r.leader }
    })
  })
)

/** The API's routes, with `/openapi.json`; requires a `Backend` and `WatchHandlers.Watches`. */
export const routes = HttpApiBuilder.layer(Api.Api, { openapiPath: Api.openApiPath }).pipe(
  Layer.provide([
    KvHandlers,
    SystemHandlers,
    TxnHandlers.layer,
    BackupHandlers.layer,
    WatchHandlers.layer,
    LeaseHandlers.layer
  ]),
  Layer.provide(RequestErrorsLive),
  // declares the access errors only: `HttpSecurity.middleware` answers them before routing
  Layer.provide(Layer.succeed(Api.AccessErrors, (app) => app))
)

// ---------------------------------------------------------------------------------------
// the body limit and JSON bodies for the errors the router and the server answer

/**
 * The default request body limit. The largest command is a compare-and-set of a value of
 * 64 Ki UTF-16 code units: up to 192 KiB of UTF-8, or 384 KiB written as JSON `\u` escapes.
 */
export const defaultMaxBodyBytes = 512 * 1024

// a percent-encoded key takes up to 9 characters per UTF-16 code unit (the default allows 100)
const routerConfig: Partial<FindMyWay.RouterConfig> = { maxParamLength: 9 * Kv.maxKeyLength + 16 }

const methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] as const

/**
 * The `Api`'s routes (and the OpenAPI document's), each with whether it takes a query: what
 * `allowedMethods` and `takesNoQuery` look up.
 */
const apiRoutes = (): FindMyWay.Router<{ readonly query: boolean }> => {
  const router = FindMyWay.make<{ readonly query: boolean }>(routerConfig)
  // served by the platform, which ignores a query: counted as taking one, so none is refused
  router.on("GET", Api.openApiPath, { query: true })
  HttpApi.reflect(Api.Api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) =>
      router.on(endpoint.method, endpoint.path as FindMyWay.PathInput, { query: endpoint.query !== undefined })
  })
  return router
}

/** The methods a URL's path takes, from the `Api` definition; GET brings HEAD, as in the router. */
const allowedMethods = (): ((url: string) => ReadonlyArray<string>) => {
  const router = apiRoutes()
  return (url) => methods.filter((m) => router.find(m === "HEAD" ? "GET" : m, url) !== undefined)
}

/** The bodies of the `Api` errors answered here, and a catch-all for the server's own. */
type ErrorBody =
  | typeof Api.BadRequest.Encoded
  | typeof Api.RouteNotFound.Encoded
  | typeof Api.MethodNotAllowed.Encoded
  | typeof Api.PayloadTooLarge.Encoded
  | typeof Api.UnsupportedMediaType.Encoded
  | { readonly _tag: "InternalError" | "HttpError"; readonly message: string }

const errorResponse = (status: number, body: ErrorBody, headers: Record<string, string> = {}) =>
  HttpServerResponse.jsonUnsafe(body, { status, headers })

const isJson = (response: HttpServerResponse.HttpServerResponse): boolean =>
  response.body._tag === "Uint8Array" && (response.body.contentType ?? "").startsWith("application/json")

/** Whether `path` decodes: its `%` escapes are each two hex digits and spell UTF-8. */
const isPercentEncoded = (path: string): boolean => {
  try {
    // the result is used: a bundler drops a call whose result is not, as free of effects
    return typeof decodeURIComponent(path) === "string"
  } catch {
    return false
  }
}

/** A JSON body for an error answer that has none (or a text one): the router's and the server's. */
const asJson = (
  request: HttpServerRequest.HttpServerRequest,
  response: HttpServerResponse.HttpServerResponse,
  allowed: (url: string) => ReadonlyArray<string>,
  limit: number
): HttpServerResponse.HttpServerResponse => {
  const what = `${request.method} ${request.url.split("?")[0]}`
  switch (response.status) {
    case 400:
      return errorResponse(400, { _tag: "BadRequest", message: "the request could not be read", issues: [] })
    case 404: {
      const path = request.url.split("?")[0]!
      if (!isPercentEncoded(path)) {
        return errorResponse(400, {
          _tag: "BadRequest",
          message: `invalid path: ${path.slice(0, 200)} is not valid percent-encoding (a key's UTF-8 bytes, each as %XX)`,
          issues: [{ path: ["path"], message: "not valid percent-encoding" }]
        })
      }
      const allow = allowed(request.url)
      if (allow.length === 0) return errorResponse(404, { _tag: "RouteNotFound", message: `no such path: ${what}` })
      return errorResponse(
        405,
        { _tag: "MethodNotAllowed", message: `method not allowed: ${what} (allowed: ${allow.join(", ")})`, allow },
        { allow: allow.join(", ") }
      )
    }
    case 413:
      return tooLarge(limit)
    case 415: {
      const type = request.headers["content-type"] ?? "none"
      return errorResponse(415, {
        _tag: "UnsupportedMediaType",
        message: `unsupported content-type: ${type}; send application/json`
      })
    }
    case 500:
      return errorResponse(500, internalErrorBody)
    default:
      return errorResponse(response.status, { _tag: "HttpError", message: `HTTP ${response.status}` })
  }
}

const tooLarge = (limit: number) =>
  errorResponse(
    413,
    { _tag: "PayloadTooLarge", message: `the request body is over the limit of ${limit} bytes`, limit },
    // the rest of the body is not read: the connection cannot carry another request
    { connection: "close" }
  )

/** Methods whose body a route may read. */
const withBody = new Set(["POST", "PUT", "PATCH", "DELETE"])

/**
 * Whether a JSON body is not UTF-8: read here (the request keeps the bytes for the
 * handler), since the platform decodes it with U+FFFD for each byte that is not.
 */
const utf8Body = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<boolean, unknown> =>
  withBody.has(request.method) && (request.headers["content-type"] ?? "").includes("json")
    ? Effect.map(request.arrayBuffer, (bytes) => !isUtf8(bytes))
    : Effect.succeed(false)

const notUtf8Response = errorResponse(400, { _tag: notUtf8._tag, message: notUtf8.message, issues: notUtf8.issues })

/**
 * Whether a request's route takes no query: the `Api` endpoints without a query schema.
 * Their router ignored a query, so `PUT /kv/k?ttl=5` wrote a key that never expires and
 * `DELETE /kv/p?prefix=true` deleted one key, where reads refuse a field they do not know.
 */
const takesNoQuery = (): ((method: string, url: string) => boolean) => {
  const router = apiRoutes()
  return (method, url) => router.find(method === "HEAD" ? "GET" : method, url)?.handler.query === false
}

/**
 * Global middleware, inside `guard` (its body limit applies) and `HttpSecurity` (a
 * request without a valid token gets its 401 first): refuses a query on a route that takes
 * none, a compressed body (415), and a JSON body that is not UTF-8.
 */
const requestGuard = () => {
  const noQuery = takesNoQuery()
  return HttpRouter.middleware<{ handles: unknown }>()(
    (app) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const [path, query] = request.url.split("?", 2)
        if (query !== undefined && query !== "" && noQuery(request.method, path!)) {
          const names = [...new URLSearchParams(query).keys()].slice(0, 8)
          const message = `${request.method} ${path} takes no query parameters (got ${names.join(", ")})`
          return errorResponse(400, {
            _tag: "BadRequest",
            message: `invalid query: ${message}`,
            issues: names.map((n) => ({ path: [n], message: "unknown field" }))
          })
        }
        const encoding = request.headers["content-encoding"]?.trim().toLowerCase()
        if (withBody.has(request.method) && encoding !== undefined && encoding !== "" && encoding !== "identity") {
          return errorResponse(415, {
            _tag: "UnsupportedMediaType",
            message: `unsupported content-encoding: ${encoding.slice(0, 64)}; send the body uncompressed`
          })
        }
        return (yield* utf8Body(request)) ? notUtf8Response : yield* app
      }),
    { global: true }
  )
}

/**
 * Global middleware: refuses a body over `limit` (by its `Content-Length`, else while
 * reading it: effect's `MaxBodySize`), and gives every error answer a JSON body.
 */
const guard = (limit: number) => {
  const allowed = allowedMethods()
  const maxBodySize = ByteSize.bytes(limit)
  return HttpRouter.middleware<{ handles: unknown }>()(
    (app) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const declared = request.headers["content-length"]
        if (declared !== undefined && Number(declared) > limit) return tooLarge(limit)
        const response = yield* app.pipe(
          Effect.provideService(HttpIncomingMessage.MaxBodySize, maxBodySize),
          Effect.catchCause((cause) =>
            Cause.hasInterruptsOnly(cause)
              ? Effect.failCause(cause)
              : Effect.map(HttpServerError.causeResponse(cause), ([r]) => r)
          )
        )
        return response.status < 400 || isJson(response) ? response : asJson(request, response, allowed, limit)
      }),
    { global: true }
  )
}

/**
 * Most connections the API holds open at once: the process's file descriptor limit (the
 * soft one, from `/proc/self/limits`) less 256 for its own files and NATS, between 64 and
 * 16,384; 1,024 where the limit cannot be read. Past it Node closes a new connection at
 * once. Without it a flood of idle connections took every descriptor, and the process
 * failed the next file it opened.
 */
export const connectionLimit = (): number => {
  let soft = 1024 + 256
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"))
    if (line !== null) soft = line[1] === "unlimited" ? Number.POSITIVE_INFINITY : Number(line[1])
  } catch {
    // not Linux: the default above
  }
  return Math.max(64, Math.min(16_384, soft - 256))
}

/**
 * A connection with no traffic either way for this long is closed (Node's `server.timeout`):
 * a client that connects and sends nothing, or stops reading. Watches send a progress
 * event at least every 10 s, and no request waits longer than 30 s for its answer.
 */
export const idleTimeoutMs = 60_000

/**
 * A request's headers must arrive within this long of its first byte (Node's
 * `headersTimeout`, checked every second), and a connection must send its first byte
 * within this long of opening, or it is closed: held silent, it would keep one of
 * `connectionLimit` places from clients that have something to ask.
 */
export const headersTimeoutMs = 10_000

/** Options for `createServer`: Node checks `headersTimeout` only this often (default 30 s). */
const serverOptions = { connectionsCheckingInterval: 1_000, headersTimeout: headersTimeoutMs } as const

/** The limits above, on `server`. */
const bounded = <S extends Server>(server: S): S => {
  server.maxConnections = connectionLimit()
  server.timeout = idleTimeoutMs
  // Node times out headers only once the first byte came: a connection that sends nothing is closed here
  server.on("connection", (socket: Socket) => {
    const silent = setTimeout(() => {
      if (socket.bytesRead === 0) socket.destroy()
    }, headersTimeoutMs)
    socket.once("close", () => clearTimeout(silent))
  })
  return server
}

/**
 * What Node's parser refuses before any handler runs (a malformed request line or header,
 * headers over Node's 16 KiB, a request that took too long) gets the same JSON error body
 * as every other answer, where Node would send a bare status line. Status as Node's own.
 */
const jsonClientErrors = <S extends Server>(server: S): S =>
  server.on("clientError", (error: Error & { readonly code?: string }, socket: Duplex) => {
    const answering = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true
    if (error.code === "ECONNRESET" || !socket.writable || answering) {
      socket.destroy()
      return
    }
    const [status, body]: [
      number,
      ErrorBody | { readonly _tag: "HeadersTooLarge" | "RequestTimeout"; readonly message: string }
    ] =
      error.code === "HPE_HEADER_OVERFLOW"
        ? [431, { _tag: "HeadersTooLarge", message: "the request's headers are over the server's limit (16 KiB)" }]
        : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? [408, { _tag: "RequestTimeout", message: "the request was not received in time" }]
          : error.code === "HPE_CHUNK_EXTENSIONS_OVERFLOW"
            ? [413, { _tag: "HttpError", message: "the request's chunk extensions are too large" }]
            : [
                400,
                {
                  _tag: "BadRequest",
                  message: `the request could not be parsed as HTTP/1.1 (${error.code ?? "invalid"})`,
                  issues: []
                }
              ]
    const text = JSON.stringify(body)
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`
    )
  })

export interface Options extends HttpSecurity.Options {
  readonly port: number
  /** Default 127.0.0.1: the API is not exposed unless asked. */
  readonly host?: string
  /** The longest request body accepted, in bytes (default `defaultMaxBodyBytes`); longer: 413. */
  readonly maxBodyBytes?: number
  /** Serve HTTPS with this certificate chain and private key (PEM contents). */
  readonly tls?: { readonly cert: string; readonly key: string }
  /** The dashboard's sampling (`Dashboard.Options`). */
  readonly dashboard?: Dashboard.Options
  /**
   * Whether `PUT /kv/{key}` may take the fast path (`KvFastPath`; default true): the same
   * answers, without the platform's per-request plumbing. Off, every request goes through
   * the router (the tests compare the two).
   */
  readonly fastPath?: boolean
}

/**
 * The API served on a Node HTTP (or HTTPS) server, with the live dashboard at `/ui`, the
 * process's metrics in Prometheus format at `/metrics`, and the HTTP API's own metrics
 * (`Dashboard.ts`, `HttpMetrics.ts`); `HttpServer` stays visible for its address.
 */
export const layer = (options: Options) =>
  WatchHandlers.stopOnClose.pipe(
    Layer.provideMerge(
      Dashboard.closeOnShutdown.pipe(
        Layer.provideMerge(
          HttpRouter.serve(
            Layer.mergeAll(
              routes,
              Dashboard.routes,
              PrometheusMetrics.layerHttp({ path: "/metrics" }),
              ProcessMetrics.layer,
              HttpMetrics.middleware,
              guard(options.maxBodyBytes ?? defaultMaxBodyBytes),
              HttpSecurity.middleware(options),
              requestGuard()
            ),
            { disableLogger: true, disableListenLog: true, routerConfig }
          ).pipe(
            Layer.provideMerge(
              Layer.unwrap(
                Effect.map(
                  options.fastPath === false
                    ? Effect.succeed(undefined)
                    : KvFastPath.make({
                        ...options,
                        maxBodyBytes: options.maxBodyBytes ?? defaultMaxBodyBytes,
                        routerConfig
                      }),
                  (take) =>
                    NodeHttpServer.layer(
                      () => {
                        const tls = options.tls
                        return KvFastPath.serve(
                          bounded(
                            jsonClientErrors(
                              tls === undefined
                                ? createServer(serverOptions)
                                : (createHttpsServer({ ...serverOptions, cert: tls.cert, key: tls.key }) as Server)
                            )
                          ),
                          take
                        )
                      },
                      { port: options.port, host: options.host ?? "127.0.0.1" }
                    )
                )
              )
            )
          )
        ),
        Layer.provide(Dashboard.layer(options.dashboard))
      )
    ),
    // open watches end first when the server stops (they would hold its shutdown up)
    Layer.provideMerge(WatchHandlers.watchesLayer())
  )

/** The URL the server listens on, e.g. `http://127.0.0.1:8080`. */
export const url = HttpServer.HttpServer.use((server) => Effect.succeed(HttpServer.formatAddress(server.address)))

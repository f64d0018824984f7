/**
 * The HTTP API's implementation: each key-value endpoint submits one command through the
 * `Backend` and maps its result to the `Api` shapes; `/status` asks the hosted servers;
 * `/openapi.json` is generated from the same `Api` definition.
 *
 * A request that does not decode is answered 400 with a `BadRequest` naming the field;
 * a command that timed out is answered 504 with `{"outcome": "unknown"}`.
 *
 * @since 0.1.0
 */
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, SchemaIssue } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { HttpApiBuilder, type HttpApiError, HttpApiMiddleware } from "effect/http-api"
import * as Api from "./Api.ts"
import { Backend, status } from "./Backend.ts"
import * as Kv from "./Kv.ts"

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const where: Record<HttpApiError.HttpApiSchemaError["kind"], string> = {
  Params: "path",
  Headers: "headers",
  Query: "query",
  Payload: "body",
  Body: "response body",
  ResponseHeaders: "response headers"
}

/** A decoding failure as a 400 that names each field at fault. */
export const badRequest = (error: HttpApiError.HttpApiSchemaError): Api.BadRequest => {
  const issues = formatIssues(error.cause.issue).issues.map((i) => ({
    path: (i.path ?? []).map((p) => String(typeof p === "object" && p !== null && "key" in p ? p.key : p)),
    message: i.message
  }))
  const parts = issues.map((i) => (i.path.length === 0 ? i.message : `${i.path.join(".")}: ${i.message}`))
  return new Api.BadRequest({ message: `invalid ${where[error.kind]}: ${parts.join("; ")}`, issues })
}

export const RequestErrorsLive = HttpApiMiddleware.layerSchemaErrorTransform(Api.RequestErrors, (error) =>
  Effect.fail(badRequest(error))
)

const unexpected = (command: Kv.Command, result: Kv.Result) =>
  Effect.die(new Error(`unexpected result ${result._tag} for ${command._tag}`))

const KvHandlers = HttpApiBuilder.group(
  Api.Api,
  "kv",
  Effect.fn(function* (handlers) {
    const backend = yield* Backend
    const submit = (command: Kv.Command) =>
      backend.submit(command).pipe(
        Effect.catchTags({
          OutcomeUnknown: (e) => Effect.fail(new Api.OutcomeUnknown({ outcome: "unknown", message: e.message })),
          CommandRejected: (e) => Effect.fail(new Api.CommandRejected({ message: e.reason }))
        })
      )
    return handlers.handleAll({
      get: Effect.fn(function* ({ params: { key } }) {
        const command: Kv.Command = { _tag: "Get", key }
        const r = yield* submit(command)
        if (r._tag !== "Value") return yield* unexpected(command, r)
        if (r.value === null) return yield* new Api.KeyNotFound({ key })
        return { key, value: r.value, version: r.version }
      }),
      put: Effect.fn(function* ({ params: { key }, payload }) {
        const command: Kv.Command = { _tag: "Put", key, value: payload.value }
        const r = yield* submit(command)
        if (r._tag !== "Written") return yield* unexpected(command, r)
        return { key, version: r.version }
      }),
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
          return yield* new Api.VersionConflict({ key, expected: payload.version, version: r.version, value: r.value })
        }
        return { key, version: r.version }
      }),
      list: Effect.fn(function* ({ query }) {
        const prefix = query.prefix ?? ""
        const command: Kv.Command = { _tag: "List", prefix, limit: query.limit ?? 100 }
        const r = yield* submit(command)
        if (r._tag !== "Listed") return yield* unexpected(command, r)
        return { prefix, entries: r.entries, more: r.more, revision: r.revision }
      })
    })
  })
)

const SystemHandlers = HttpApiBuilder.group(Api.Api, "system", (handlers) => handlers.handle("status", () => status))

/** The API's routes, with `/openapi.json`; requires a `Backend`. */
export const routes = HttpApiBuilder.layer(Api.Api, { openapiPath: Api.openApiPath }).pipe(
  Layer.provide([KvHandlers, SystemHandlers]),
  Layer.provide(RequestErrorsLive)
)

export interface Options {
  readonly port: number
  /** Default 127.0.0.1: the API has no authentication, so it is not exposed unless asked. */
  readonly host?: string
}

/** The API served on a Node HTTP server; `HttpServer` stays visible for its address. */
export const layer = (options: Options) =>
  HttpRouter.serve(routes, {
    disableLogger: true,
    disableListenLog: true,
    // a percent-encoded key takes up to 9 characters per UTF-16 code unit (the default allows 100)
    routerConfig: { maxParamLength: 9 * Kv.maxKeyLength + 16 }
  }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: options.port, host: options.host ?? "127.0.0.1" }))
  )

/** The URL the server listens on, e.g. `http://127.0.0.1:8080`. */
export const url = HttpServer.HttpServer.use((server) => Effect.succeed(HttpServer.formatAddress(server.address)))

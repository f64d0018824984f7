/**
 * The HTTP API's hot path: `PUT /kv/{key}` answered straight off `node:http`, past the
 * router, its middleware and the endpoint's fiber stack. Profiled under the yardstick's
 * `http` load (256 clients writing 100-byte values to one `synod serve`), the serving
 * process was saturated at about 2,600 writes/s, most of it in the platform's request and
 * response plumbing rather than in synod; this path serves the same writes with the same
 * answers at about 1.45 times that rate (README, Benchmarks).
 *
 * It takes a request only when it is sure the API would take the same steps: a `PUT`
 * whose path the API's own router (same configuration) resolves to `kv.put` and whose key
 * decodes, no query string, a declared `Content-Length` within the body limit, a JSON
 * content type, and a `HttpSecurity.gate` that lets it through; with tracing on it takes
 * nothing (the spans come from the platform). Anything else goes to the API untouched:
 * before any byte of the body is read, so the API answers it as it always did.
 *
 * What it then does is the endpoint's: the body decoded by the endpoint's own payload
 * schema and parse options (a failure is the same `BadRequest`, `RequestErrors`), the
 * command through `Submit.put`, the answer encoded by the endpoint's success or error
 * schema with its status, and the request counted and timed by `HttpMetrics.recorder`.
 * `KvFastPath.test.ts` sends the same requests, good and bad, both ways and compares the
 * answers byte for byte.
 *
 * @since 0.5.0
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import { Cause, Context, Effect, Exit, Schema, SchemaIssue } from "effect"
import { FindMyWay } from "effect/http"
import { HttpApi, type HttpApiEndpoint, HttpApiError } from "effect/http-api"
import { Trace } from "@synod/core"
import * as Api from "./Api.ts"
import { Backend } from "./Backend.ts"
import * as HttpMetrics from "./HttpMetrics.ts"
import * as HttpSecurity from "./HttpSecurity.ts"
import { badRequest } from "./RequestErrors.ts"
import * as Submit from "./Submit.ts"

export interface Options extends HttpSecurity.Options {
  /** The body limit the API enforces (`ApiServer.Options.maxBodyBytes`). */
  readonly maxBodyBytes: number
  /** The router's configuration (`maxParamLength`), as the API's router has it. */
  readonly routerConfig: Partial<FindMyWay.RouterConfig>
}

/** Takes `request` (and answers it), or answers `false` to leave it to the API. */
export type Take = (request: IncomingMessage, response: ServerResponse) => boolean

/** The endpoint `group.name` of the `Api`, with the annotations its handler runs under. */
const endpointOf = (group: string, name: string) => {
  let found:
    | {
        readonly endpoint: HttpApiEndpoint.Top
        readonly annotations: Context.Context<never>
        readonly errors: ReadonlyMap<number, ReadonlyArray<Schema.Top>>
      }
    | undefined
  HttpApi.reflect(Api.Api, {
    onGroup: () => {},
    onEndpoint: ({ group: g, endpoint, mergedAnnotations, errors }) => {
      if (g.identifier === group && endpoint.identifier === name) found = { endpoint, annotations: mergedAnnotations, errors }
    }
  })
  if (found === undefined) throw new Error(`the Api has no endpoint ${group}.${name}`)
  return found
}

/** How the platform reads a JSON content type (`effect/http-api`'s `MediaType.normalize`). */
const mediaType = (contentType: string): string => {
  const normalized = contentType.toLowerCase().trim()
  const index = normalized.indexOf(";")
  return index === -1 ? normalized : normalized.slice(0, index).trim()
}

/** The parse options of each slot, as the handler has them (`HttpApi`'s slot annotations over `ParseOptions`). */
const slotParseOptions = (annotations: Context.Context<never>) => {
  const fallback = Context.getOrUndefined(annotations, HttpApi.ParseOptions)
  return {
    params: Context.getOrUndefined(annotations, HttpApi.ParamsParseOptions) ?? fallback,
    payload: Context.getOrUndefined(annotations, HttpApi.PayloadParseOptions) ?? fallback,
    success: Context.getOrUndefined(annotations, HttpApi.SuccessParseOptions) ?? fallback,
    error: Context.getOrUndefined(annotations, HttpApi.ErrorParseOptions) ?? fallback
  }
}

const invalidJson = new Schema.SchemaError(new SchemaIssue.InvalidValue({ message: "Expected a valid JSON body" }))

interface Answer {
  readonly status: number
  readonly body: string
}

const internalError: Answer = {
  status: 500,
  body: JSON.stringify({ _tag: "InternalError", message: "internal error" })
}

/**
 * The fast path for the API served with `options`; `undefined` when tracing is on. Needs
 * the `Backend` and the dashboard (through `HttpMetrics.recorder`).
 */
export const make = Effect.fnUntraced(function* (options: Options) {
  if (yield* Trace.Enabled) return undefined
  const backend = yield* Backend
  const record = yield* HttpMetrics.recorder
  const context = yield* Effect.context<never>()
  const run = Effect.runCallbackWith(context)

  // every route of the API, so a path another route takes (a static one) is not taken here
  const router = FindMyWay.make<string>(options.routerConfig)
  HttpApi.reflect(Api.Api, {
    onGroup: () => {},
    onEndpoint: ({ group, endpoint }) =>
      router.on(endpoint.method, endpoint.path as FindMyWay.PathInput, `${group.identifier}.${endpoint.identifier}`)
  })
  const put = endpointOf("kv", "put")
  const parse = slotParseOptions(put.annotations)
  const decodeParams = Schema.decodeUnknownExit(put.endpoint.params as Schema.Decoder<unknown>, parse.params)
  const json = put.endpoint.payload.get("application/json")
  if (json === undefined || json.encoding._tag === "Stream") throw new Error("kv.put takes no JSON body")
  const decodePayload = Schema.decodeUnknownExit(
    Schema.Union(json.schemas) as unknown as Schema.Decoder<unknown>,
    parse.payload
  )
  const encodeWritten = Schema.encodeUnknownSync(Api.Written, parse.success)
  const errors = [...put.errors].flatMap(([status, schemas]) =>
    schemas.map((schema) => ({
      status,
      is: Schema.is(schema),
      encode: Schema.encodeUnknownSync(schema as Schema.Codec<unknown, unknown>, parse.error)
    }))
  )
  const gate = HttpSecurity.gate(options)
  const textDecoder = new TextDecoder()

  /** An error of the endpoint as its answer; anything else is the API's 500. */
  const failure = (error: unknown): Answer => {
    const known = errors.find((e) => e.is(error))
    return known === undefined ? internalError : { status: known.status, body: JSON.stringify(known.encode(error)) }
  }

  /** The body decoded as the endpoint decodes it (`HttpApiBuilder`'s JSON payloads). */
  const payloadOf = (text: string): Exit.Exit<typeof Api.PutBody.Type, Schema.SchemaError> => {
    if (text === "") return decodePayload(undefined) as Exit.Exit<typeof Api.PutBody.Type, Schema.SchemaError>
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      return Exit.fail(invalidJson)
    }
    return decodePayload(parsed) as Exit.Exit<typeof Api.PutBody.Type, Schema.SchemaError>
  }

  const answerOf = (key: string, body: Buffer): Effect.Effect<Answer> => {
    const payload = payloadOf(textDecoder.decode(body))
    if (Exit.isFailure(payload)) {
      const cause = Cause.findErrorOption(payload.cause)
      if (cause._tag === "None") return Effect.succeed(internalError)
      const error = badRequest(new HttpApiError.HttpApiSchemaError({ kind: "Payload", cause: cause.value }))
      return Effect.succeed(failure(error))
    }
    return Submit.put(backend.submit, key, payload.value).pipe(
      Effect.catchTags({
        OutcomeUnknown: (e) => Effect.fail(new Api.OutcomeUnknown({ outcome: "unknown", message: e.message })),
        CommandRejected: (e) => Effect.fail(new Api.CommandRejected({ message: e.reason })),
        CommandTooLarge: (e) => Effect.fail(new Api.PayloadTooLarge({ message: e.message, limit: e.limit }))
      }),
      Effect.map((written): Answer => ({ status: 200, body: JSON.stringify(encodeWritten(written)) })),
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause)
          ? Effect.failCause(cause as Cause.Cause<never>)
          : Effect.succeed(Cause.findErrorOption(cause)._tag === "Some" ? failure(Cause.squash(cause)) : internalError)
      )
    )
  }

  const take: Take = (request, response) => {
    const url = request.url
    if (request.method !== "PUT" || url === undefined || url.includes("?")) return false
    const route = router.find("PUT", url)
    if (route === undefined || route.handler !== "kv.put") return false
    if (request.headers["transfer-encoding"] !== undefined) return false
    const length = Number(request.headers["content-length"] ?? Number.NaN)
    if (!(length >= 0 && length <= options.maxBodyBytes)) return false
    if (mediaType(request.headers["content-type"] ?? "application/json") !== "application/json") return false
    if (gate("PUT", url, request.headers) !== undefined) return false
    const params = decodeParams(route.params)
    if (Exit.isFailure(params)) return false
    const key = (params.value as { readonly key: string }).key

    const started = performance.now()
    let answered = false
    let interrupt: ((id?: number) => void) | undefined
    // the client went away: as the platform does, stop waiting and count nothing
    response.once("close", () => {
      if (!answered) interrupt?.()
    })
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.once("end", () => {
      interrupt = run(answerOf(key, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)), {
        onExit: (exit) => {
          if (Exit.isFailure(exit) || response.destroyed) return
          answered = true
          const answer = exit.value
          run(record("/kv/{key}", "PUT", answer.status, performance.now() - started))
          response.writeHead(answer.status, {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(answer.body)
          })
          response.end(answer.body)
        }
      })
    })
    return true
  }
  return take
})

/**
 * `server` with `take` in front of its request listeners (the platform's): a request it
 * takes never reaches them. `emit` is the one place a `node:http` server hands a request
 * to every listener, so that is where it is intercepted.
 */
export const serve = <S extends Server>(server: S, take: Take | undefined): S => {
  if (take === undefined) return server
  const emit = server.emit
  server.emit = function (this: S, event: string | symbol, ...args: Array<any>): boolean {
    if (event === "request" && take(args[0] as IncomingMessage, args[1] as ServerResponse)) return true
    return emit.apply(this, [event, ...args] as Parameters<S["emit"]>)
  } as S["emit"]
  return server
}

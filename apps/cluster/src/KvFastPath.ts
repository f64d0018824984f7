/**
 * The HTTP API's hot path: `PUT /kv/{key}` and `GET /kv/{key}` answered straight off
 * `node:http`, past the router, its middleware and the endpoint's fiber stack. Profiled
 * under the yardstick's `http` load (256 clients writing 100-byte values to one `synod
 * serve`), the serving process was saturated at about 2,600 writes/s, most of it in the
 * platform's request and response plumbing rather than in synod; with this path the same
 * writes, with the same answers, went at 3,600-5,100 writes/s (README, Benchmarks).
 *
 * It takes a request only when it is sure the API would take the same steps: a `PUT` or
 * `GET` whose path the API's own router (same configuration) resolves to `kv.put` or
 * `kv.get` and whose key decodes, no query string (a read's `consistency`, say), no
 * chunked body, a `HttpSecurity.gate` that lets it through; for a `PUT` a declared
 * `Content-Length` within the body limit and a JSON content type, for a `GET` no body.
 * With tracing on it takes nothing (the spans come from the platform). Anything else goes
 * to the API untouched, before any byte of the body is read, so the API answers it as it
 * always did.
 *
 * What it then does is the endpoint's: the body decoded by the endpoint's own payload
 * schema and parse options (a failure is the same `BadRequest`, `RequestErrors`), the
 * command or the linearizable read sent as the handlers send it, its result and the
 * client's failures taken by `Submit`'s steps, the answer encoded by the endpoint's
 * success or error schema with its status, and the request counted and timed by
 * `HttpMetrics.recorderUnsafe`. It does so without a fiber per request: the command goes
 * through the client's `submitPromise` (`readPromise`), where the backend has them.
 * `KvFastPath.test.ts` sends the same requests, good and bad, both ways and compares the
 * answers byte for byte.
 *
 * @since 0.5.0
 */
import { isUtf8 } from "node:buffer"
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import { Cause, Context, Effect, Exit, Result, Schema, SchemaIssue } from "effect"
import { FindMyWay } from "effect/http"
import { HttpApi, type HttpApiEndpoint, HttpApiError } from "effect/http-api"
import { Trace } from "@synod/core"
import type { Kv } from "@synod/kv"
import * as Api from "./Api.ts"
import { Backend } from "./Backend.ts"
import * as HttpMetrics from "./HttpMetrics.ts"
import * as HttpSecurity from "./HttpSecurity.ts"
import { badRequest, internalErrorBody, notUtf8 } from "./RequestErrors.ts"
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
      if (g.identifier === group && endpoint.identifier === name)
        found = { endpoint, annotations: mergedAnnotations, errors }
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

const internalError: Answer = { status: 500, body: JSON.stringify(internalErrorBody) }

/** An endpoint's codecs as its handler has them: params, success and errors (with their statuses). */
const codecsOf = (group: string, name: string) => {
  const { endpoint, annotations, errors } = endpointOf(group, name)
  const parse = slotParseOptions(annotations)
  const known = [...errors].flatMap(([status, schemas]) =>
    schemas.map((schema) => ({
      status,
      is: Schema.is(schema),
      encode: Schema.encodeUnknownSync(schema as Schema.Codec<unknown, unknown>, parse.error)
    }))
  )
  return {
    endpoint,
    parse,
    decodeParams: Schema.decodeUnknownExit(endpoint.params as Schema.Decoder<unknown>, parse.params),
    /** An error of the endpoint as its answer; anything else is the API's 500. */
    failure: (error: unknown): Answer => {
      const e = known.find((k) => k.is(error))
      return e === undefined ? internalError : { status: e.status, body: JSON.stringify(e.encode(error)) }
    }
  }
}

/**
 * The fast path for the API served with `options`; `undefined` when tracing is on. Needs
 * the `Backend` and the dashboard (through `HttpMetrics.recorder`).
 */
export const make = Effect.fnUntraced(function* (options: Options) {
  if (yield* Trace.Enabled) return undefined
  const backend = yield* Backend
  const record = yield* HttpMetrics.recorderUnsafe
  const context = yield* Effect.context<never>()
  const runPromise = Effect.runPromiseWith(context)
  // a command and a read without a fiber each, where the backend can (its client's
  // `submitPromise`): the fiber per request was a tenth of a serving process's CPU
  const submit = backend.submitPromise ?? ((command: Kv.Command) => runPromise(backend.submit(command)))
  const read =
    backend.readPromise ??
    (backend.read === undefined ? submit : (query: Kv.Command) => runPromise(backend.read!(query)))
  /** How a read fails: as a read, or, through the log, as a command (`Submit.forApi`'s `readIndex`). */
  const readKind = backend.readPromise !== undefined || backend.read !== undefined ? "read" : "command"

  // every route of the API, so a path another route takes (a static one) is not taken here
  const router = FindMyWay.make<string>(options.routerConfig)
  HttpApi.reflect(Api.Api, {
    onGroup: () => {},
    onEndpoint: ({ group, endpoint }) =>
      router.on(endpoint.method, endpoint.path as FindMyWay.PathInput, `${group.identifier}.${endpoint.identifier}`)
  })
  const put = codecsOf("kv", "put")
  const get = codecsOf("kv", "get")
  const json = put.endpoint.payload.get("application/json")
  if (json === undefined || json.encoding._tag === "Stream") throw new Error("kv.put takes no JSON body")
  const decodePayload = Schema.decodeUnknownExit(
    Schema.Union(json.schemas) as unknown as Schema.Decoder<unknown>,
    put.parse.payload
  )
  const encodeWritten = Schema.encodeUnknownSync(Api.Written, put.parse.success)
  const encodeFound = Schema.encodeUnknownSync(Api.Found, get.parse.success)
  const gate = HttpSecurity.gate(options)
  const textDecoder = new TextDecoder()

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

  /**
   * The answer to a command or read sent (`sent`) as the endpoint gives it: the result
   * taken by `outcome` (the handler's own steps) and its success encoded with `encode`;
   * the endpoint's error (the client's failures as `Submit` maps them) with its status;
   * anything else the API's 500.
   */
  const answered = <A, E>(
    sent: Promise<Kv.Result>,
    outcome: (r: Kv.Result) => Result.Result<A, E> | undefined,
    encode: (a: A) => unknown,
    failure: (error: unknown) => Answer,
    kind: "command" | "read"
  ): Promise<Answer> =>
    sent.then(
      (r) => {
        try {
          const o = outcome(r)
          if (o === undefined) return internalError
          return Result.isSuccess(o) ? { status: 200, body: JSON.stringify(encode(o.success)) } : failure(o.failure)
        } catch {
          return internalError
        }
      },
      (e: unknown) => {
        try {
          const error = Submit.apiError(e, kind)
          return error === undefined ? internalError : failure(error)
        } catch {
          return internalError
        }
      }
    )

  const putAnswer = (key: string, body: Buffer): Answer | Promise<Answer> => {
    if (!isUtf8(body)) return put.failure(notUtf8)
    const payload = payloadOf(textDecoder.decode(body))
    if (Exit.isFailure(payload)) {
      const cause = Cause.findErrorOption(payload.cause)
      if (cause._tag === "None") return internalError
      return put.failure(badRequest(new HttpApiError.HttpApiSchemaError({ kind: "Payload", cause: cause.value })))
    }
    return answered(
      submit(Submit.putCommand(key, payload.value)),
      (r) => Submit.writtenOf(key, r),
      encodeWritten,
      put.failure,
      "command"
    )
  }

  const getAnswer = (key: string): Promise<Answer> =>
    answered(read({ _tag: "Get", key }), (r) => Submit.foundOf(key, r), encodeFound, get.failure, readKind)

  /**
   * Writes `answer`, counted and timed, unless the client went away first: then, as the
   * platform, it counts nothing. (Through the API the client's wait for the answer is
   * interrupted then; a promise's is not, so the client keeps resending the command until
   * its answer comes or `clientTimeoutMs` passes, as for any command: the command was sent
   * and may be performed either way.)
   */
  const respond = (response: ServerResponse, method: string, started: number, answer: Answer | Promise<Answer>) => {
    const write = (a: Answer) => {
      if (response.destroyed) return
      record("/kv/{key}", method, a.status, performance.now() - started)
      response.writeHead(a.status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(a.body)
      })
      response.end(a.body)
    }
    if (answer instanceof Promise)
      answer.then(write).catch(() => {
        // nothing answers a request whose answer could not be written: end its connection
        response.destroy()
      })
    else write(answer)
  }

  const take: Take = (request, response) => {
    const url = request.url
    const method = request.method
    if ((method !== "PUT" && method !== "GET") || url === undefined || url.includes("?")) return false
    const route = router.find(method, url)
    if (route === undefined || route.handler !== (method === "PUT" ? "kv.put" : "kv.get")) return false
    if (request.headers["transfer-encoding"] !== undefined || request.headers["content-encoding"] !== undefined)
      return false
    const declared = request.headers["content-length"]
    if (gate(method, url, request.headers) !== undefined) return false
    const started = performance.now()
    if (method === "GET") {
      // a GET with a body is the API's to answer (its limit applies to it too)
      if (declared !== undefined && declared !== "0") return false
      const params = get.decodeParams(route.params)
      if (Exit.isFailure(params)) return false
      respond(response, method, started, getAnswer((params.value as { readonly key: string }).key))
      return true
    }
    const length = Number(declared ?? Number.NaN)
    if (!(length >= 0 && length <= options.maxBodyBytes)) return false
    if (mediaType(request.headers["content-type"] ?? "application/json") !== "application/json") return false
    const params = put.decodeParams(route.params)
    if (Exit.isFailure(params)) return false
    const key = (params.value as { readonly key: string }).key
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.once("end", () =>
      respond(response, method, started, putAnswer(key, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
    )
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

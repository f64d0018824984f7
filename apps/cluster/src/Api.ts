/**
 * The HTTP API of a synod cluster, as one `HttpApi` definition: the server implements
 * it (`HttpServer.ts`), the CLI calls it through the client derived from it, and the
 * OpenAPI document served at `/openapi.json` is generated from it.
 *
 * - `GET    /kv/{key}`          read a key (404 when absent)
 * - `PUT    /kv/{key}`          write a key, body `{"value": "..."}`
 * - `DELETE /kv/{key}`          delete a key
 * - `POST   /kv/{key}/cas`      write only if the key's version is `version` (0: absent),
 *                               body `{"version": 3, "value": "..."}`; 409 on a mismatch
 * - `GET    /kv?prefix=&limit=` list keys by prefix, in key order
 * - `GET    /status`            the servers this process hosts: leader, acceptor, replica
 * - `GET    /healthz`           200 while the process serves
 * - `GET    /readyz`            200 once this process's replicas are caught up and a leader
 *                               is known; 503 saying why not
 *
 * Keys go in the path percent-encoded (`a/b` is `a%2Fb`). Every answer is JSON, errors
 * included: `{"_tag": ..., "message": ...}`. A body, path or query that does not decode,
 * or that has a field the endpoint does not know, gets a 400 whose `message` names the
 * field. A body over the server's limit gets a 413, a body that is not JSON a 415, an
 * unknown path a 404 and a method the path does not take a 405 with `Allow`. A command no
 * replica answered in time gets a 504 `{"outcome": "unknown"}`: it may or may not have
 * been applied, and may still be.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, OpenApi } from "effect/http-api"
import { Kv } from "@synod/kv"
import { version } from "./Version.ts"

// ---------------------------------------------------------------------------------------
// errors (each with its status; the body is the error's fields plus `_tag`)

/** The request did not decode; `message` names the field and what was wrong with it. */
export class BadRequest extends Schema.TaggedError<BadRequest>()(
  "BadRequest",
  {
    message: Schema.String,
    /** The fields at fault, as paths (`["value"]`, `["key"]`). */
    issues: Schema.Array(Schema.Struct({ path: Schema.Array(Schema.String), message: Schema.String }))
  },
  { httpApiStatus: 400 }
) {}

export class KeyNotFound extends Schema.TaggedError<KeyNotFound>()(
  "KeyNotFound",
  { key: Schema.String },
  { httpApiStatus: 404 }
) {
  override get message(): string {
    return `key not found: ${JSON.stringify(this.key)}`
  }
}

/** A compare-and-set whose expected version was not the key's: nothing changed. */
export class VersionConflict extends Schema.TaggedError<VersionConflict>()(
  "VersionConflict",
  {
    key: Schema.String,
    expected: Kv.Version,
    /** The key's current version (0: absent) and value. */
    version: Kv.Version,
    value: Schema.NullOr(Schema.String)
  },
  { httpApiStatus: 409 }
) {
  override get message(): string {
    return `version conflict on ${JSON.stringify(this.key)}: expected version ${this.expected}, it is ${this.version}`
  }
}

/**
 * No replica answered in time. The command may or may not have been applied, and may
 * still be: never read this as "failed".
 */
export class OutcomeUnknown extends Schema.TaggedError<OutcomeUnknown>()(
  "OutcomeUnknown",
  { outcome: Schema.Literal("unknown"), message: Schema.String },
  { httpApiStatus: 504 }
) {}

/** The replicas refused the command (it did not decode there); nothing changed. */
export class CommandRejected extends Schema.TaggedError<CommandRejected>()(
  "CommandRejected",
  { message: Schema.String },
  { httpApiStatus: 500 }
) {}

/** No endpoint has this path. */
export class RouteNotFound extends Schema.TaggedError<RouteNotFound>()(
  "RouteNotFound",
  { message: Schema.String },
  { httpApiStatus: 404 }
) {}

/** The path exists, but not for this method; `allow` (and the `Allow` header) lists the ones it takes. */
export class MethodNotAllowed extends Schema.TaggedError<MethodNotAllowed>()(
  "MethodNotAllowed",
  { message: Schema.String, allow: Schema.Array(Schema.String) },
  { httpApiStatus: 405 }
) {}

/** The body is longer than the server's limit (`limit` bytes); it was not read. */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()(
  "PayloadTooLarge",
  { message: Schema.String, limit: Schema.Int },
  { httpApiStatus: 413 }
) {}

/** The body is not `application/json`. */
export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()(
  "UnsupportedMediaType",
  { message: Schema.String },
  { httpApiStatus: 415 }
) {}

/** This process is not ready to serve; `reasons` says why. */
export class NotReady extends Schema.TaggedError<NotReady>()(
  "NotReady",
  { message: Schema.String, reasons: Schema.Array(Schema.String) },
  { httpApiStatus: 503 }
) {}

/** Turns request decoding failures into a `BadRequest` body (the default is an empty 400). */
export class RequestErrors extends HttpApiMiddleware.Service<RequestErrors>()("@synod/cluster/Api/RequestErrors", {
  error: BadRequest
}) {}

// ---------------------------------------------------------------------------------------
// bodies

export const KeyParams = { key: Kv.Key }

export const Found = Schema.Struct({ key: Schema.String, value: Schema.String, version: Kv.Version })
export const PutBody = Schema.Struct({ value: Kv.Value }).annotate({ examples: [{ value: "hello" }] })
export const Written = Schema.Struct({ key: Schema.String, version: Kv.Version })
export const Deleted = Schema.Struct({ key: Schema.String, existed: Schema.Boolean })
export const CasBody = Schema.Struct({
  /** The version the key must have (0: it must be absent). */
  version: Kv.Version,
  value: Kv.Value
}).annotate({
  examples: [
    { version: 1, value: "hi" },
    { version: 0, value: "alice" }
  ]
})
export const Listed = Schema.Struct({
  prefix: Schema.String,
  entries: Schema.Array(Kv.Entry),
  /**
   * More entries match than `limit` (or than fit one answer, `Kv.maxListBytes` of keys and
   * values): ask again with `after` set to `next`.
   */
  more: Schema.Boolean,
  /** The cursor for the next page (the last key returned), when `more`. */
  next: Schema.optionalKey(Schema.String),
  /** Writes applied when the list was taken. */
  revision: Kv.Version
})

export const Ballot = Schema.Struct({ round: Schema.Int, leader: Schema.String })

export const ServerStatus = Schema.Struct({
  id: Schema.String,
  acceptor: Schema.optionalKey(
    Schema.Struct({
      /** The highest ballot it promised. */
      promised: Ballot,
      /** Slots with an accepted pvalue. */
      accepted: Schema.Int,
      /** Its GC watermark: it forgot every slot below (enough replicas hold them durably). */
      watermark: Schema.Int
    })
  ),
  leader: Schema.optionalKey(
    Schema.Struct({
      /** The highest ballot it used. */
      ballot: Ballot,
      /** Adopted by a majority of acceptors: it is the one proposing. */
      active: Schema.Boolean,
      /** Slots its commanders got decided. */
      decided: Schema.Int,
      timeoutMs: Schema.Int
    })
  ),
  replica: Schema.optionalKey(
    Schema.Struct({
      /** Every slot below this one is applied. */
      slotOut: Schema.Int,
      /** Keys in its store, and its revision (writes applied). */
      keys: Schema.Int,
      revision: Schema.Int,
      clients: Schema.Int,
      pending: Schema.Int
    })
  )
})
export type ServerStatus = typeof ServerStatus.Type

export const Status = Schema.Struct({
  /** The cluster's name (NATS subject prefix) or `embedded`. */
  cluster: Schema.String,
  transport: Schema.Literals(["memory", "nats"]),
  /** The servers this process hosts (all of them for `synod up`). */
  servers: Schema.Array(ServerStatus)
})
export type Status = typeof Status.Type

export const Health = Schema.Struct({ status: Schema.Literal("ok") })

export const Ready = Schema.Struct({
  status: Schema.Literal("ready"),
  /** The active leader this process knows of. */
  leader: Schema.String
})
export type Ready = typeof Ready.Type

const commandErrors = [OutcomeUnknown, CommandRejected, PayloadTooLarge] as const
/** What a request with a body can also get (answered before the endpoint runs). */
const bodyErrors = [PayloadTooLarge, UnsupportedMediaType] as const

// ---------------------------------------------------------------------------------------
// the API

export class KvGroup extends HttpApiGroup.make("kv")
  .add(
    HttpApiEndpoint.get("get", "/kv/:key", {
      params: KeyParams,
      success: Found,
      error: [KeyNotFound, ...commandErrors]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Read a key",
        description: "The key's value and version; 404 `KeyNotFound` when it is absent."
      })
    ),
    HttpApiEndpoint.put("put", "/kv/:key", {
      params: KeyParams,
      payload: PutBody,
      success: Written,
      error: [...bodyErrors, ...commandErrors]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Write a key",
        description: "Sets the key's value, whatever was there; answers its new version (the writes applied so far)."
      })
    ),
    HttpApiEndpoint.delete("del", "/kv/:key", {
      params: KeyParams,
      success: Deleted,
      error: commandErrors
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Delete a key",
        description: "Removes the key; `existed` says whether it was there (deleting an absent key is not an error)."
      })
    ),
    HttpApiEndpoint.post("cas", "/kv/:key/cas", {
      params: KeyParams,
      payload: CasBody,
      success: Written,
      error: [VersionConflict, ...bodyErrors, ...commandErrors]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Compare-and-set a key",
        description:
          "Writes only if the key's version is `version` (0: only if it is absent, as a lock); otherwise 409 `VersionConflict` with what is there, and nothing changes."
      })
    ),
    HttpApiEndpoint.get("list", "/kv", {
      query: {
        prefix: Schema.optional(Schema.String),
        limit: Schema.optional(Kv.Limit),
        /** Only keys after this one: the `next` of the previous page. */
        after: Schema.optional(Schema.String)
      },
      success: Listed,
      error: commandErrors
    }).annotateMerge(
      OpenApi.annotations({
        summary: "List keys by prefix",
        description:
          "Up to `limit` entries (default 100, at most 1000, and at most 256 KiB) whose key starts with `prefix`, in key order; `more` and `next` page through the rest (`after`)."
      })
    )
  )
  .annotateMerge(
    OpenApi.annotations({
      title: "Key-value store",
      description: "Every operation, reads included, is a command decided in the replicated log: linearizable."
    })
  ) {}

export class SystemGroup extends HttpApiGroup.make("system", { topLevel: true })
  .annotateMerge(
    OpenApi.annotations({ description: "The process and its servers: status, liveness and readiness probes." })
  )
  .add(
    HttpApiEndpoint.get("status", "/status", { success: Status }).annotateMerge(
      OpenApi.annotations({
        summary: "Servers' state",
        description:
          "Per server this process hosts: its leader (active or not, ballot), its acceptor (promise, accepted slots, GC watermark) and its replica (slotOut, keys, revision)."
      })
    ),
    HttpApiEndpoint.get("healthz", "/healthz", { success: Health }).annotateMerge(
      OpenApi.annotations({ summary: "Liveness", description: "Liveness: 200 while the process serves." })
    ),
    HttpApiEndpoint.get("readyz", "/readyz", { success: Ready, error: NotReady }).annotateMerge(
      OpenApi.annotations({
        summary: "Readiness",
        description:
          "Readiness: 200 once every replica of this process is caught up (not below the GC watermark) and an active leader is known; 503 saying why not."
      })
    )
  ) {}

export class Api extends HttpApi.make("synod")
  .add(KvGroup)
  .add(SystemGroup)
  .middleware(RequestErrors)
  // a field a body or query does not declare is a 400 naming it, not silently dropped
  // (every issue is collected: `ApiServer.badRequest` picks what to report)
  .annotate(HttpApi.PayloadParseOptions, { onExcessProperty: "error", errors: "all" })
  .annotate(HttpApi.QueryParseOptions, { onExcessProperty: "error", errors: "all" })
  .annotateMerge(
    OpenApi.annotations({
      title: "synod",
      version,
      description: "A replicated key-value and coordination service on Multi-Paxos.",
      license: { name: "MIT", url: "https://opensource.org/licenses/MIT" },
      // every process serves its own API; these are the defaults of `synod up` and `synod init`
      servers: [
        { url: "http://127.0.0.1:8080", description: "synod up (its --port)" },
        { url: "http://127.0.0.1:8081", description: "s1 of synod init (its http.port)" }
      ]
    })
  ) {}

export const openApiPath = "/openapi.json"

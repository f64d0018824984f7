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
 * - `GET    /kv?prefix=&limit=` list keys by prefix, in key order (reads: `consistency=`
 *                               linearizable (a read index, the default), log, serializable)
 * - `POST   /txn`               a transaction: comparisons, then the success or the failure
 *                               operations, atomically (body `{"compare": [...], "success": [...],
 *                               "failure": [...]}`)
 * - `GET    /snapshot`          a backup of the store (`Backup.ts`), consistent, at least as new
 *                               as a read through the log when it was asked
 * - `POST   /snapshot/restore`  one chunk of a restore into a new cluster
 * - `GET    /watch?prefix=|key=&fromRevision=`  the writes to a key or prefix from a revision
 *                               on, as Server-Sent Events
 * - `POST   /lease`             grant a lease, body `{"ttl": 10}` (seconds); `PUT /kv/{key}` with
 *                               `{"value": ..., "lease": id}` attaches the key to it
 * - `POST   /lease/{id}/keepalive`, `DELETE /lease/{id}`, `GET /lease`  keep alive, revoke, list
 * - `GET    /status`            the servers this process hosts: leader, acceptor, replica
 * - `GET    /members`           the configuration history, as this process's replica performed it
 * - `POST   /members`           a configuration change, body `{"acceptors": [...], "leaders": [...],
 *                               "replicas": [...]}`: proposed by this process's replica; answers
 *                               the slot that decided it and the slot it governs from
 * - `GET    /healthz`           200 while the process serves
 * - `GET    /readyz`            200 once this process's replicas are caught up, a read is answered and a leader
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
import { Schema, SchemaTransformation } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, OpenApi } from "effect/http-api"
import { Address, Configuration } from "@synod/core"
import { Kv, KvLease } from "@synod/kv"
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
  { key: Schema.String, message: Schema.String },
  { httpApiStatus: 404 }
) {
  /** The error for `key`, its message naming it (sent in the body, as every error's). */
  static of(key: string): KeyNotFound {
    return new KeyNotFound({ key, message: `key not found: ${JSON.stringify(key)}` })
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
    value: Schema.NullOr(Schema.String),
    message: Schema.String
  },
  { httpApiStatus: 409 }
) {
  /** The error, its message saying what was expected and what is (sent in the body, as every error's). */
  static of(fields: {
    readonly key: string
    readonly expected: number
    readonly version: number
    readonly value: string | null
  }): VersionConflict {
    return new VersionConflict({
      ...fields,
      message: `version conflict on ${JSON.stringify(fields.key)}: expected version ${fields.expected}, it is ${fields.version}`
    })
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

/** Tokens are configured and the request has none, or one the server does not know (`HttpSecurity`). */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { message: Schema.String },
  { httpApiStatus: 401 }
) {}

/** The token is read-only and the request writes (`HttpSecurity`). */
export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { message: Schema.String },
  { httpApiStatus: 403 }
) {}

/** The `Host` header names a host this API does not answer to (`http.hosts`; `HttpSecurity`). */
export class HostNotAllowed extends Schema.TaggedError<HostNotAllowed>()(
  "HostNotAllowed",
  { message: Schema.String },
  { httpApiStatus: 421 }
) {}

/**
 * Declares the access errors on every endpoint, for the OpenAPI document and the client;
 * they are answered by `HttpSecurity`'s router middleware before any endpoint runs.
 */
export class AccessErrors extends HttpApiMiddleware.Service<AccessErrors>()("@synod/cluster/Api/AccessErrors", {
  error: [Unauthorized, Forbidden, HostNotAllowed]
}) {}

/** Turns request decoding failures into a `BadRequest` body (the default is an empty 400). */
export class RequestErrors extends HttpApiMiddleware.Service<RequestErrors>()("@synod/cluster/Api/RequestErrors", {
  error: BadRequest
}) {}

// ---------------------------------------------------------------------------------------
// bodies

export const KeyParams = { key: Kv.Key }

/** This process hosts no replica, and what was asked is served from a local one. */
export class NoReplica extends Schema.TaggedError<NoReplica>()(
  "NoReplica",
  { message: Schema.String },
  { httpApiStatus: 503 }
) {}

/** The lease does not exist: never granted, or it expired or was revoked. */
export class LeaseNotFound extends Schema.TaggedError<LeaseNotFound>()(
  "LeaseNotFound",
  { message: Schema.String, id: Schema.Int },
  { httpApiStatus: 404 }
) {}

/** The lease command hit a bound (too many leases, too many keys on one lease); nothing changed. */
export class LeaseRefused extends Schema.TaggedError<LeaseRefused>()(
  "LeaseRefused",
  { message: Schema.String },
  { httpApiStatus: 409 }
) {}

export const Found = Schema.Struct({
  key: Schema.String,
  value: Schema.String,
  version: Kv.Version,
  /** Present on a serializable read: the answer is this server's replica's, possibly stale. */
  consistency: Schema.optionalKey(Schema.Literal("serializable")),
  /** On a serializable read: the revision (writes applied) of the store it was read from. */
  revision: Schema.optionalKey(Kv.Version)
})

/**
 * How a read is served (docs/protocol.md#reads). `linearizable` (the default) is a
 * read-index read: the active leader confirms with a majority of acceptors that it still
 * leads, a replica waits until it has applied every write decided by then and answers
 * from its state, without a slot; it sees every write that completed before it. `log`
 * puts the read in the log as a command, as every read once was (also linearizable, at
 * the cost of a slot). `serializable` reads this server's replica as it is, at once: it
 * may miss recent writes (it is labelled so).
 */
export const Consistency = Schema.Literals(["linearizable", "log", "serializable"])
export type Consistency = typeof Consistency.Type

export const GetQuery = {
  consistency: Schema.optional(Consistency)
}
export const PutBody = Schema.Struct({
  value: Kv.Value,
  /** Attach the key to this lease: it is deleted when the lease ends (`POST /lease`). */
  lease: Schema.optionalKey(KvLease.LeaseId)
}).annotate({ examples: [{ value: "hello" }, { value: "10.0.0.7:8080", lease: 3 }] })
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
      /**
       * slotOut of the newest state a clean stop saves: with three replicas or more the last
       * one a majority of them agreed with (their state digests), else its current one.
       */
      verified: Schema.Int,
      /** Keys in its store, and its revision (writes applied). */
      keys: Schema.Int,
      revision: Schema.Int,
      /**
       * A restore under way (`POST /snapshot/restore` chunks without `done` yet): its id, the
       * keys staged and their bytes, held out of sight until its last chunk, or until a
       * restore with another id starts from chunk 0.
       */
      restoring: Schema.optionalKey(Schema.Struct({ id: Schema.String, keys: Schema.Int, bytes: Schema.Int })),
      clients: Schema.Int,
      pending: Schema.Int,
      /**
       * Present while its state disagrees with its peers' at a digest slot: it answers no
       * client and no read until it recovered (keys and revision are those of its last
       * state before). `digest`: its own; `majority`: the one a majority of replicas hold, if any.
       */
      diverged: Schema.optionalKey(
        Schema.Struct({ slot: Schema.Int, digest: Schema.String, majority: Schema.optionalKey(Schema.String) })
      ),
      /**
       * Present once the configuration changed (docs/reconfiguration.md): its history,
       * each entry the members that govern from slot `from` on, decided in `decidedAt`.
       */
      configurations: Schema.optionalKey(Configuration.History)
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
      query: GetQuery,
      success: Found,
      error: [KeyNotFound, NoReplica, ...commandErrors]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Read a key",
        description:
          "The key's value and version; 404 `KeyNotFound` when it is absent. By default linearizable without a slot (`consistency=linearizable`: a read index, confirmed by the active leader with a majority of acceptors; it sees every write that completed before the read began). `consistency=log` puts the read in the log as a command (linearizable too, at the cost of a slot). `consistency=serializable` reads this server's replica at once: possibly stale, and the answer says so (`consistency`, and the `revision` it was read at); 503 `NoReplica` when this process hosts none."
      })
    ),
    HttpApiEndpoint.put("put", "/kv/:key", {
      params: KeyParams,
      payload: PutBody,
      success: Written,
      error: [LeaseNotFound, LeaseRefused, ...bodyErrors, ...commandErrors]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Write a key",
        description:
          "Sets the key's value, whatever was there; answers its new version (the writes applied so far). With `lease`, the key is attached to that lease and deleted when it ends (404 `LeaseNotFound` if it does not exist, 409 `LeaseRefused` if it holds the most keys a lease may); without, a key attached to a lease is detached from it. A key has no TTL of its own: grant a lease."
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
        after: Schema.optional(Schema.String),
        consistency: Schema.optional(Consistency)
      },
      success: Listed,
      error: [NoReplica, ...commandErrors]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "List keys by prefix",
        description:
          "Up to `limit` entries (default 100, at most 1000, and at most 256 KiB) whose key starts with `prefix`, in key order; `more` and `next` page through the rest (`after`). `consistency` as for a read of a key: `linearizable` (default, a read index), `log` or `serializable` (this server's replica as it is; 503 `NoReplica` when this process hosts none)."
      })
    )
  )
  .annotateMerge(
    OpenApi.annotations({
      title: "Key-value store",
      description:
        "Every write is a command decided in the replicated log; reads are linearizable without a slot by default (a read index), or through the log, or serializable from this server's replica (`consistency`)."
    })
  ) {}

// ---------------------------------------------------------------------------------------
// transactions

export const TxnBody = Schema.Struct({
  /** Every comparison must hold for `success` to run (none: it does). */
  compare: Schema.optionalKey(Kv.Txn.fields.compare),
  success: Schema.optionalKey(Kv.Txn.fields.success),
  failure: Schema.optionalKey(Kv.Txn.fields.failure)
}).annotate({
  examples: [
    {
      compare: [{ key: "lock", version: 0 }],
      success: [
        { op: "put", key: "lock", value: "alice" },
        { op: "put", key: "lock/owner", value: "alice" }
      ],
      failure: [{ op: "get", key: "lock" }]
    }
  ]
})
export type TxnBody = typeof TxnBody.Type

export const TxnAnswer = Schema.Struct({
  /** Every comparison held: the `success` operations ran, else the `failure` ones. */
  succeeded: Schema.Boolean,
  /** What each operation of the branch that ran did, in order. */
  results: Schema.Array(Kv.TxnOpResult),
  /** The store's revision after the transaction. */
  revision: Kv.Version
})
export type TxnAnswer = typeof TxnAnswer.Type

export class TxnGroup extends HttpApiGroup.make("txn", { topLevel: true })
  .annotateMerge(OpenApi.annotations({ description: "Multi-key transactions: compare, then write, atomically." }))
  .add(
    HttpApiEndpoint.post("txn", "/txn", {
      payload: TxnBody,
      success: TxnAnswer,
      error: [LeaseNotFound, LeaseRefused, ...bodyErrors, ...commandErrors]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "A transaction: compare, then put/delete/get atomically",
        description: `etcd-style: if every comparison holds (on a key's \`version\`, \`value\` or \`exists\`, with \`op\` one of = != < >, default =), the \`success\` operations run, else the \`failure\` ones; all in one command of the log, so nothing falls between them. Each write takes its own revision, in the order of the operations. At most ${Kv.maxTxnCompares} comparisons and ${Kv.maxTxnOps} operations per branch; the whole transaction must fit one message of the cluster (else 413).`
      })
    )
  ) {}

// ---------------------------------------------------------------------------------------
// backup and restore

/** The cluster refused a restore chunk; `reason` says why (nothing was restored). */
export class RestoreRefused extends Schema.TaggedError<RestoreRefused>()(
  "RestoreRefused",
  { message: Schema.String, reason: Schema.String },
  { httpApiStatus: 409 }
) {}

export const BackupFile = Schema.Struct({
  format: Schema.Literal("synod-kv-backup"),
  formatVersion: Schema.Literal(1),
  revision: Kv.Version,
  keys: Schema.Int,
  sha256: Schema.String,
  entries: Schema.Array(Schema.Tuple([Schema.String, Schema.String, Kv.Version]))
})

export const RestoreChunk = Schema.Struct({
  id: Kv.Restore.fields.id,
  index: Kv.Restore.fields.index,
  entries: Kv.Restore.fields.entries,
  /** On the last chunk: the backup's revision; the staged chunks then become the store. */
  done: Kv.Restore.fields.done
}).annotate({
  examples: [{ id: "m1x2-4k9", index: 0, entries: [["greeting", "hello", 1]], done: { revision: 1 } }]
})
export type RestoreChunk = typeof RestoreChunk.Type

export const RestoreAnswer = Schema.Struct({
  /** Entries staged so far (after the last chunk: the store's keys). */
  staged: Schema.Int,
  /** The store's revision (after the last chunk: the backup's). */
  revision: Kv.Version,
  done: Schema.Boolean
})

export class SnapshotGroup extends HttpApiGroup.make("snapshot")
  .add(
    HttpApiEndpoint.get("save", "/snapshot", {
      success: BackupFile,
      error: [NoReplica, NotReady, ...commandErrors]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "A backup of the store, with its revision and a SHA-256",
        description:
          "The state of this process's replica once it has applied a read decided in the log when the request came: consistent (one revision, every write up to it) and no older than the request. `synod snapshot save FILE` writes it to a file. Streamed as the reader takes it. 503 NoReplica when this process hosts no replica; 503 NotReady when it is sending 4 backups already."
      })
    ),
    HttpApiEndpoint.post("restore", "/snapshot/restore", {
      payload: RestoreChunk,
      success: RestoreAnswer,
      error: [RestoreRefused, ...bodyErrors, ...commandErrors]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "One chunk of a restore into a new cluster",
        description:
          "Chunks are staged, out of sight, from index 0 on; the one with `done` makes them the store at `done.revision` at once. Only a new cluster (no write ever) takes a restore: otherwise, or on a chunk out of order, 409 RestoreRefused with the reason, and what was staged is dropped. `synod snapshot restore FILE` checks a backup file and sends it in chunks."
      })
    )
  )
  .annotateMerge(
    OpenApi.annotations({
      title: "Backup and restore",
      description: "A consistent backup of the store, and its restore into a new cluster."
    })
  ) {}

// ---------------------------------------------------------------------------------------
// watches

/** The revision asked for is older than the history the store keeps. */
export class Compacted extends Schema.TaggedError<Compacted>()(
  "Compacted",
  {
    message: Schema.String,
    /** The revision asked for. */
    requested: Kv.Version,
    /** The oldest revision a watch can start from now. */
    oldest: Kv.Version
  },
  { httpApiStatus: 410 }
) {}

/** This process serves as many watches as it takes (`maxWatches`). */
export class TooManyWatches extends Schema.TaggedError<TooManyWatches>()(
  "TooManyWatches",
  { message: Schema.String, limit: Schema.Int },
  { httpApiStatus: 503 }
) {}

/** One write, as a watch reports it: `value` is absent for a delete (`type: "del"`). */
export const WatchEvent = Schema.Struct({
  revision: Kv.Version,
  type: Schema.Literals(["put", "del"]),
  key: Schema.String,
  value: Schema.optionalKey(Schema.String)
})
export type WatchEvent = typeof WatchEvent.Type

/** An SSE event as sent: `event` is put, del, progress or compacted; `id` the revision. */
export const SseEvent = Schema.Struct({
  id: Schema.optional(Schema.String),
  event: Schema.String,
  data: Schema.String
})

/** A whole number written in decimal digits: `NumberFromString` alone reads `0x10` as 16 and `1e3` as 1000. */
const DecimalFromString = (message: string) =>
  Schema.String.check(Schema.isPattern(/^[0-9]{1,16}$/, { message })).pipe(
    Schema.decodeTo(Schema.Number, SchemaTransformation.numberFromString)
  )

export const WatchQuery = {
  /** Watch this key only. */
  key: Schema.optional(Kv.Key),
  /** Watch every key starting with this ("" or absent, and no `key`: every key). */
  prefix: Schema.optional(Schema.String.check(Schema.isMaxLength(Kv.maxKeyLength))),
  /** The first revision to report (default: the next write this server applies). */
  fromRevision: Schema.optional(
    DecimalFromString("fromRevision is a revision, in decimal digits").check(
      Schema.isInt(),
      Schema.isGreaterThanOrEqualTo(1, { message: "fromRevision is 1 or more" })
    )
  )
}

export class WatchGroup extends HttpApiGroup.make("watch", { topLevel: true })
  .annotateMerge(OpenApi.annotations({ description: "Changes to keys as they are applied, from a revision on." }))
  .add(
    HttpApiEndpoint.get("watch", "/watch", {
      query: WatchQuery,
      success: HttpApiSchema.StreamSse({ events: SseEvent }),
      error: [Compacted, NoReplica, TooManyWatches, BadRequest]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Watch a key or a prefix from a revision (Server-Sent Events)",
        description:
          "Every write to the key (`key=`) or to keys under the prefix (`prefix=`) from `fromRevision` on, in revision order, with no gaps and no duplicates: `event: put` or `event: del`, `id:` the revision, `data:` `{revision, type, key, value?}`. While nothing matches, `event: progress` with `{revision}` now and then (at least every 10 s): the revision to resume from is the last `id` + 1 (a `Last-Event-ID` header does the same). A revision older than the history kept gets 410 Compacted naming the oldest available one, or, once streaming, an `event: compacted` with the same body, and the stream ends. Served from this process's replica (503 NoReplica if it hosts none), which may lag the log: events come once it has applied them."
      })
    )
  ) {}

/** A lease's TTL in seconds, as the API takes it (fractions allowed; kept to the millisecond). */
const ttlMessage = `ttl is in seconds, between ${KvLease.minTtlMs / 1000} and ${KvLease.maxTtlMs / 1000} (a day)`

// `Finite`: a JSON body carries a number; `Number` would also take "NaN" and "Infinity", and name them when refusing "10"
export const LeaseTtl = Schema.Finite.check(
  Schema.isBetween({ minimum: KvLease.minTtlMs / 1000, maximum: KvLease.maxTtlMs / 1000 }, { message: ttlMessage })
)

export const LeaseGrantBody = Schema.Struct({
  /** Seconds the lease lives without a keep-alive. */
  ttl: LeaseTtl
}).annotate({ examples: [{ ttl: 10 }] })

export const LeaseGranted = Schema.Struct({
  id: Schema.Int,
  /** Seconds. */
  ttl: Schema.Number
})

export const LeaseIdParams = {
  id: DecimalFromString("a lease id is a whole number, in decimal digits").check(
    Schema.isInt({ message: "a lease id is a whole number" }),
    Schema.isGreaterThanOrEqualTo(1, { message: "a lease id is 1 or more" })
  )
}

export const LeaseRevoked = Schema.Struct({
  id: Schema.Int,
  /** Keys deleted with it. */
  deleted: Schema.Int,
  /** The store's revision after. */
  revision: Kv.Version
})

export const LeasesListed = Schema.Struct({
  leases: Schema.Array(Schema.Struct({ id: Schema.Int, ttl: Schema.Number, keys: Schema.Int })),
  /** More leases follow: ask again with `after` the last id. */
  more: Schema.Boolean
}).annotate({ examples: [{ leases: [{ id: 3, ttl: 10, keys: 1 }], more: false }] })

export class LeaseGroup extends HttpApiGroup.make("lease")
  .add(
    HttpApiEndpoint.post("grant", "/lease", {
      payload: LeaseGrantBody,
      success: LeaseGranted,
      error: [LeaseRefused, ...bodyErrors, ...commandErrors]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Grant a lease",
        description: `A lease of \`ttl\` seconds (${KvLease.minTtlMs / 1000} to ${KvLease.maxTtlMs / 1000}): unless kept alive within that time it expires, and the keys attached to it (\`PUT /kv/{key}\` with \`lease\`) are deleted, as writes watchers see. Expiry is decided by the cluster's active leader from its own clock and goes through the log; after a leader change every lease gets its whole TTL again. A holder should count on its lease for ttl·0.95 from when it sent its last successful keep-alive. At most ${KvLease.maxLeases} leases at once (else 409).`
      })
    ),
    HttpApiEndpoint.post("keepalive", "/lease/:id/keepalive", {
      params: LeaseIdParams,
      success: LeaseGranted,
      error: [LeaseNotFound, ...commandErrors]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Keep a lease alive",
        description:
          "Its whole TTL starts again (from when the leader learns of this keep-alive). 404 `LeaseNotFound` once it expired or was revoked: its keys are gone."
      })
    ),
    HttpApiEndpoint.delete("revoke", "/lease/:id", {
      params: LeaseIdParams,
      success: LeaseRevoked,
      error: [LeaseNotFound, ...commandErrors]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Revoke a lease",
        description: "Ends the lease now and deletes its keys (`deleted` of them)."
      })
    ),
    HttpApiEndpoint.get("list", "/lease", {
      query: {
        limit: Schema.optional(KvLease.ListLimit),
        /** Only leases of a higher id: the last id of the previous page. */
        after: Schema.optional(
          Schema.Int.check(Schema.isGreaterThanOrEqualTo(0, { message: "after is a lease id, 0 or more" }))
        )
      },
      success: LeasesListed,
      error: commandErrors
    }).annotateMerge(
      OpenApi.annotations({
        summary: "List leases",
        description: `The leases alive, in id order, with their TTL and key count: up to \`limit\` of them (default and at most ${KvLease.maxListLimit}, so an answer fits any transport's message); \`more\` says more follow, from \`after\` the last id.`
      })
    )
  )
  .annotateMerge(
    OpenApi.annotations({
      title: "Leases",
      description:
        "Leases with a time-to-live, kept alive by their holder; the keys attached to one are deleted when it ends (ephemeral keys, locks, elections)."
    })
  ) {}

/** This process hosts no active leader: ask the server that leads (`leader`, when one is known). */
export class NotLeading extends Schema.TaggedError<NotLeading>()(
  "NotLeading",
  { message: Schema.String, leader: Schema.optionalKey(Schema.String) },
  { httpApiStatus: 409 }
) {}

/** The leader handed over, but no successor led within a few leader timeouts. */
export class TransferTimedOut extends Schema.TaggedError<TransferTimedOut>()(
  "TransferTimedOut",
  { message: Schema.String },
  { httpApiStatus: 504 }
) {}

export const LeaderTransferred = Schema.Struct({
  /** The server that led. */
  from: Schema.String,
  /** The server that leads now, and its ballot. */
  leader: Schema.String,
  ballot: Schema.Struct({ round: Schema.Int, leader: Schema.String })
})
export type LeaderTransferred = typeof LeaderTransferred.Type

export const TransferQuery = {
  /** The leader to hand over to (default: the most caught-up other leader). */
  to: Schema.optional(Address.Id)
}

/** The change was decided but performed as a no-op (`message` says why: the history is full). */
export class ChangeRefused extends Schema.TaggedError<ChangeRefused>()(
  "ChangeRefused",
  { message: Schema.String, slot: Schema.Int },
  { httpApiStatus: 409 }
) {}

/** The change was proposed but not performed here in time: it may still be decided. */
export class ChangeTimedOut extends Schema.TaggedError<ChangeTimedOut>()(
  "ChangeTimedOut",
  { message: Schema.String },
  { httpApiStatus: 504 }
) {}

/** The configuration history as the replica of this process performed it. */
export const MembersList = Schema.Struct({
  /** The replica that answers, and every slot below `slotOut` it performed. */
  replica: Schema.String,
  slotOut: Schema.Int,
  /** Its history: the latest entry is the configuration from its `from` on. */
  history: Configuration.History,
  /** The GC watermark this process knows of: every slot below it is held durably by enough replicas. */
  watermark: Schema.Int,
  /**
   * The servers the history names and its latest configuration does not, each with the
   * slot from which no configuration names it. `retired` once the watermark passed that
   * slot: no slot needs it any more, so it may be stopped and its data deleted (before,
   * a slot's quorum or the replicas holding the forgotten slots may still count on it).
   */
  removed: Schema.Array(Schema.Struct({ id: Schema.String, leftAt: Schema.Int, retired: Schema.Boolean }))
})
export type MembersList = typeof MembersList.Type

/** The body of `POST /members`: the whole new configuration. */
export const MembersBody = Configuration.Members.annotate({
  examples: [{ acceptors: ["s1", "s2", "s4"], leaders: ["s1", "s2", "s4"], replicas: ["s1", "s2", "s4"] }]
})

export const MembersChanged = Schema.Struct({
  /** The slot that decided the change, and the first slot it governs (slot + window). */
  slot: Schema.Int,
  effective: Schema.Int,
  members: Configuration.Members,
  /** Set when the active leader was on a server the change removes and handed over first. */
  transferredTo: Schema.optionalKey(Schema.String)
})
export type MembersChanged = typeof MembersChanged.Type

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
    HttpApiEndpoint.post("transferLeader", "/leader/transfer", {
      query: TransferQuery,
      success: LeaderTransferred,
      error: [NotLeading, TransferTimedOut, BadRequest]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Hand the leadership over",
        description:
          "Ask the server whose leader is active (this process must host it; else 409 NotLeading, naming the leader when known): it hands the leadership over to the leader `to` names (default: the most caught-up other leader; on a tie the next in the configured order), which starts phase 1 at once with a higher ballot, and goes on as a passive leader. `to` must be another configured leader (else 400 BadRequest saying why). Answers once the new leader leads (504 TransferTimedOut if none did within a few leader timeouts: then the failure detector elects one, as after a crash). Writes in flight are resent to the new leader; none fails."
      })
    ),
    HttpApiEndpoint.get("members", "/members", { success: MembersList, error: [NoReplica] }).annotateMerge(
      OpenApi.annotations({
        summary: "The configuration history",
        description:
          "The configuration history as this process's replica performed it (409 NoReplica when it hosts none): each entry the acceptors, leaders and replicas that govern the slots from `from` on, decided in slot `decidedAt` (0: the cluster config)."
      })
    ),
    HttpApiEndpoint.post("changeMembers", "/members", {
      payload: MembersBody,
      success: MembersChanged,
      error: [NoReplica, ChangeRefused, ChangeTimedOut, BadRequest, ...bodyErrors]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Change the configuration",
        description:
          "Proposes the members as the new configuration (docs/reconfiguration.md): this process's replica proposes it in a slot of its own; it governs from that slot + window on. Answers once the replica performed it, with both slots. When this process hosts the active leader and the change removes it from the leaders, it first hands the leadership over to the most caught-up leader of the new members. 409 NoReplica when this process hosts no replica, 409 ChangeRefused when the history is full or when the change adds a node no running server holds (slot 0: nothing was proposed), 504 ChangeTimedOut when not performed in time (it may still be), 400 on members that do not decode (none of a kind, a duplicate, more than 64)."
      })
    ),
    HttpApiEndpoint.get("healthz", "/healthz", { success: Health }).annotateMerge(
      OpenApi.annotations({ summary: "Liveness", description: "Liveness: 200 while the process serves." })
    ),
    HttpApiEndpoint.get("readyz", "/readyz", { success: Ready, error: NotReady }).annotateMerge(
      OpenApi.annotations({
        summary: "Readiness",
        description:
          "Readiness: 200 once every replica of this process is caught up (not below the GC watermark), an active leader is known and the cluster answers a linearizable read within 1 s (with a majority of acceptors gone a leader may still be known, but nothing commits); 503 saying why not. A probe's outcome answers the requests of the next 0.5 s."
      })
    )
  ) {}

export class Api extends HttpApi.make("synod")
  .add(KvGroup)
  .add(TxnGroup)
  .add(SnapshotGroup)
  .add(WatchGroup)
  .add(LeaseGroup)
  .add(SystemGroup)
  .middleware(RequestErrors)
  .middleware(AccessErrors)
  // a field a body or query does not declare is a 400 naming it, not silently dropped
  // (every issue is collected: `RequestErrors.badRequest` picks what to report)
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

/**
 * Leases from TypeScript, over the HTTP API: a scoped lease whose keep-alive fiber ends
 * with the scope, which then revokes it (deleting its keys).
 *
 * ```ts
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const lease = yield* LeaseClient.grant({ urls: ["http://127.0.0.1:8081"], ttlMs: 5000 })
 *   yield* lease.put("services/web/1", "10.0.0.7:8080") // gone when the lease ends
 *   yield* Effect.raceFirst(lease.lost, doTheWork)      // stop when the lease is lost
 * }))
 * ```
 *
 * The holder's view (docs/protocol.md#leases): the lease is counted on until
 * `sent + ttl·(1−ε)` on this process's monotonic clock, `sent` being when the last
 * successful keep-alive (or the grant) was sent; past it, `lost` completes even if the
 * cluster could not be reached to say so. A keep-alive goes every `ttl/3`; each request
 * goes to the first URL that answers.
 *
 * @since 0.3.0
 */
import { Deferred, Effect, Option, Schema, type Scope } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient } from "effect/http-api"
import { LeaseKeeper } from "@synod/kv"
import * as Api from "./Api.ts"

export type ApiClient = HttpApiClient.ForApi<typeof Api.Api>

export interface Connection {
  /** The servers' HTTP APIs, tried in order. */
  readonly urls: ReadonlyArray<string>
  /** A bearer token for servers that require one (`http.tokens`). */
  readonly token?: string
}

/** No server could be reached. */
export class Unreachable extends Schema.TaggedError<Unreachable>()("Unreachable", { message: Schema.String }) {}

/** The lease ended (expired or revoked) or was not kept alive in time: its keys are gone, or soon will be. */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  message: Schema.String,
  id: Schema.Int
}) {}

const isUnreachable = (e: unknown): boolean =>
  typeof e === "object" && e !== null && "_tag" in e && (e as { _tag: unknown })._tag === "HttpClientError"

/**
 * Runs `f` against the first URL that can be reached: only a request that never got
 * through is tried on the next URL (one that timed out may have been applied).
 */
export const withCluster = <A, E>(
  connection: Connection,
  f: (client: ApiClient) => Effect.Effect<A, E>
): Effect.Effect<A, E | Unreachable> =>
  Effect.gen(function* () {
    let last = "no URL given"
    for (const url of connection.urls) {
      const token = connection.token
      const client = yield* HttpApiClient.make(Api.Api, {
        baseUrl: url,
        ...(token === undefined ? {} : { transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(token)) })
      }).pipe(Effect.provide(FetchHttpClient.layer))
      const r = yield* Effect.result(f(client))
      if (r._tag === "Success") return r.success
      if (!isUnreachable(r.failure)) return yield* Effect.fail(r.failure)
      last = `${url}: ${(r.failure as Error).message}`
    }
    return yield* new Unreachable({ message: `cannot reach the cluster (${last})` })
  })

export interface Options extends Connection {
  /** The lease's TTL, in ms (`KvLease.minTtlMs` to `KvLease.maxTtlMs`). */
  readonly ttlMs: number
  /** How often to keep it alive; default a third of the TTL. */
  readonly keepAliveEveryMs?: number
}

export interface Lease {
  readonly id: number
  readonly ttlMs: number
  /** Completes when the lease is lost: ended in the cluster, or not kept alive in time. */
  readonly lost: Effect.Effect<void>
  /** Whether this holder may still count on it. */
  readonly valid: Effect.Effect<boolean>
  /** Writes `key` attached to this lease; answers its version. */
  put(key: string, value: string): Effect.Effect<number, LeaseError>
}

type ErrorOf<T> = T extends (...args: Array<any>) => Effect.Effect<any, infer E, any> ? E : never

/** What a request of the API can fail with (the errors it declares, and HTTP or decoding failures). */
export type RequestError =
  | ErrorOf<ApiClient["kv"]["put"]>
  | ErrorOf<ApiClient["lease"]["grant"]>
  | ErrorOf<ApiClient["lease"]["keepalive"]>

export type LeaseError = LeaseLost | Unreachable | Exclude<RequestError, Api.LeaseNotFound>

const now = () => performance.now()

/**
 * Grants a lease of `ttlMs` and keeps it alive until the scope closes, which revokes it
 * (best effort: if the cluster cannot be reached, it expires within its TTL).
 */
export const grant = (options: Options): Effect.Effect<Lease, Exclude<LeaseError, LeaseLost>, Scope.Scope> =>
  Effect.gen(function* () {
    const sent = now()
    const granted = yield* withCluster(options, (c) => c.lease.grant({ payload: { ttl: options.ttlMs / 1000 } }))
    const id = granted.id
    const ttlMs = granted.ttl * 1000
    let validUntil = LeaseKeeper.validUntil(sent, ttlMs)
    const lost = yield* Deferred.make<void>()
    const lose = Effect.asVoid(Deferred.succeed(lost, undefined))
    const every = options.keepAliveEveryMs ?? ttlMs / 3

    const keepAlive = Effect.gen(function* () {
      // every `every` from the last one sent (the grant first), whatever the answers took
      let last = sent
      for (;;) {
        yield* Effect.sleep(Math.max(1, Math.min(last + every - now(), validUntil - now())))
        const at = now()
        last = at
        const r = yield* Effect.result(withCluster(options, (c) => c.lease.keepalive({ params: { id } })))
        if (r._tag === "Success") validUntil = Math.max(validUntil, LeaseKeeper.validUntil(at, ttlMs))
        else if (r.failure._tag === "LeaseNotFound") return yield* lose
        // anything else: try again soon; the watchdog decides when it is too late
        else yield* Effect.sleep(Math.min(every, 250))
      }
    })
    const watchdog = Effect.gen(function* () {
      for (;;) {
        const left = validUntil - now()
        if (left <= 0) return yield* lose
        yield* Effect.sleep(Math.ceil(left))
      }
    })
    yield* Effect.forkScoped(Effect.raceFirst(keepAlive, watchdog))
    yield* Effect.addFinalizer(() =>
      withCluster(options, (c) => c.lease.revoke({ params: { id } })).pipe(Effect.timeout(2000), Effect.ignore)
    )
    return {
      id,
      ttlMs,
      lost: Deferred.await(lost),
      valid: Effect.map(Deferred.poll(lost), (o) => Option.isNone(o) && now() < validUntil),
      put: (key, value) =>
        withCluster(options, (c) => c.kv.put({ params: { key }, payload: { value, lease: id } })).pipe(
          Effect.map((w) => w.version),
          Effect.catchTag("LeaseNotFound", (e) => Effect.fail(new LeaseLost({ message: e.message, id })))
        )
    } satisfies Lease
  })

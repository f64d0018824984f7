/**
 * Watches from TypeScript, over the HTTP API: an Effect `Stream` of the writes to a key
 * or a prefix that survives the loss of its server. It keeps the revision to resume from
 * (the last event's or progress report's, + 1) and, when a connection fails or ends,
 * connects to the next URL from there, so the sequence goes on with no gap and no
 * duplicate. Only a `Compacted` answer (the revision is older than the history kept),
 * a request the server calls bad, or `retries` failed attempts in a row end it with an
 * error.
 *
 * ```ts
 * const changes = WatchClient.watch({ urls: ["http://127.0.0.1:8081", "http://127.0.0.1:8082"], prefix: "config/" })
 * yield* Stream.runForEach(changes, (e) => Console.log(e.revision, e.type, e.key, e.value))
 * ```
 *
 * @since 0.2.0
 */
import { Cause, Context, Effect, Result, Schema, Stream } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient } from "effect/http-api"
import * as Api from "./Api.ts"

export interface Options {
  /** The servers' HTTP APIs, tried in turn. */
  readonly urls: ReadonlyArray<string>
  /** Watch this key only... */
  readonly key?: string
  /** ...or every key under this prefix (neither: every key). */
  readonly prefix?: string
  /** The first revision to report; default: the next write the first server applies. */
  readonly fromRevision?: number
  /** Failed connection attempts in a row (over all URLs) before giving up; default 50. */
  readonly retries?: number
  /** Pause before connecting again; default 100 ms. */
  readonly retryDelayMs?: number
  /** A bearer token for servers that require one (`http.tokens`). */
  readonly token?: string
}

/** What a watch reports: a write, or how far the server has looked without finding one. */
export type Message =
  | { readonly _tag: "Event"; readonly event: Api.WatchEvent }
  | { readonly _tag: "Progress"; readonly revision: number }

/** No server could be reached, or kept the stream up, `attempts` times in a row. */
export class WatchUnreachable extends Schema.TaggedError<WatchUnreachable>()("WatchUnreachable", {
  message: Schema.String,
  attempts: Schema.Int
}) {}

export type WatchError = Api.Compacted | Api.BadRequest | WatchUnreachable

/**
 * Planted bugs of the watch client, for tests that prove they are caught; off by default.
 * `skipAfterReconnect`: after a reconnect, resume one revision too late (an event lost).
 */
export const PlantedBugs = Context.Reference<{ readonly skipAfterReconnect: boolean }>(
  "@synod/cluster/WatchClient/PlantedBugs",
  { defaultValue: () => ({ skipAfterReconnect: false }) }
)

const decodeEvent = Schema.decodeUnknownSync(Schema.fromJsonString(Api.WatchEvent))
const decodeProgress = Schema.decodeUnknownSync(Schema.fromJsonString(Schema.Struct({ revision: Schema.Int })))
const decodeCompacted = Schema.decodeUnknownSync(
  Schema.fromJsonString(Schema.Struct({ message: Schema.String, requested: Schema.Int, oldest: Schema.Int }))
)

/** Events and progress reports (see `watch` for events only). */
export const messages = (options: Options): Stream.Stream<Message, WatchError> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const bugs = yield* PlantedBugs
      const urls = options.urls
      if (urls.length === 0) return Stream.fail(new WatchUnreachable({ message: "no URL to watch from", attempts: 0 }))
      const retries = options.retries ?? 50
      const delay = options.retryDelayMs ?? 100
      let next = options.fromRevision
      let index = 0
      let failures = 0
      let reconnecting = false
      let lastProblem = ""

      const session = Stream.suspend(() => {
        const url = urls[index % urls.length]!
        const from = next === undefined ? undefined : reconnecting && bugs.skipAfterReconnect ? next + 1 : next
        const query = {
          ...(options.key === undefined ? {} : { key: options.key }),
          ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
          ...(from === undefined ? {} : { fromRevision: from })
        }
        const connected = Effect.gen(function* () {
          const token = options.token
          const client = yield* HttpApiClient.make(Api.Api, {
            baseUrl: url,
            ...(token === undefined
              ? {}
              : { transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(token)) })
          })
          return yield* client.watch({ query })
        }).pipe(Effect.provide(FetchHttpClient.layer))
        const moveOn = (problem: string) =>
          Stream.suspend(() => {
            failures++
            index++
            reconnecting = true
            lastProblem = `${url}: ${problem}`
            if (failures > retries) {
              return Stream.fail(
                new WatchUnreachable({
                  message: `watch gave up after ${failures} failed attempts in a row; last: ${lastProblem}`,
                  attempts: failures
                })
              )
            }
            return Stream.fromEffect(Effect.sleep(delay)).pipe(Stream.drain)
          })
        return Stream.unwrap(connected).pipe(
          Stream.mapEffect((e): Effect.Effect<Message, Api.Compacted> => {
            switch (e.event) {
              case "put":
              case "del": {
                const event = decodeEvent(e.data)
                next = event.revision + 1
                failures = 0
                return Effect.succeed({ _tag: "Event", event })
              }
              case "compacted":
                return Effect.fail(new Api.Compacted(decodeCompacted(e.data)))
              default: {
                const { revision } = decodeProgress(e.data)
                next = Math.max(next ?? 0, revision + 1)
                failures = 0
                return Effect.succeed({ _tag: "Progress", revision })
              }
            }
          }),
          Stream.catchCause((cause): Stream.Stream<Message, WatchError> => {
            const error = Cause.findErrorOption(cause)
            if (error._tag === "Some") {
              const e = error.value as { readonly _tag?: string }
              if (e._tag === "Compacted" || e._tag === "BadRequest")
                return Stream.fail(e as Api.Compacted | Api.BadRequest)
            }
            if (Cause.hasInterruptsOnly(cause)) return Stream.failCause(cause as Cause.Cause<never>)
            return moveOn(error._tag === "Some" ? describe(error.value) : Cause.pretty(cause))
          }),
          // the server ended the stream (it stopped): go on elsewhere
          Stream.concat(Stream.suspend(() => moveOn("the stream ended")))
        )
      })
      return Stream.forever(session)
    })
  )

const describe = (e: unknown): string =>
  e instanceof Error ? `${(e as { _tag?: string })._tag ?? e.name}: ${e.message}` : String(e)

/** The writes to the watched keys, in revision order, across reconnects. */
export const watch = (options: Options): Stream.Stream<Api.WatchEvent, WatchError> =>
  messages(options).pipe(Stream.filterMap((m) => (m._tag === "Event" ? Result.succeed(m.event) : Result.failVoid)))

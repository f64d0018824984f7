/**
 * `GET /watch`: the writes to a key or a prefix from a revision on, as Server-Sent Events,
 * served from the applied state of this process's replica (see `Api.WatchGroup`).
 *
 * The stream follows the replica: after each state it applies, the history's events past
 * the last one sent are selected (`KvWatch.select`) and sent in revision order. The
 * replica applies the log in order, and the history has one event per revision, so a
 * watcher gets the log's order of writes for its keys with no gap and no duplicate,
 * whichever replica serves it; resuming elsewhere from the last revision + 1 continues the
 * same sequence. A watcher too slow for the history's retention gets `compacted` and the
 * stream ends (the store keeps only a bounded history; a watcher never holds more than
 * one state).
 *
 * @since 0.2.0
 */
import type { Replica } from "@synod/actors"
import { JsonText } from "@synod/core"
import { type Kv, KvWatch } from "@synod/kv"
import { Clock, Context, Deferred, Effect, Layer, Option, Semaphore, Stream } from "effect"
import { HttpServer } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import * as Api from "./Api.ts"
import { Backend } from "./Backend.ts"
import { noReplica } from "./BackupHandlers.ts"

/** Most watches one process serves at once. */
export const maxWatches = 1000
/** Most events selected per step (a step ends with a send)... */
export const maxBatch = 1000
/**
 * ...and about this many characters of their keys and values: a step's events are written
 * at once, so a reader slower than the history (one resuming from far back) costs the
 * server one step's worth, not the history's.
 */
export const maxBatchChars = 64 * 1024
/** A `progress` event is sent when nothing matched for this long while the store moved on... */
export const progressMs = 1000
/** ...and at least this often when nothing happens at all (a heartbeat). */
export const idleMs = 10_000

export type SseEvent = typeof Api.SseEvent.Type

const eventOf = (e: { readonly revision: number; readonly key: string; readonly value: string | null }): SseEvent => ({
  id: String(e.revision),
  event: e.value === null ? "del" : "put",
  data: JSON.stringify(
    e.value === null
      ? { revision: e.revision, type: "del", key: e.key }
      : { revision: e.revision, type: "put", key: e.key, value: e.value }
  )
})

/**
 * A progress report: the watch has looked at every revision through `through` (its `id`,
 * where a reconnect resumes after). `data.revision` says how far the store has got, which
 * is less for a watch from a revision not reached yet: it reports no progress it has not made.
 */
const progress = (through: number, stored: number): SseEvent => ({
  id: String(through),
  event: "progress",
  data: JSON.stringify({ revision: Math.min(through, stored) })
})

export const compacted = (requested: number, oldest: number) =>
  new Api.Compacted({
    message: `revision ${requested} is compacted: the oldest revision this server can watch from is ${oldest}`,
    requested,
    oldest
  })

/**
 * The process's watches encode their events one step at a time, each step followed by its
 * rest (`JsonText.Pause`: `HandoffScheduler.pause` in a server), as a snapshot's encoding
 * is: background work. A hundred watches resumed from far back at once, each encoding its
 * steps as fast as its reader took them, held every request of the process for 4.7 s
 * (values of 64 Ki control characters, each escaped to 6 bytes), and resting each on its own
 * still for 1.3 s.
 */
const encoding = Semaphore.makeUnsafe(1)

const encodeInTurn = (events: ReadonlyArray<Parameters<typeof eventOf>[0]>): Effect.Effect<Array<SseEvent>> =>
  encoding.withPermit(
    Effect.gen(function* () {
      const started = performance.now()
      const sent = events.map(eventOf)
      yield* (yield* JsonText.Pause)(performance.now() - started)
      return sent
    })
  )

interface Cursor {
  /** The state the last step looked at all of (wait for a newer one); none: look again now. */
  readonly seen: Kv.State | undefined
  /** The next revision to report. */
  readonly from: number
  /** When the last event was sent. */
  readonly sentAt: number
}

/**
 * The SSE events of a watch of `filter` from revision `from` on, the store being at
 * `stored` when it starts; ends after a `compacted` event.
 */
export const events = (
  applied: Replica.Applied<Kv.State>,
  filter: KvWatch.Filter,
  from: number,
  stored: number
): Stream.Stream<SseEvent> =>
  Stream.concat(
    Stream.make(progress(from - 1, stored)),
    Stream.paginate(
      { seen: undefined, from, sentAt: 0 } as Cursor,
      Effect.fnUntraced(function* (cursor: Cursor) {
        const next =
          cursor.seen === undefined
            ? Option.some(yield* applied.current)
            : yield* applied.next(cursor.seen).pipe(Effect.timeoutOption(idleMs))
        const now = yield* Clock.currentTimeMillis
        const state = Option.isSome(next) ? next.value : cursor.seen!
        const selection = KvWatch.select(state, filter, cursor.from, maxBatch, maxBatchChars)
        if (selection._tag === "Compacted") {
          const error = compacted(cursor.from, selection.oldest)
          const body = { _tag: error._tag, message: error.message, requested: error.requested, oldest: error.oldest }
          return [[{ event: "compacted", data: JSON.stringify(body) }], Option.none<Cursor>()] as const
        }
        const { events, through } = selection
        const seen = through >= state.revision ? state : undefined
        const after: Cursor = { seen, from: through + 1, sentAt: cursor.sentAt }
        if (events.length > 0) {
          const sent = yield* encodeInTurn(events)
          return [sent, Option.some({ ...after, sentAt: now })] as const
        }
        if (Option.isNone(next) || now - cursor.sentAt >= progressMs) {
          return [[progress(through, state.revision)], Option.some({ ...after, sentAt: now })] as const
        }
        return [[], Option.some(after)] as const
      })
    )
  )

/**
 * When this server's watches must end: the server is stopping. A watch never ends by
 * itself, and the HTTP server waits for open requests before it closes (up to 20 s); its
 * watchers resume elsewhere from where they were.
 */
export class Watches extends Context.Service<Watches, { readonly stopping: Deferred.Deferred<void> }>()(
  "@synod/cluster/WatchHandlers/Watches"
) {}

/** A new `Watches` (one per server: a call per layer, never shared). */
export const watchesLayer = (): Layer.Layer<Watches> =>
  Layer.sync(Watches, () => ({ stopping: Deferred.makeUnsafe<void>() }))

/**
 * Ends the watches when its scope closes. Built after the HTTP server (it requires it), so
 * it is finalized before the server starts waiting for open requests.
 */
export const stopOnClose: Layer.Layer<never, never, Watches | HttpServer.HttpServer> = Layer.effectDiscard(
  Effect.gen(function* () {
    yield* HttpServer.HttpServer
    const { stopping } = yield* Watches
    yield* Effect.addFinalizer(() => Deferred.succeed(stopping, undefined))
  })
)

export const layer = HttpApiBuilder.group(
  Api.Api,
  "watch",
  Effect.fn(function* (handlers) {
    let active = 0
    return handlers.handle(
      "watch",
      Effect.fn(function* ({ query, request }) {
        const backend = yield* Backend
        const { stopping } = yield* Watches
        const applied = backend.applied
        if (applied === undefined) return yield* noReplica("a watch")
        if (query.key !== undefined && query.prefix !== undefined) {
          return yield* new Api.BadRequest({
            message: "invalid query: give key or prefix, not both",
            issues: [{ path: ["key"], message: "not with prefix" }]
          })
        }
        if (active >= maxWatches) {
          return yield* new Api.TooManyWatches({
            message: `this process serves ${maxWatches} watches already: try another one, or later`,
            limit: maxWatches
          })
        }
        const filter: KvWatch.Filter = query.key !== undefined ? { key: query.key } : { prefix: query.prefix ?? "" }
        const state = yield* applied.current
        // an EventSource reconnecting says where it was
        const header = request.headers["last-event-id"]
        const given = header?.trim() ?? ""
        const last = given === "" ? undefined : /^\d{1,15}$/.test(given) ? Number(given) : Number.NaN
        if (Number.isNaN(last)) {
          const message = "Last-Event-ID is the last revision seen: an integer, 0 or more"
          return yield* new Api.BadRequest({
            message: `invalid headers: ${message}`,
            issues: [{ path: ["last-event-id"], message }]
          })
        }
        const from = last !== undefined ? last + 1 : (query.fromRevision ?? state.revision + 1)
        if (from <= state.history.compacted) return yield* compacted(from, state.history.oldest)
        // counted while the stream runs (a response never sent never counts)
        return Stream.suspend(() => {
          active++
          return events(applied, filter, from, state.revision).pipe(
            Stream.interruptWhen(Deferred.await(stopping)),
            Stream.ensuring(Effect.sync(() => active--))
          )
        })
      })
    )
  })
)

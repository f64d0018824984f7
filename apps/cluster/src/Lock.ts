/**
 * Locks and elections as recipes on leases and watches (ZooKeeper's lock recipe, with
 * etcd's revisions):
 *
 * - To queue, a client writes its own key `<prefix><lease id>` attached to its lease. The
 *   key's version is the revision of that write: its place in the queue, and the
 *   **fencing token** of the holder.
 * - It lists the prefix (through the log: linearizable, at a revision R). If no key has a
 *   lower version, it holds the lock. Otherwise it watches only its predecessor (the key
 *   with the highest version below its own), from R + 1 so no delete is missed, and lists
 *   again when that key changes: each waiter wakes for one key only (no herd effect).
 * - The lock is released when the holder deletes its key, or when its lease ends (revoked,
 *   or expired because the holder died or was cut off): the keeper's expiry deletes the
 *   key and the next waiter's watch fires.
 *
 * Two holders never overlap in the log: a client holds the lock from the revision of the
 * list that found no lower key; the previous holder's key was deleted at or before it.
 * In real time they can overlap: a holder that paused past its lease still believes it
 * holds the lock. That is what the fencing token is for: pass it to the protected
 * resource, which refuses any token lower than the highest it has seen.
 *
 * An election is the same queue under `elect/<name>/` with the candidate's value: the
 * leader is the key with the lowest version, and `observe` follows it.
 *
 * @since 0.3.0
 */
import { Effect, Option, Schema, type Scope, Stream } from "effect"
import * as Api from "./Api.ts"
import { type Connection, type Lease, LeaseLost, Unreachable, withCluster } from "./LeaseClient.ts"
import * as WatchClient from "./WatchClient.ts"

/** The key prefix of lock `name`. */
export const lockPrefix = (name: string) => `lock/${name}/`
/** The key prefix of election `name`. */
export const electionPrefix = (name: string) => `elect/${name}/`

/** Most waiters one queue holds (one page of a list). */
export const maxWaiters = 1000

/** More than `maxWaiters` keys under the lock's (or election's) prefix: this client did not queue behind them. */
export class QueueTooLong extends Schema.TaggedError<QueueTooLong>()("QueueTooLong", { message: Schema.String }) {}

/**
 * The cluster answered a request of the recipe with an error: not ready, no replica, the
 * command rejected or its outcome unknown, the lease holding the most keys it may, an
 * answer that did not decode. Nothing is held (the key written, if any, goes with the lease).
 */
export class LockRefused extends Schema.TaggedError<LockRefused>()("LockRefused", {
  message: Schema.String,
  /** The tag of the cluster's error (`NotReady`, `CommandRejected`, `LeaseRefused`…). */
  reason: Schema.String
}) {}

/**
 * What acquiring a lock, campaigning or observing an election fails with:
 * - `LeaseLost`: the lease ended (expired, revoked) before the lock was got, or the
 *   holder's key was deleted by someone else;
 * - `QueueTooLong`: more than `maxWaiters` clients queued;
 * - `Unreachable`: no server could be reached;
 * - `Unauthorized`, `Forbidden`, `HostNotAllowed`: the servers refused this client;
 * - `LockRefused`: any other error the cluster answered with.
 */
export type LockError =
  | LeaseLost
  | QueueTooLong
  | Unreachable
  | Api.Unauthorized
  | Api.Forbidden
  | Api.HostNotAllowed
  | LockRefused

const messageOf = (e: unknown): string =>
  typeof e === "object" && e !== null && "message" in e && typeof e.message === "string" && e.message !== ""
    ? e.message
    : String(e)

/** Names what went wrong: the recipe's own errors as they are, the rest as `Unreachable` or `LockRefused`. */
const precise =
  (what: string) =>
  (e: unknown): LockError => {
    if (
      e instanceof LeaseLost ||
      e instanceof QueueTooLong ||
      e instanceof Unreachable ||
      e instanceof Api.Unauthorized ||
      e instanceof Api.Forbidden ||
      e instanceof Api.HostNotAllowed ||
      e instanceof LockRefused
    )
      return e
    if (e instanceof WatchClient.WatchUnreachable) return new Unreachable({ message: e.message })
    const tag = typeof e === "object" && e !== null && "_tag" in e ? String(e._tag) : "Unexpected"
    return new LockRefused({ message: `${what}: the cluster answered ${tag}: ${messageOf(e)}`, reason: tag })
  }

export interface Held {
  /** The holder's key. */
  readonly key: string
  /** The fencing token: the revision of the holder's key (higher for every later holder). */
  readonly fence: number
  /** The store's revision when the lock was found free. */
  readonly revision: number
}

interface Options extends Connection {
  readonly lease: Lease
}

const entriesOf = (connection: Connection, prefix: string) =>
  withCluster(connection, (c) => c.kv.list({ query: { prefix, limit: maxWaiters } })).pipe(
    Effect.flatMap((r) =>
      r.more
        ? Effect.fail(new QueueTooLong({ message: `more than ${maxWaiters} keys under ${JSON.stringify(prefix)}` }))
        : Effect.succeed(r)
    )
  )

/** Waits until `key` changes (deleted, or written) after `revision`. */
const changed = (connection: Connection, key: string, revision: number) =>
  WatchClient.watch({
    urls: connection.urls,
    key,
    fromRevision: revision + 1,
    ...(connection.token === undefined ? {} : { token: connection.token })
  }).pipe(Stream.runHead, Effect.asVoid)

/**
 * Queues under `prefix` with `value` and waits for the head of the queue: answers once
 * this client's key has the lowest version. The key is deleted when the scope closes.
 */
export const enqueue = (options: Options, prefix: string, value: string) =>
  Effect.gen(function* () {
    const lease = options.lease
    const key = `${prefix}${lease.id}`
    yield* Effect.addFinalizer(() =>
      withCluster(options, (c) => c.kv.del({ params: { key } })).pipe(Effect.timeout(2000), Effect.ignore)
    )
    yield* lease.put(key, value)
    const wait = Effect.gen(function* () {
      for (;;) {
        const listed = yield* entriesOf(options, prefix)
        const mine = listed.entries.find((e) => e.key === key)
        if (mine === undefined) {
          return yield* new LeaseLost({ message: `${key} is gone: lease ${lease.id} ended`, id: lease.id })
        }
        let predecessor: (typeof Api.Listed.Type)["entries"][number] | undefined
        for (const e of listed.entries) {
          if (e.version < mine.version && (predecessor === undefined || e.version > predecessor.version))
            predecessor = e
        }
        if (predecessor === undefined) return { key, fence: mine.version, revision: listed.revision } satisfies Held
        // only the predecessor: when it goes, this client is next (or its predecessor went first)
        yield* changed(options, predecessor.key, listed.revision).pipe(Effect.catchTag("Compacted", () => Effect.void))
      }
    })
    return yield* Effect.raceFirst(
      wait,
      Effect.andThen(lease.lost, Effect.fail(new LeaseLost({ message: `lease ${lease.id} was lost`, id: lease.id })))
    )
  })

/**
 * Acquires lock `name` with `lease` (waiting for the holders before it); released when
 * the scope closes (or when the lease ends).
 */
export const acquire = (options: Options & { readonly name: string }): Effect.Effect<Held, LockError, Scope.Scope> =>
  enqueue(options, lockPrefix(options.name), `${options.lease.id}`).pipe(
    Effect.mapError(precise(`lock ${JSON.stringify(options.name)}`))
  )

/** Campaigns in election `name` with `value`; answers once elected. Resigns when the scope closes. */
export const campaign = (
  options: Options & { readonly name: string; readonly value: string }
): Effect.Effect<Held, LockError, Scope.Scope> =>
  enqueue(options, electionPrefix(options.name), options.value).pipe(
    Effect.mapError(precise(`election ${JSON.stringify(options.name)}`))
  )

export interface Leader {
  readonly key: string
  readonly value: string
  /** The leader's fencing token (the revision of its key). */
  readonly fence: number
}

/** The current leader of election `name`, if any. */
export const leader = (connection: Connection, name: string): Effect.Effect<Option.Option<Leader>, LockError> =>
  Effect.map(entriesOf(connection, electionPrefix(name)), (r) => {
    let first: Leader | undefined
    for (const e of r.entries)
      if (first === undefined || e.version < first.fence) first = { key: e.key, value: e.value, fence: e.version }
    return Option.fromNullishOr(first)
  }).pipe(Effect.mapError(precise(`election ${JSON.stringify(name)}`)))

/** The leaders of election `name` as they change (none: `Option.none`), starting with the current one. */
export const observe = (connection: Connection, name: string): Stream.Stream<Option.Option<Leader>, LockError> =>
  Stream.unwrap(
    Effect.map(entriesOf(connection, electionPrefix(name)), (r) =>
      Stream.concat(
        Stream.make(undefined),
        WatchClient.watch({
          urls: connection.urls,
          prefix: electionPrefix(name),
          fromRevision: r.revision + 1,
          ...(connection.token === undefined ? {} : { token: connection.token })
        })
      ).pipe(
        Stream.mapEffect(() => leader(connection, name)),
        Stream.changesWith(Option.makeEquivalence<Leader>((x, y) => x.fence === y.fence))
      )
    )
  ).pipe(Stream.mapError(precise(`election ${JSON.stringify(name)}`)))

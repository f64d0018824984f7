/**
 * One process per node id on a cluster. Two processes hosting the same acceptor break
 * every promise it makes, so a process claims its node id on NATS before it starts its
 * roles, and keeps announcing it while it runs.
 *
 * Every claimant listens on the presence subject `synod.<c>.node.<id>` (`Subjects.presence`),
 * each with a random nonce telling it apart from the others:
 *
 * - Starting, it publishes a `Probe` there and listens for `probeTimeout`. A `Here` (a
 *   process that holds the id answering) or a `Probe` of another claimant (two starting
 *   at once) fails the claim with `DuplicateNode`, naming the other process.
 * - Running, it answers every other claimant's `Probe` with a `Here`, and publishes a
 *   `Here` every `heartbeat`. Hearing another claimant's `Here` then means two processes
 *   run as one node (they started in the same instant, or NATS was split when one
 *   probed): neither can take back what its roles did, so it is logged as an error and
 *   counted (`synod_duplicate_node_total`), every heartbeat, for as long as it lasts.
 *
 * Probes and answers share the one subject (no `_INBOX` request/reply), so the server
 * permissions of the subject scheme (`subscribe: synod.<c>.*.<id>`) cover them. A server
 * that refuses the subscription does not stop the start: it is logged as an error, and
 * duplicates go undetected.
 *
 * With a cluster key (`clusterKey`), announcements are sealed (`ClusterKey`, sender
 * `presence.<nonce>`) and only sealed ones count: anyone else who can publish there could
 * otherwise keep a node from ever starting again. A replay cannot either: an announcement
 * sealed more than `maxAgeMs` (10 s) before the receiver's clock is dropped, and a starting
 * claimant is refused only by a `Here` that answers its own probe (it carries the probe's
 * nonce; two claimants starting at once answer each other's). Dropped announcements are
 * counted (`synod_presence_refused_total`) and logged.
 *
 * @since 0.1.0
 */
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import type { Msg } from "@nats-io/transport-node"
import { Transport } from "@synod/core"
import { Clock, Data, Deferred, type Duration, Effect, Exit, Metric, Option, Queue, Schedule, Schema } from "effect"
import * as ClusterKey from "./ClusterKey.ts"
import * as NatsConnection from "./NatsConnection.ts"
import * as Subjects from "./Subjects.ts"

export interface Options {
  readonly cluster: string
  readonly node: string
  /**
   * How long a starting process listens for another one before it takes the id (default
   * 400 ms). A holder answers within a NATS round trip and its event loop's delay; every
   * restart waits this long before it serves, so it is a fail-over's floor. A holder too
   * busy to answer in time is still caught by the heartbeat (an error, counted).
   */
  readonly probeTimeout?: Duration.Input
  /** How often a running process announces itself (default 5 seconds). */
  readonly heartbeat?: Duration.Input
  /** The cluster key, when the cluster has one: announcements are sealed and checked. */
  readonly clusterKey?: ClusterKey.Keys
}

/** With a cluster key, how old (by the receiver's clock) a sealed announcement may be. */
export const maxAgeMs = 10_000

const Instance = {
  nonce: Schema.String,
  pid: Schema.Int,
  host: Schema.String,
  startedAt: Schema.String
}

/** What claimants publish on the presence subject. */
export const Announcement = Schema.Union([
  Schema.TaggedStruct("Probe", Instance),
  // `answers`: the nonce of the probe (or ask) it answers (absent in a heartbeat)
  Schema.TaggedStruct("Here", { ...Instance, answers: Schema.optionalKey(Schema.String) }),
  // is a process running with this node id? (`running`): no claim, and no warning
  Schema.TaggedStruct("Ask", { nonce: Schema.String })
])
export type Announcement = typeof Announcement.Type
type Instance = Omit<Extract<Announcement, { _tag: "Probe" }>, "_tag">

const Wire = Schema.fromJsonString(Schema.toCodecJson(Announcement))

/** `text` as published on `subject`: sealed when there is a sealer (a cluster key). */
const sealed = (sealer: ClusterKey.Sealer | undefined, subject: string, text: string): string =>
  sealer === undefined ? text : sealer.seal(subject, text)

/** The announcement in `data`: its MAC checked (and required) when there is an opener, else stripped. */
const opened = (opener: ClusterKey.Opener | undefined, subject: string, data: Uint8Array) =>
  opener === undefined ? ClusterKey.strip(data) : opener.open(subject, data, true)
const encode = Schema.encodeSync(Wire)
const decode = Schema.decodeUnknownOption(Wire)
const utf8 = new TextDecoder()

export class DuplicateNode extends Data.TaggedError("DuplicateNode")<{
  readonly node: string
  readonly pid: number
  readonly host: string
  readonly message: string
}> {}

export const duplicates = Metric.counter("synod_duplicate_node_total", {
  description: "Announcements heard from another process running with this node id",
  incremental: true
})

export const refused = Metric.counter("synod_presence_refused_total", {
  description: "Presence announcements dropped: no valid MAC of the cluster key, or too old",
  incremental: true
})

export interface Claim {
  /** This claimant's nonce. */
  readonly nonce: string
  /** How many announcements of another running process with this id it has heard. */
  readonly duplicatesHeard: Effect.Effect<number>
}

const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e))

const describe = (other: Instance) => `pid ${other.pid} on host ${other.host}, started ${other.startedAt}`

/**
 * Claims node `options.node` on the connection in context for the life of the scope; fails
 * with `DuplicateNode` when another process has it or claims it at the same time.
 */
export const claim = Effect.fn("Presence.claim")(function* (options: Options) {
  const found = Subjects.isClusterName(options.cluster)
    ? Subjects.presence(options.cluster, options.node)
    : Option.none()
  if (Option.isNone(found)) {
    return yield* new Transport.TransportError({
      reason: `cannot claim node ${JSON.stringify(options.node)} of cluster ${JSON.stringify(options.cluster)}: not a subject token`
    })
  }
  const subject = found.value
  const { client } = yield* NatsConnection.NatsConnection
  const me: Instance = {
    // an identity that must differ between processes, not a simulated choice: not `Random`
    nonce: randomUUID(),
    pid: process.pid,
    host: hostname(),
    startedAt: new Date(yield* Clock.currentTimeMillis).toISOString()
  }
  const counter = Metric.withAttributes(duplicates, { id: options.node })
  const conflict = yield* Deferred.make<Instance>()
  let phase: "starting" | "running" | "refused" = "starting"
  let heard = 0

  const keys = options.clusterKey
  const sealer = keys === undefined ? undefined : ClusterKey.sealer(keys, `presence.${me.nonce}`)
  const opener = keys === undefined ? undefined : ClusterKey.opener(keys)
  const refusedCounter = Metric.withAttributes(refused, { id: options.node })

  const announce = (tag: "Probe" | "Here", answers?: string) =>
    Effect.suspend(() => {
      try {
        const text = encode(
          tag === "Probe" || answers === undefined ? { _tag: tag, ...me } : { _tag: tag, ...me, answers }
        )
        client.publish(subject, sealed(sealer, subject, text))
        return Effect.void
      } catch (cause) {
        return Effect.logWarning("cannot publish on the presence subject", { subject, error: errorMessage(cause) })
      }
    })

  const onAnnouncement = Effect.fnUntraced(function* (a: Announcement) {
    if (a._tag === "Ask") {
      if (phase === "running") yield* announce("Here", a.nonce)
      return
    }
    const { _tag, ...other } = a
    if (other.nonce === me.nonce || phase === "refused") return
    // answer first: a claimant that gives up must still tell the other one
    if (_tag === "Probe") yield* announce("Here", other.nonce)
    if (phase === "starting") {
      // with the key, only a `Here` answering this claimant's own probe refuses the start:
      // a replayed announcement cannot (two claimants starting at once still refuse each
      // other, each answering the other's probe)
      if (keys !== undefined && (_tag === "Probe" || a.answers !== me.nonce)) return
      return yield* Deferred.succeed(conflict, other)
    }
    if (_tag === "Probe") {
      return yield* Effect.logWarning("another process tried to start with this node id; told it to refuse", {
        other: describe(other)
      })
    }
    heard++
    yield* Metric.update(counter, 1)
    yield* Effect.logError("ANOTHER PROCESS IS RUNNING WITH THIS NODE ID: stop one of them", {
      subject,
      other: describe(other)
    })
  })

  const inbox = yield* Queue.dropping<Msg>(256)
  let denied: Error | undefined
  yield* Effect.acquireRelease(
    Effect.try({
      try: () =>
        client.subscribe(subject, {
          callback: (err, msg) => {
            if (err === null) Queue.offerUnsafe(inbox, msg)
            else denied = err
          }
        }),
      catch: (cause) =>
        new Transport.TransportError({ reason: `cannot subscribe to ${subject}: ${errorMessage(cause)}`, cause })
    }),
    (sub) => Effect.sync(() => sub.unsubscribe())
  )
  /** The announcement's text, its MAC and age checked when there is a key; else why it is dropped. */
  const open = (data: Uint8Array, now: number): Uint8Array | string => {
    const body = opened(opener, subject, data)
    if (!(body instanceof Uint8Array)) return body.reason
    if (opener === undefined) return body
    const sealedAt = ClusterKey.sealedAt(data)
    if (sealedAt === undefined || now - sealedAt > maxAgeMs) return `sealed more than ${maxAgeMs} ms ago`
    return body
  }
  yield* Queue.take(inbox).pipe(
    Effect.flatMap((msg) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const body = open(msg.data, now)
        if (typeof body === "string") {
          return Effect.andThen(
            Metric.update(refusedCounter, 1),
            Effect.logWarning("refusing a presence message", { subject, reason: body })
          )
        }
        return Option.match(decode(utf8.decode(body)), {
          onNone: () => Effect.logWarning("ignoring an undecodable presence message", { subject }),
          onSome: onAnnouncement
        })
      })
    ),
    Effect.forever,
    Effect.forkScoped
  )
  // the server has the subscription before anyone is asked: an answer cannot be missed
  yield* Effect.tryPromise(() => client.flush()).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore)
  if (denied !== undefined) {
    // a server whose permissions predate presence: run, but say what is not checked
    yield* Effect.logError(
      "NATS refused the presence subscription: another process with this node id goes undetected",
      {
        subject,
        error: denied.message
      }
    )
  }
  yield* announce("Probe")
  const other = yield* Deferred.await(conflict).pipe(Effect.timeoutOption(options.probeTimeout ?? "400 millis"))
  if (Option.isSome(other)) {
    phase = "refused"
    const o = other.value
    return yield* new DuplicateNode({
      node: options.node,
      pid: o.pid,
      host: o.host,
      message: `another process claims node id "${options.node}" on cluster "${options.cluster}" (${describe(o)}); stop it, or give this process another node id`
    })
  }
  phase = "running"
  // at once, then every heartbeat: a claimant that missed our probe hears this
  yield* announce("Here").pipe(Effect.repeat(Schedule.spaced(options.heartbeat ?? "5 seconds")), Effect.forkScoped)
  yield* Effect.logDebug("node id claimed", { subject, nonce: me.nonce })
  return { nonce: me.nonce, duplicatesHeard: Effect.sync(() => heard) } satisfies Claim
})

/** How many times `running` asks before it concludes no process holds the id. */
export const askTimes = 3

/**
 * Whether a process is running with node id `options.node` (it holds the claim and answers
 * one of `askTimes` asks, each within `timeout`, default 1 s): a membership change asks before it adds a node, so that
 * a configuration never names acceptors that do not exist. With `clusterKey`, only a
 * sealed answer counts.
 */
export const running = Effect.fn("Presence.running")(function* (
  options: Pick<Options, "cluster" | "node" | "clusterKey"> & { readonly timeout?: Duration.Input }
) {
  const found = Subjects.isClusterName(options.cluster)
    ? Subjects.presence(options.cluster, options.node)
    : Option.none()
  if (Option.isNone(found)) return false
  const subject = found.value
  const { client } = yield* NatsConnection.NatsConnection
  const nonce = randomUUID()
  const keys = options.clusterKey
  const opener = keys === undefined ? undefined : ClusterKey.opener(keys)
  const answered = yield* Deferred.make<void>()
  return yield* Effect.acquireUseRelease(
    Effect.try({
      try: () =>
        client.subscribe(subject, {
          callback: (err, msg) => {
            if (err !== null) return
            const body = opened(opener, subject, msg.data)
            if (!(body instanceof Uint8Array)) return
            const a = Option.getOrUndefined(decode(utf8.decode(body)))
            if (a?._tag === "Here" && a.answers === nonce) Deferred.doneUnsafe(answered, Exit.void)
          }
        }),
      catch: () => undefined
    }),
    () =>
      Effect.gen(function* () {
        yield* Effect.tryPromise(() => client.flush()).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore)
        const text = encode({ _tag: "Ask", nonce })
        const sealer = keys === undefined ? undefined : ClusterKey.sealer(keys, `presence.${nonce}`)
        // asked again each `timeout` up to `askTimes`: a holder busy for a second (a loaded
        // machine) answered too late once, and a membership change was refused wrongly
        for (let i = 0; i < askTimes; i++) {
          yield* Effect.try(() => client.publish(subject, sealed(sealer, subject, text))).pipe(Effect.ignore)
          const got = yield* Deferred.await(answered).pipe(Effect.timeoutOption(options.timeout ?? "1 second"))
          if (Option.isSome(got)) return true
        }
        return false
      }),
    (sub) => Effect.sync(() => sub.unsubscribe())
  ).pipe(Effect.catch(() => Effect.succeed(false)))
})

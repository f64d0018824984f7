/**
 * The live dashboard at `/ui`: once a second it samples the servers this process hosts
 * (leader state and ballot, acceptor promise and watermark, replica slotOut, lag and
 * window), the commands committed, the latency of the key-value requests this API
 * answered, and the messages the process's roles sent by type; it keeps five minutes of
 * samples and the last leadership events, and streams them to the page over Server-Sent
 * Events (`/ui/events`). The page (`DashboardPage.ts`) is served by this process and loads
 * nothing else. Commits, latency, message rates and leadership changes come from counters
 * and the roles' metrics, and are sampled all the time; the servers' table only while a
 * page is open, since a server's status encodes its replica's whole state (tens of
 * milliseconds for 100,000 keys).
 *
 * Bounded: `historySeconds` samples, `maxEvents` events, `maxLatencies` latencies a second
 * (more are sampled), `maxViewers` event streams at once (more get a 503).
 *
 * @since 0.2.0
 */
import { type Message, Transport } from "@synod/core"
import { Context, Deferred, Effect, Layer, Metric, PubSub, Schedule, Stream } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { Backend } from "./Backend.ts"
import { page } from "./DashboardPage.ts"

export const historySeconds = 300
export const maxEvents = 100
export const maxLatencies = 10_000
export const maxViewers = 32

// ---------------------------------------------------------------------------------------
// messages sent, by type

/** Messages sent by the roles of this process, by message type, since it started. */
export interface Traffic {
  readonly sent: Record<string, number>
}
// the `Backend` carries a process's `Traffic` (read-only) and its cluster config

export const makeTraffic = (): Traffic => ({ sent: {} })

/**
 * `transport`, counting what it sends by type: one property increment per message, through
 * `send` and through `sendUnsafe` (a client's first send of a command from a promise).
 */
export const countSends = (
  traffic: Traffic,
  transport: Transport.Transport["Service"]
): Transport.Transport["Service"] => {
  const count = (envelope: Message.Envelope): void => {
    const tag = envelope.message._tag
    traffic.sent[tag] = (traffic.sent[tag] ?? 0) + 1
  }
  const sendUnsafe = transport.sendUnsafe
  return Transport.Transport.of({
    ...transport,
    send: (to, envelope) => {
      count(envelope)
      return transport.send(to, envelope)
    },
    ...(sendUnsafe === undefined
      ? {}
      : {
          sendUnsafe: (to, envelope) => {
            count(envelope)
            return sendUnsafe(to, envelope)
          }
        })
  })
}

/** The `Transport` layer `layer` builds, counting its sends into `traffic`. */
export const countingLayer = <E, R>(
  traffic: Traffic,
  layer: Layer.Layer<Transport.Transport, E, R>
): Layer.Layer<Transport.Transport, E, R> =>
  Layer.effect(
    Transport.Transport,
    Effect.gen(function* () {
      return countSends(traffic, yield* Transport.Transport)
    })
  ).pipe(Layer.provide(layer))

// ---------------------------------------------------------------------------------------
// samples

export interface ServerView {
  readonly id: string
  readonly leader?: {
    readonly active: boolean
    readonly ballot: string
    readonly decided: number
    readonly timeoutMs: number
  }
  readonly acceptor?: { readonly promised: string; readonly watermark: number; readonly accepted: number }
  readonly replica?: {
    readonly slotOut: number
    readonly lag: number
    readonly pending: number
    readonly window: number | null
    readonly watermark: number
    readonly durable: number
    readonly following: string | null
    readonly committed: number
  }
}

export interface Latency {
  readonly count: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
}

export interface Sample {
  /** Epoch milliseconds. */
  readonly time: number
  readonly servers: ReadonlyArray<ServerView>
  readonly commitsPerSecond: number
  /** Of the key-value requests this API answered in the last second (null: none). */
  readonly latency: Latency | null
  /** Messages per second the roles of this process sent, by type. */
  readonly rates: Readonly<Record<string, number>>
  /** Leadership events since the previous sample. */
  readonly events: ReadonlyArray<LeadershipEvent>
}

export interface LeadershipEvent {
  readonly time: number
  readonly server: string
  readonly text: string
}

const ballotText = (b: { readonly round: number; readonly leader: string }) =>
  b.round === 0 ? "⊥" : `${b.round}.${b.leader}`

/** Percentiles of `xs` (sorted in place). */
export const percentiles = (xs: Array<number>): Latency | null => {
  if (xs.length === 0) return null
  xs.sort((a, b) => a - b)
  const at = (q: number) => xs[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)]!
  const round = (n: number) => Math.round(n * 100) / 100
  return { count: xs.length, p50: round(at(0.5)), p90: round(at(0.9)), p99: round(at(0.99)), max: round(xs.at(-1)!) }
}

/** Leadership as the roles' metrics tell it, by server id: cheap to read at any rate. */
export interface Leadership {
  /** Leader id → 1 while active. */
  readonly active: ReadonlyMap<string, number>
  /** Leader id → the round of its highest ballot. */
  readonly round: ReadonlyMap<string, number>
  /** Acceptor id → the round it promised. */
  readonly promised: ReadonlyMap<string, number>
}

/** What changed in leadership between two readings of the metrics. */
export const leadershipEvents = (before: Leadership, after: Leadership, time: number): Array<LeadershipEvent> => {
  const events: Array<LeadershipEvent> = []
  // a round names its leader: the one whose ballot has it (rounds are unique per leader)
  const ballot = (round: number) => {
    for (const [id, r] of after.round) if (r === round) return `${round}.${id}`
    return `round ${round}`
  }
  for (const [id, active] of after.active) {
    const was = before.active.get(id)
    if (was === undefined) continue
    const round = after.round.get(id) ?? 0
    const add = (text: string) => events.push({ time, server: id, text })
    if (active === 1 && was !== 1) add(`leader ${id} became active at ballot ${ballot(round)}`)
    else if (active !== 1 && was === 1) add(`leader ${id} stepped down (ballot ${ballot(round)})`)
    else if (round !== before.round.get(id)) add(`leader ${id} moved to ballot ${ballot(round)}`)
  }
  for (const [id, promised] of after.promised) {
    const was = before.promised.get(id)
    if (was !== undefined && promised !== was) {
      events.push({ time, server: id, text: `acceptor ${id} promised ${ballot(promised)}` })
    }
  }
  return events
}

/** Replicas that switched leaders between two samples of the servers' status. */
export const followingEvents = (
  before: ReadonlyArray<ServerView>,
  after: ReadonlyArray<ServerView>,
  time: number
): Array<LeadershipEvent> => {
  const prior = new Map(before.map((s) => [s.id, s]))
  const events: Array<LeadershipEvent> = []
  for (const s of after) {
    const p = prior.get(s.id)
    if (p === undefined) continue
    const add = (text: string) => events.push({ time, server: s.id, text })
    if (s.replica && p.replica && s.replica.following !== p.replica.following) {
      add(
        s.replica.following === null
          ? `replica ${s.id} lost its leader`
          : `replica ${s.id} follows leader ${s.replica.following}`
      )
    }
  }
  return events
}

/** The value of each `name` metric by its `id` attribute. */
const byId = (snapshots: ReadonlyArray<Metric.Metric.Snapshot>, name: string): Map<string, number> => {
  const out = new Map<string, number>()
  for (const s of snapshots) {
    if (s.id !== name) continue
    const id = s.attributes?.id
    if (typeof id !== "string") continue
    const v = s.type === "Counter" ? s.state.count : s.type === "Gauge" ? s.state.value : undefined
    if (v !== undefined) out.set(id, (out.get(id) ?? 0) + Number(v))
  }
  return out
}

export class Dashboard extends Context.Service<
  Dashboard,
  {
    /** Records the latency of one key-value request this API answered. */
    recordLatency(ms: number): void
    /** The samples kept (oldest first) and the events kept. */
    readonly history: Effect.Effect<{
      readonly samples: ReadonlyArray<Sample>
      readonly events: ReadonlyArray<LeadershipEvent>
    }>
    /** A stream of the samples to come, for one viewer (undefined: `maxViewers` are watching). */
    readonly subscribe: Effect.Effect<Stream.Stream<Sample> | undefined>
    /** Ends every stream: the HTTP server waits for open responses when it stops. */
    readonly close: Effect.Effect<void>
  }
>()("@synod/cluster/Dashboard") {}

export interface Options {
  /** Time between samples (default 1 s; tests shorten it). */
  readonly intervalMs?: number
}

/** Samples the `Backend` until the scope closes. */
export const layer = (options: Options = {}): Layer.Layer<Dashboard, never, Backend> =>
  Layer.effect(
    Dashboard,
    Effect.gen(function* () {
      const backend = yield* Backend
      const samples: Array<Sample> = []
      const events: Array<LeadershipEvent> = []
      let latencies: Array<number> = []
      let seen = 0
      let viewers = 0
      let last: { time: number; sent: Record<string, number>; committed: Map<string, number> } | undefined
      let lastServers: ReadonlyArray<ServerView> = []
      let lastLeadership: Leadership = { active: new Map(), round: new Map(), promised: new Map() }
      const pubsub = yield* PubSub.sliding<Sample>(16)
      const closing = yield* Deferred.make<void>()
      yield* Effect.addFinalizer(() => Effect.andThen(Deferred.succeed(closing, undefined), PubSub.shutdown(pubsub)))
      const intervalMs = options.intervalMs ?? 1000
      const keep = Math.ceil((historySeconds * 1000) / intervalMs)

      const sample = Effect.gen(function* () {
        const time = Date.now()
        // the servers' status only for a page that shows it (it encodes each replica's state)
        const statuses = viewers > 0 ? yield* backend.servers : []
        const metrics = yield* Metric.snapshot
        const leadership: Leadership = {
          active: byId(metrics, "synod_leader_active"),
          round: byId(metrics, "synod_leader_ballot_round"),
          promised: byId(metrics, "synod_acceptor_promised_round")
        }
        const committed = byId(metrics, "synod_commands_committed_total")
        const lags = byId(metrics, "synod_slot_lag")
        const servers: Array<ServerView> = statuses.map((s) => ({
          id: s.id,
          ...(s.leader === undefined
            ? {}
            : {
                leader: {
                  active: s.leader.active,
                  ballot: ballotText(s.leader.ballot),
                  decided: s.leader.decided,
                  timeoutMs: Math.round(s.leader.timeoutMs)
                }
              }),
          ...(s.acceptor === undefined
            ? {}
            : {
                acceptor: {
                  promised: ballotText(s.acceptor.promised),
                  watermark: s.acceptor.watermark,
                  accepted: s.acceptor.accepted
                }
              }),
          ...(s.replica === undefined
            ? {}
            : {
                replica: {
                  slotOut: s.replica.slotOut,
                  lag: lags.get(s.id) ?? 0,
                  pending: s.replica.pending,
                  window: backend.config?.window ?? null,
                  watermark: s.replica.watermark,
                  durable: s.replica.durable,
                  following: s.replica.leader ?? null,
                  committed: committed.get(s.id) ?? 0
                }
              })
        }))
        const sent = { ...(backend.traffic?.sent ?? {}) }
        const dt = last === undefined ? 0 : (time - last.time) / 1000
        const rates: Record<string, number> = {}
        let commitsPerSecond = 0
        if (last !== undefined && dt > 0) {
          for (const [tag, n] of Object.entries(sent)) rates[tag] = Math.round((n - (last.sent[tag] ?? 0)) / dt)
          // every replica commits every command: the fastest one's rate is the cluster's
          for (const [id, n] of committed) {
            commitsPerSecond = Math.max(commitsPerSecond, (n - (last.committed.get(id) ?? n)) / dt)
          }
        }
        const fresh = [
          ...leadershipEvents(lastLeadership, leadership, time),
          ...followingEvents(lastServers, servers, time)
        ]
        lastLeadership = leadership
        lastServers = servers
        last = { time, sent, committed }
        const s: Sample = {
          time,
          servers,
          commitsPerSecond: Math.round(commitsPerSecond),
          latency: percentiles(latencies),
          rates,
          events: fresh
        }
        latencies = []
        seen = 0
        samples.push(s)
        if (samples.length > keep) samples.splice(0, samples.length - keep)
        events.push(...fresh)
        if (events.length > maxEvents) events.splice(0, events.length - maxEvents)
        yield* PubSub.publish(pubsub, s)
      })
      yield* Effect.forkScoped(Effect.repeat(sample, Schedule.spaced(intervalMs)))

      return Dashboard.of({
        recordLatency: (ms) => {
          seen++
          if (latencies.length < maxLatencies) latencies.push(ms)
          else {
            // reservoir sampling: every latency of the second is as likely to be kept
            const i = Math.floor(Math.random() * seen)
            if (i < maxLatencies) latencies[i] = ms
          }
        },
        history: Effect.sync(() => ({ samples: [...samples], events: [...events] })),
        subscribe: Effect.sync(() => {
          if (viewers >= maxViewers) return undefined
          viewers++
          return Stream.fromPubSub(pubsub).pipe(
            Stream.haltWhen(Deferred.await(closing)),
            Stream.ensuring(
              Effect.sync(() => {
                viewers--
              })
            )
          )
        }),
        close: Deferred.succeed(closing, undefined).pipe(Effect.asVoid)
      })
    })
  )

/**
 * Ends the dashboard's streams as soon as the process stops, before the HTTP server waits
 * for its open responses: built after the server (it requires `HttpServer`), so released
 * before it.
 */
export const closeOnShutdown: Layer.Layer<never, never, Dashboard | HttpServer.HttpServer> = Layer.effectDiscard(
  Effect.gen(function* () {
    const dashboard = yield* Dashboard
    yield* HttpServer.HttpServer
    yield* Effect.addFinalizer(() => dashboard.close)
  })
)

// ---------------------------------------------------------------------------------------
// routes

const encoder = new TextEncoder()
const sse = (event: string, data: unknown) => encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)

/** `GET /ui` (the page) and `GET /ui/events` (the stream); require a `Dashboard`. */
export const routes = HttpRouter.addAll([
  HttpRouter.route(
    "GET",
    "/ui",
    Effect.succeed(
      HttpServerResponse.text(page, {
        contentType: "text/html; charset=utf-8",
        headers: { "cache-control": "no-cache" }
      })
    )
  ),
  HttpRouter.route(
    "GET",
    "/ui/events",
    Effect.gen(function* () {
      const dashboard = yield* Dashboard
      const backend = yield* Backend
      const stream = yield* dashboard.subscribe
      if (stream === undefined) {
        return HttpServerResponse.jsonUnsafe(
          { _tag: "TooManyViewers", message: `at most ${maxViewers} dashboards at once` },
          { status: 503 }
        )
      }
      const history = yield* dashboard.history
      const init = sse("init", { cluster: backend.cluster, transport: backend.transport, historySeconds, ...history })
      return HttpServerResponse.stream(
        Stream.concat(
          Stream.make(init),
          Stream.map(stream, (s) => sse("sample", s))
        ),
        {
          contentType: "text/event-stream",
          headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
        }
      )
    })
  )
])

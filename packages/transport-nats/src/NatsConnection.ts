/**
 * The process's one NATS connection, as a scoped resource. NATS multiplexes every
 * subscription and publish of a process over a single socket, so a node opens exactly
 * one connection (named after the node, as the server's monitoring shows it) and every
 * role it hosts shares it.
 *
 * Lifecycle:
 * - Building the layer waits for the first connection, however long NATS takes to come
 *   up (`waitOnFirstConnect`), logging a warning every few seconds meanwhile; a node can
 *   be started before its server. Bad credentials fail the build with a `TransportError`
 *   (the client gives up after the server rejects them twice in a row).
 * - Once connected, the client reconnects forever (with jitter) and re-subscribes by
 *   itself; status events (disconnect, reconnect, errors including permission
 *   violations, slow consumer, stale connection, lame duck) become log lines and
 *   counters (`NatsStats`).
 * - Closing the scope drains the connection (pending publishes are flushed, in-flight
 *   messages processed), or closes it outright when NATS is unreachable or the drain
 *   takes too long.
 *
 * @since 0.1.0
 */
import { readFileSync } from "node:fs"
import {
  connect,
  credsAuthenticator,
  type NatsConnection as Client,
  type NodeConnectionOptions,
  type TlsOptions,
  nkeyAuthenticator,
  PermissionViolationError,
  type Status
} from "@nats-io/transport-node"
import { Transport } from "@synod/core"
import { Context, Duration, Effect, Layer, Stream } from "effect"
import * as NatsStats from "./NatsStats.ts"

/** How the connection proves who it is. One of them, or none for an open server. */
export type Auth =
  | { readonly user: string; readonly password: string }
  | { readonly token: string }
  /** An nkey seed (`SU…`); the client signs the server's nonce with it. */
  | { readonly nkeySeed: string }
  /** A `.creds` file (user JWT + nkey seed), read again at every (re)connect so rotated creds are picked up. */
  | { readonly credsFile: string }

/** TLS for `tls://` servers or servers that require it; file paths or PEM text. */
export interface Tls {
  /** CA bundle to verify the server with (for a private CA). */
  readonly caFile?: string
  readonly ca?: string
  /** Client certificate and key, when the server verifies clients. */
  readonly certFile?: string
  readonly cert?: string
  readonly keyFile?: string
  readonly key?: string
  /** TLS before the NATS INFO line; the server must be configured with `handshake_first`. */
  readonly handshakeFirst?: boolean
}

export interface Options {
  /** NATS URLs (`nats://host:port`, `tls://…`, `host:port`). Give every cluster member, so a reconnect can move. */
  readonly servers: string | ReadonlyArray<string>
  /** The connection name the server shows: use the node id. */
  readonly name: string
  readonly auth?: Auth
  readonly tls?: Tls
  /** Pause between reconnect attempts to one server (default 2 seconds); random jitter is added. */
  readonly reconnectWait?: Duration.Input
  /** Upper bound of the random delay added to `reconnectWait` (default 100 millis; TLS: 1 second). */
  readonly reconnectJitter?: Duration.Input
  /** Handshake timeout of one connection attempt (default 20 seconds). */
  readonly connectTimeout?: Duration.Input
  /** Client pings (default every 2 minutes); `maxPingOut` unanswered ones make the connection stale. */
  readonly pingInterval?: Duration.Input
  readonly maxPingOut?: number
  /** Try `servers` in the given order instead of shuffling them (default false). */
  readonly noRandomize?: boolean
  /** How long closing the scope waits for the drain before closing abruptly (default 5 seconds). */
  readonly drainTimeout?: Duration.Input
}

export class NatsConnection extends Context.Service<
  NatsConnection,
  {
    readonly name: string
    /** The client itself, for what the `Transport` does not cover (request/reply, raw publishes in tests). */
    readonly client: Client
    /** Whether the socket is up right now (false while reconnecting). Plain function: hot paths call it. */
    isConnectedUnsafe(): boolean
  }
>()("@synod/transport-nats/NatsConnection") {}

const millis = (d: Duration.Input | undefined): number | undefined =>
  d === undefined ? undefined : Duration.toMillis(d)

const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e))

const authOptions = (auth: Auth): Effect.Effect<NodeConnectionOptions, Transport.TransportError> => {
  if ("user" in auth) return Effect.succeed({ user: auth.user, pass: auth.password })
  if ("token" in auth) return Effect.succeed({ token: auth.token })
  if ("nkeySeed" in auth) {
    return Effect.succeed({ authenticator: nkeyAuthenticator(new TextEncoder().encode(auth.nkeySeed)) })
  }
  const file = auth.credsFile
  // read once now, so a missing file is a clear startup error instead of a reconnect loop
  return Effect.try({
    try: () => {
      const initial = readFileSync(file)
      return {
        authenticator: credsAuthenticator(() => {
          try {
            return readFileSync(file)
          } catch {
            return initial
          }
        })
      }
    },
    catch: (cause) =>
      new Transport.TransportError({ reason: `cannot read NATS creds file ${file}: ${errorMessage(cause)}`, cause })
  })
}

const tlsOptions = (tls: Tls): TlsOptions => {
  const out: TlsOptions = {}
  if (tls.caFile !== undefined) out.caFile = tls.caFile
  if (tls.ca !== undefined) out.ca = tls.ca
  if (tls.certFile !== undefined) out.certFile = tls.certFile
  if (tls.cert !== undefined) out.cert = tls.cert
  if (tls.keyFile !== undefined) out.keyFile = tls.keyFile
  if (tls.key !== undefined) out.key = tls.key
  if (tls.handshakeFirst !== undefined) out.handshakeFirst = tls.handshakeFirst
  return out
}

/** The client options synod always uses, plus the caller's. */
const clientOptions = Effect.fnUntraced(function* (options: Options) {
  const out: NodeConnectionOptions = {
    servers: typeof options.servers === "string" ? [options.servers] : [...options.servers],
    name: options.name,
    reconnect: true,
    maxReconnectAttempts: -1,
    waitOnFirstConnect: true,
    // stack traces captured at every async call site cost more than the call itself
    noAsyncTraces: true,
    ...(options.auth === undefined ? {} : yield* authOptions(options.auth))
  }
  if (options.tls !== undefined) out.tls = tlsOptions(options.tls)
  const wait = millis(options.reconnectWait)
  if (wait !== undefined) out.reconnectTimeWait = wait
  const jitter = millis(options.reconnectJitter)
  if (jitter !== undefined) {
    out.reconnectJitter = jitter
    out.reconnectJitterTLS = jitter
  }
  const timeout = millis(options.connectTimeout)
  if (timeout !== undefined) out.timeout = timeout
  const ping = millis(options.pingInterval)
  if (ping !== undefined) out.pingInterval = ping
  if (options.maxPingOut !== undefined) out.maxPingOut = options.maxPingOut
  if (options.noRandomize !== undefined) out.noRandomize = options.noRandomize
  return out
})

/**
 * `connect()`, interruptibly. The client offers no way to cancel a pending connect, and
 * with `waitOnFirstConnect` it retries forever, so an interrupted connect would keep the
 * process alive: the `reconnectToServer` hook (called before every attempt) aborts the
 * dial loop once we have given up, and a connection that still completes is closed.
 */
const connectInterruptibly = (options: NodeConnectionOptions, servers: string) =>
  Effect.callback<Client, Transport.TransportError>((resume) => {
    let abandoned = false
    connect({
      ...options,
      reconnectToServer: () => {
        if (abandoned) throw new Error("connect abandoned")
        return null
      }
    }).then(
      (client) => {
        if (abandoned) void client.close().catch(() => undefined)
        else resume(Effect.succeed(client))
      },
      (cause: unknown) => {
        if (!abandoned) {
          resume(
            Effect.fail(
              new Transport.TransportError({
                reason: `cannot connect to NATS at ${servers}: ${errorMessage(cause)}`,
                cause
              })
            )
          )
        }
      }
    )
    return Effect.sync(() => {
      abandoned = true
    })
  })

/** Closes the client: a drain when connected (bounded by `timeout`), else an abrupt close. */
const shutdown = (client: Client, connected: boolean, timeout: Duration.Input) =>
  Effect.gen(function* () {
    if (client.isClosed()) return
    if (connected) {
      const drained = yield* Effect.tryPromise(() => client.drain()).pipe(
        Effect.timeoutOption(timeout),
        Effect.match({ onFailure: () => false, onSuccess: (o) => o._tag === "Some" })
      )
      if (drained) return yield* Effect.logDebug("NATS connection drained")
      yield* Effect.logWarning("NATS drain failed or timed out; closing the connection")
    }
    yield* Effect.tryPromise(() => client.close()).pipe(Effect.ignore)
  })

/** Turns one status event into a log line and counters; tracks whether the socket is up. */
const onStatus = (stats: NatsStats.NatsStats["Service"], setConnected: (up: boolean) => void) =>
  Effect.fnUntraced(function* (status: Status) {
    switch (status.type) {
      case "disconnect":
        setConnected(false)
        yield* stats.count("disconnects")
        return yield* Effect.logWarning("NATS disconnected", { server: status.server })
      case "reconnect":
        setConnected(true)
        yield* stats.count("reconnects")
        return yield* Effect.logInfo("NATS reconnected", { server: status.server })
      case "reconnecting":
        return yield* Effect.logDebug("NATS reconnecting")
      case "update":
        return yield* Effect.logDebug("NATS cluster update", {
          added: status.added ?? [],
          deleted: status.deleted ?? []
        })
      case "ldm":
        yield* stats.count("lameDuck")
        return yield* Effect.logWarning("NATS server entering lame duck mode", { server: status.server })
      case "error": {
        yield* stats.count("errors")
        const error = status.error
        if (error instanceof PermissionViolationError) {
          yield* stats.count("permissionErrors")
          return yield* Effect.logError("NATS permission violation", {
            operation: error.operation,
            subject: error.subject,
            error: error.message
          })
        }
        return yield* Effect.logError("NATS error", { error: errorMessage(error) })
      }
      case "staleConnection":
        yield* stats.count("staleConnections")
        return yield* Effect.logWarning("NATS connection stale (pings unanswered); reconnecting")
      case "slowConsumer":
        yield* stats.count("slowConsumers")
        return yield* Effect.logWarning("NATS slow consumer", {
          subject: status.sub.getSubject(),
          pending: status.pending
        })
      case "forceReconnect":
        return yield* Effect.logInfo("NATS forced reconnect")
      case "close":
        setConnected(false)
        return yield* Effect.logInfo("NATS connection closed")
      case "ping":
        return
    }
  })

/** Connects (waiting for NATS if need be) and watches the connection until the scope closes. */
export const make = (options: Options) =>
  Effect.gen(function* () {
    const servers = (typeof options.servers === "string" ? [options.servers] : options.servers).join(",")
    const stats = yield* NatsStats.make(options.name)
    const config = yield* clientOptions(options)
    let connected = true

    const waiting = Effect.logWarning("still waiting for NATS", { servers }).pipe(
      Effect.delay("5 seconds"),
      Effect.forever
    )
    const client = yield* Effect.acquireRelease(
      Effect.raceFirst(connectInterruptibly(config, servers), waiting),
      (client) =>
        shutdown(client, connected, options.drainTimeout ?? "5 seconds").pipe(
          Effect.annotateLogs({ nats: options.name })
        ),
      { interruptible: true }
    )
    yield* Effect.logInfo("NATS connected", { server: client.getServer() })

    // status() registers its listener now; the stream only starts reading it
    yield* Stream.fromAsyncIterable(client.status(), (e) => e).pipe(
      Stream.runForEach(
        onStatus(stats, (up) => {
          connected = up
        })
      ),
      Effect.catchCause((cause) => Effect.logError("NATS status stream failed", cause)),
      Effect.forkScoped
    )

    const connection = NatsConnection.of({
      name: options.name,
      client,
      isConnectedUnsafe: () => connected
    })
    return { connection, stats } as const
  }).pipe(Effect.annotateLogs({ nats: options.name }))

/** The connection and its counters, for the lifetime of the layer. */
export const layer = (options: Options): Layer.Layer<NatsConnection | NatsStats.NatsStats, Transport.TransportError> =>
  Layer.effectContext(
    Effect.map(make(options), ({ connection, stats }) =>
      Context.make(NatsConnection, connection).pipe(Context.add(NatsStats.NatsStats, stats))
    )
  )

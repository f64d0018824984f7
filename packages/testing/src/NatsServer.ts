/**
 * Test and benchmark kit: real `nats-server` processes on loopback, as scoped resources. Each server
 * gets a free port, is waited for until it accepts TCP connections, and is killed when
 * the scope closes; `kill` (SIGKILL) and `restart` (same port, same arguments) simulate
 * a crash. Clusters are three servers routed to each other on loopback.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Data, Effect, Schedule, type Scope } from "effect"

export class ServerError extends Data.TaggedError("ServerError")<{ readonly reason: string }> {}

const binary = existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server"

/** A port nobody listens on right now (bind port 0, read it, release it). */
const anyFreePort: Effect.Effect<number, ServerError> = Effect.callback((resume) => {
  const srv = net.createServer()
  srv.unref()
  srv.once("error", (e) => resume(Effect.fail(new ServerError({ reason: `no free port: ${e.message}` }))))
  srv.listen(0, "127.0.0.1", () => {
    const address = srv.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    srv.close(() => resume(Effect.succeed(port)))
  })
})

/**
 * Ports this process handed out, most recent last: a port released after `anyFreePort`
 * may come back from the very next call (a NATS cluster member once got the same port for
 * its clients and its routes, and could not bind the second), so none is handed out twice
 * among the last few hundred.
 */
const handedOut: Array<number> = []

/** A port nobody listens on right now and that this process has not handed out lately. */
export const freePort: Effect.Effect<number, ServerError> = Effect.gen(function* () {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = yield* anyFreePort
    if (handedOut.includes(port)) continue
    handedOut.push(port)
    if (handedOut.length > 512) handedOut.shift()
    return port
  }
  return yield* new ServerError({ reason: "no free port: the system kept offering ports already handed out" })
})

/** Succeeds once something accepts a TCP connection on `port`. */
const probe = (port: number): Effect.Effect<void, ServerError> =>
  Effect.callback((resume) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.void)
    })
    socket.once("error", (e) => {
      socket.destroy()
      resume(Effect.fail(new ServerError({ reason: e.message })))
    })
  })

const waitUntilUp = (port: number) =>
  probe(port).pipe(
    Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 250 }),
    Effect.mapError((e) => new ServerError({ reason: `nats-server on ${port} did not come up: ${e.reason}` }))
  )

const exited = (child: ChildProcess): Effect.Effect<void> =>
  Effect.callback((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
  })

export interface ServerOptions {
  /** Port to listen on (default: a free one). */
  readonly port?: number
  /** Contents of a config file (written to a temp dir and passed with `-c`). */
  readonly config?: string
  /** Extra command-line arguments, e.g. cluster routes. */
  readonly args?: ReadonlyArray<string>
}

export interface Server {
  readonly port: number
  readonly url: string
  /** SIGKILL, and wait until the process is gone. */
  readonly kill: Effect.Effect<void>
  /** Starts the server again with the same port and arguments (after `kill`). */
  readonly restart: Effect.Effect<void, ServerError>
  /** What the server wrote to stderr (its log), for failure messages. */
  readonly log: () => string
  /** The running process's pid (for benchmarks that count its CPU), if it runs. */
  readonly pid: () => number | undefined
}

/**
 * Starts a nats-server for the lifetime of the scope. On a port of its own choosing it
 * tries again on another when the one it chose was taken before the server could bind it
 * (another process got it between `freePort` and the server's start).
 */
export const start = (options: ServerOptions = {}): Effect.Effect<Server, ServerError, Scope.Scope> =>
  options.port !== undefined
    ? startOn(options.port, options)
    : Effect.flatMap(freePort, (port) => startOn(port, options)).pipe(
        Effect.retry({ times: 3, while: (e) => e.reason.includes("address already in use") })
      )

const startOn = Effect.fnUntraced(function* (port: number, options: ServerOptions) {
  const args = ["-a", "127.0.0.1", "-p", String(port), ...(options.args ?? [])]
  if (options.config !== undefined) {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "synod-nats-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    const file = join(dir, "nats.conf")
    writeFileSync(file, options.config)
    args.push("-c", file)
  }
  let output = ""
  let child: ChildProcess | undefined
  const kill = Effect.suspend(() => {
    const c = child
    if (c === undefined) return Effect.void
    child = undefined
    c.kill("SIGKILL")
    return exited(c)
  })
  const launch = Effect.suspend(() => {
    const c = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] })
    c.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    child = c
    return waitUntilUp(port).pipe(
      Effect.mapError((e) => new ServerError({ reason: `${e.reason}\n${output}` })),
      Effect.tapError(() => kill)
    )
  })
  yield* Effect.acquireRelease(launch, () => kill)
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    kill,
    restart: launch,
    log: () => output,
    pid: () => child?.pid
  } satisfies Server
})

/** Three servers routed to each other on loopback, forming one NATS cluster. */
export const startCluster = Effect.fnUntraced(function* () {
  const routePorts = [yield* freePort, yield* freePort, yield* freePort]
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`)
  return yield* Effect.forEach(
    routePorts,
    (p, i) =>
      start({
        args: [
          "--cluster_name",
          "synodtest",
          "--cluster",
          `nats://127.0.0.1:${p}`,
          "--routes",
          routes.filter((_, j) => j !== i).join(",")
        ]
      }),
    { concurrency: "unbounded" }
  )
})

/**
 * Benchmark kit: a local nats-server and N `synod serve` processes (each an acceptor,
 * leader and replica with its data directory, so fsync on, and its HTTP API on a fixed
 * port), with the controls a fault benchmark needs — SIGKILL and restart from the data
 * directory, SIGSTOP/SIGCONT, `GET /status` — and closed-loop key-value clients in this
 * process that record every commit.
 *
 * Processes run on the real Node binary (`process.execPath`; the npm `node` shim would
 * not forward signals). Each server's output goes to `<dir>/<id>.log` (across restarts)
 * and its last lines are kept in memory for failure reports. Everything is a scoped
 * resource: closing the scope stops the clients, the servers and the nats-server.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Client } from "@synod/actors"
import { ClusterConfig } from "@synod/core"
import * as NatsServer from "@synod/testing/NatsServer"
import { NatsTransport } from "@synod/transport-nats"
import { Data, Deferred, Effect, FiberSet, Layer, Option, type Scope } from "effect"
import type { ServerStatus, Status } from "@synod/cluster/Api"
import { Kv } from "@synod/kv"

const cli = new URL("../src/cli.ts", import.meta.url).pathname
/** The installed command: the bundle (`pnpm build`), as `synod serve` runs for users. */
const bin = new URL("../bin/synod.js", import.meta.url).pathname

export class BenchError extends Data.TaggedError("BenchError")<{ readonly reason: string }> {}

// ---------------------------------------------------------------------------------------
// command line and numbers

/** `--name value` from the command line, as a positive number. */
export const flag = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  const v = i > 0 ? Number(process.argv[i + 1]) : dflt
  if (!Number.isFinite(v) || v < 0) {
    process.stderr.write(`--${name} must be a number ≥ 0\n`)
    process.exit(2)
  }
  return v
}

/** `--name` present on the command line. */
export const has = (name: string): boolean => process.argv.includes(`--${name}`)

/** Nearest-rank percentile of an ascending array (NaN when empty). */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!

export const print = (line: string): void => {
  process.stdout.write(`${line}\n`)
}

/** Milliseconds since this process started (monotonic). */
export const now = (): number => performance.now()

/** CPU seconds a process has used (`@synod/testing/ProcessCpu`). */
export { cpuSeconds, runQueueSeconds, wakeups } from "@synod/testing/ProcessCpu"

// ---------------------------------------------------------------------------------------
// status

export type Ballot = { readonly round: number; readonly leader: string }

export const ballotText = (b: Ballot): string => `${b.round}.${b.leader}`

const ballotLess = (a: Ballot, b: Ballot): boolean => a.round < b.round || (a.round === b.round && a.leader < b.leader)

/** The active leader with the highest ballot among the answers (a stale one may still say active). */
export const activeLeader = (
  rows: ReadonlyArray<ServerStatus | undefined>
): { readonly id: string; readonly ballot: Ballot; readonly actives: number } | undefined => {
  let best: { id: string; ballot: Ballot } | undefined
  let actives = 0
  for (const row of rows) {
    if (row?.leader?.active !== true) continue
    actives++
    if (best === undefined || ballotLess(best.ballot, row.leader.ballot))
      best = { id: row.id, ballot: row.leader.ballot }
  }
  return best === undefined ? undefined : { ...best, actives }
}

// ---------------------------------------------------------------------------------------
// servers

export interface Server {
  readonly id: string
  readonly url: string
  /** The process id of the running process, if any. */
  readonly pid: () => number | undefined
  readonly running: () => boolean
  readonly paused: () => boolean
  /** SIGKILL, and wait until the process is gone. */
  readonly kill: Effect.Effect<void>
  /** SIGTERM (a clean stop: an active leader hands over first), and wait until the process is gone. */
  readonly terminate: Effect.Effect<void>
  /** Starts the process again from its config and data directory; waits for its HTTP API. */
  readonly restart: Effect.Effect<void, BenchError>
  readonly pause: Effect.Effect<void>
  readonly resume: Effect.Effect<void>
  /** Its `GET /status` row, or undefined when it does not answer within `timeoutMs`. */
  status(timeoutMs?: number): Effect.Effect<ServerStatus | undefined>
  /** The lines it wrote (and its starts and exits) from `since` on (`now()` scale), at most the last `max`. */
  lines(since: number, max: number): ReadonlyArray<string>
}

export interface Cluster {
  /** The cluster's name (NATS subject prefix). */
  readonly name: string
  readonly servers: ReadonlyArray<Server>
  /**
   * The replicas of the latest configuration as far as this bench changed it (`setMembers`):
   * where its clients send, so that they follow a replacement as a server's own clients do.
   */
  readonly members: () => ReadonlyArray<string>
  readonly setMembers: (ids: ReadonlyArray<string>) => void
  readonly config: ClusterConfig.ClusterConfig
  readonly natsUrl: string
  readonly dir: string
  /** Every server's status, in parallel (undefined for those that do not answer). */
  readonly statuses: (timeoutMs?: number) => Effect.Effect<ReadonlyArray<ServerStatus | undefined>>
  /**
   * Starts a new server `id` with an empty data directory and the cluster's first
   * configuration (it is in none: it learns the history from the others once a change
   * adds it, and copies their state), and counts it among `servers`.
   */
  readonly join: (id: string) => Effect.Effect<Server, BenchError, Scope.Scope>
  /** Stops `server` cleanly (SIGTERM) and no longer counts it among `servers`. */
  readonly leave: (server: Server) => Effect.Effect<void>
}

export interface Options {
  readonly servers: number
  /** Cluster name (the NATS subject prefix). */
  readonly name: string
  readonly clientTimeoutMs: number
  /** Asked when the scope closes: keep the temp dir (data and logs)? */
  readonly keep?: () => boolean
  readonly logLevel?: "Debug" | "Info" | "Warn" | "Error"
  /**
   * What a server process runs: `source` (default), `src/cli.ts` with the `@synod/source`
   * condition the bench inherits; `build`, the `synod` command (`bin/synod.js`, the bundle).
   */
  readonly entry?: "source" | "build"
  /** The cluster's `snapshotEvery` (slots between a replica's snapshots); absent: the default. */
  readonly snapshotEvery?: number
}

const exited = (c: ChildProcess): Effect.Effect<void> =>
  Effect.callback((resume) => {
    if (c.exitCode !== null || c.signalCode !== null) return resume(Effect.void)
    c.once("exit", () => resume(Effect.void))
  })

const fetchStatus = (url: string, timeoutMs: number): Effect.Effect<ServerStatus | undefined> =>
  Effect.promise(async () => {
    try {
      const res = await fetch(`${url}/status`, { signal: AbortSignal.timeout(timeoutMs) })
      if (!res.ok) return undefined
      const body = (await res.json()) as Status
      return body.servers[0]
    } catch {
      return undefined
    }
  })

/** Lines of output kept in memory per server. */
const linesKept = 4000

const server = Effect.fnUntraced(function* (dir: string, id: string, config: object, entry: "source" | "build") {
  const port = yield* NatsServer.freePort.pipe(Effect.mapError((e) => new BenchError({ reason: e.reason })))
  const file = join(dir, `${id}.json`)
  writeFileSync(file, JSON.stringify({ ...config, node: id, dataDir: join(dir, id), http: { port } }, null, 2))
  const url = `http://127.0.0.1:${port}`
  const log = createWriteStream(join(dir, `${id}.log`), { flags: "a" })
  const kept: Array<{ readonly at: number; readonly text: string }> = []
  const keep = (text: string) => {
    kept.push({ at: now(), text })
    if (kept.length > linesKept) kept.splice(0, kept.length - linesKept)
  }
  const recent = (n: number) =>
    kept
      .slice(-n)
      .map((l) => l.text)
      .join("\n")
  let child: ChildProcess | undefined
  let stopped = false
  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null

  const kill = Effect.suspend(() => {
    const c = child
    if (c === undefined) return Effect.void
    c.kill("SIGKILL")
    return exited(c)
  })
  const terminate = Effect.suspend(() => {
    const c = child
    if (c === undefined) return Effect.void
    c.kill("SIGTERM")
    return exited(c)
  })
  const launch = Effect.suspend(() => {
    stopped = false
    let seen = ""
    const c = spawn(process.execPath, [entry === "build" ? bin : cli, "serve", "--config", file], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    child = c
    const mark = (what: string) => {
      log.write(`---- ${new Date().toISOString()} ${what}\n`)
      keep(`---- ${new Date().toISOString().slice(11, 23)} ${what}`)
    }
    mark(`start pid ${c.pid}`)
    const reader = () => {
      let partial = ""
      return (d: Buffer) => {
        const text = d.toString()
        seen += seen.length < 4096 ? text : ""
        log.write(text)
        const parts = (partial + text).split("\n")
        partial = parts.pop()!
        for (const line of parts) keep(line)
      }
    }
    c.stdout?.on("data", reader())
    c.stderr?.on("data", reader())
    c.once("exit", (code, signal) => mark(`exit ${code ?? signal}`))
    return Effect.callback<void, BenchError>((resume) => {
      const timer = setInterval(() => {
        if (/HTTP API on/.test(seen)) {
          clearInterval(timer)
          resume(Effect.void)
        } else if (c.exitCode !== null || c.signalCode !== null) {
          clearInterval(timer)
          resume(Effect.fail(new BenchError({ reason: `${id} exited at start:\n${recent(40)}` })))
        }
      }, 25)
      return Effect.sync(() => clearInterval(timer))
    }).pipe(
      Effect.timeoutOrElse({
        duration: "30 seconds",
        orElse: () => Effect.fail(new BenchError({ reason: `${id} did not start in 30 s:\n${recent(40)}` }))
      })
    )
  })
  // at the end: resume if paused, SIGTERM, and SIGKILL after 5 s
  const stop = Effect.suspend(() => {
    const c = child
    if (c === undefined || !running()) return Effect.void
    c.kill("SIGCONT")
    c.kill("SIGTERM")
    return exited(c).pipe(
      Effect.timeoutOption("5 seconds"),
      Effect.flatMap((done) => (Option.isSome(done) ? Effect.void : kill))
    )
  }).pipe(Effect.ensuring(Effect.sync(() => log.end())))
  yield* Effect.acquireRelease(launch, () => stop)
  return {
    id,
    url,
    pid: () => (running() ? child?.pid : undefined),
    running,
    paused: () => stopped,
    kill,
    terminate,
    restart: launch,
    pause: Effect.sync(() => {
      stopped = true
      child?.kill("SIGSTOP")
    }),
    resume: Effect.sync(() => {
      stopped = false
      child?.kill("SIGCONT")
    }),
    status: (timeoutMs = 1000) => (running() ? fetchStatus(url, timeoutMs) : Effect.succeed(undefined)),
    lines: (since, max) =>
      kept
        .filter((l) => l.at >= since)
        .slice(-max)
        .map((l) => l.text)
  } satisfies Server
})

/** One log line, shortened: the JSON lines of `Logger.consoleJson` as `time LEVEL message args`. */
const compact = (line: string): string => {
  try {
    const j = JSON.parse(line) as { message: unknown; level: string; timestamp: string }
    const [text, ...args] = Array.isArray(j.message) ? j.message : [j.message]
    return `${j.timestamp.slice(11, 23)} ${j.level} ${text}${args.map((a) => ` ${JSON.stringify(a)}`).join("")}`
  } catch {
    return line
  }
}

/**
 * Prints what every server wrote since `since` (`now()` scale): the last `max` lines,
 * shortened, runs of the same line folded into one with a count.
 */
export const printLogs = (cluster: Cluster, since: number, max = 20): void => {
  for (const s of cluster.servers) {
    const state = s.running() ? (s.paused() ? "paused" : "running") : "down"
    const lines = s.lines(since, 2000).map(compact)
    const folded: Array<{ text: string; times: number }> = []
    for (const text of lines) {
      const last = folded.at(-1)
      if (last?.text === text) last.times++
      else folded.push({ text, times: 1 })
    }
    print(
      `    ---- ${s.id} (${state} now): ${lines.length} lines since then${folded.length > max ? `, the last ${max}` : ""}`
    )
    for (const { text, times } of folded.slice(-max))
      print(`    ${text.slice(0, 300)}${times > 1 ? ` (×${times})` : ""}`)
  }
}

/** A nats-server and `options.servers` server processes s1…sN, for the lifetime of the scope. */
export const start = Effect.fnUntraced(function* (options: Options) {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), `synod-${options.name}-`))),
    (d) =>
      Effect.sync(() => {
        if (options.keep?.() === true) print(`data and logs kept in ${d}`)
        else rmSync(d, { recursive: true, force: true })
      })
  )
  const nats = yield* NatsServer.start().pipe(Effect.mapError((e) => new BenchError({ reason: e.reason })))
  const ids = Array.from({ length: options.servers }, (_, i) => `s${i + 1}`)
  const input = {
    acceptors: ids,
    leaders: ids,
    replicas: ids,
    timeouts: { clientTimeoutMs: options.clientTimeoutMs },
    ...(options.snapshotEvery === undefined ? {} : { snapshotEvery: options.snapshotEvery })
  }
  const common = {
    name: options.name,
    cluster: input,
    transport: { kind: "nats", servers: [nats.url] },
    logLevel: options.logLevel ?? "Info"
  }
  const servers: Array<Server> = yield* Effect.forEach(
    ids,
    (id) => server(dir, id, common, options.entry ?? "source"),
    { concurrency: "unbounded" }
  )
  let members: ReadonlyArray<string> = ids
  return {
    name: options.name,
    servers,
    members: () => members,
    setMembers: (next) => {
      members = next
    },
    config: ClusterConfig.make(input),
    natsUrl: nats.url,
    dir,
    statuses: (timeoutMs = 1000) => Effect.forEach(servers, (s) => s.status(timeoutMs), { concurrency: "unbounded" }),
    join: (id) =>
      server(dir, id, { ...common, roles: ["acceptor", "leader", "replica"] }, options.entry ?? "source").pipe(
        Effect.tap((s) => Effect.sync(() => servers.push(s)))
      ),
    leave: (s) =>
      Effect.andThen(
        Effect.sync(() => {
          const i = servers.indexOf(s)
          if (i >= 0) servers.splice(i, 1)
        }),
        s.terminate
      )
  } satisfies Cluster
})

// ---------------------------------------------------------------------------------------
// clients

export interface Load {
  /** Successful submits so far, and submits that ended with `OutcomeUnknown` (or another error). */
  readonly committed: () => number
  readonly unknown: () => number
  /** Completion time of the latest commit (`now()` scale). */
  readonly lastCommit: () => number
  /** Waits for the first commit of a write submitted after `after`; answers its completion time. */
  firstCommitAfter(after: number): Effect.Effect<number>
  /** Interrupts every client loop (in-flight submits are abandoned). */
  readonly stop: Effect.Effect<void>
}

export interface LoadOptions {
  readonly clients: number
  readonly valueBytes: number
  /** The key of client `i`'s `n`-th write (default `bench/<i>`: one key per client). */
  readonly key?: (i: number, n: number) => string
  /** Called on every commit with the submit's start and completion times, and what it wrote. */
  readonly onCommit?: (start: number, end: number, write: { readonly key: string; readonly value: string }) => void
  readonly onUnknown?: (start: number, end: number) => void
}

/**
 * `clients` closed-loop writers on one NATS connection, each putting `valueBytes` values
 * under its own key as fast as the cluster answers; a failed submit is followed by a new
 * one. Runs until `stop` or the end of the scope.
 */
export const load = Effect.fnUntraced(function* (cluster: Cluster, options: LoadOptions) {
  const context = yield* Layer.build(
    NatsTransport.layer({ servers: [cluster.natsUrl], name: "bench-clients", cluster: cluster.name })
  ).pipe(Effect.mapError((e) => new BenchError({ reason: `clients cannot connect: ${e.reason}` })))
  // one client scope (ids `<scope>.<i>`): their requests to a replica share a subject, so the
  // transport coalesces them as it did before requests had subjects of their own
  const clients = yield* Effect.forEach(
    Array.from({ length: options.clients }, (_, i) => i),
    (i) => Client.make(Kv.machine, cluster.config, { id: `bench.${i}`, replicas: cluster.members }),
    { concurrency: 16 }
  ).pipe(
    Effect.provideContext(context),
    Effect.mapError((e) => new BenchError({ reason: `clients cannot listen: ${e.reason}` }))
  )
  let committed = 0
  let unknown = 0
  let lastCommit = now()
  let waiters: Array<{ readonly after: number; readonly done: Deferred.Deferred<number> }> = []
  const filler = "x".repeat(options.valueBytes)
  const writer = (client: Client.Client<Kv.Command, Kv.Result>, i: number) =>
    Effect.gen(function* () {
      for (let n = 0; ; n++) {
        const start = now()
        // the value's head changes with every write; the rest pads it to valueBytes
        const head = `${i}.${n}.`
        const value = head + filler.slice(head.length)
        const key = options.key?.(i, n) ?? `bench/${i}`
        const result = yield* Effect.result(client.submit({ _tag: "Put", key, value }))
        const end = now()
        if (result._tag === "Failure") {
          unknown++
          options.onUnknown?.(start, end)
          continue
        }
        committed++
        lastCommit = end
        options.onCommit?.(start, end, { key, value })
        if (waiters.length > 0) {
          const ready = waiters.filter((w) => start > w.after)
          if (ready.length > 0) {
            waiters = waiters.filter((w) => start <= w.after)
            for (const w of ready) Deferred.doneUnsafe(w.done, Effect.succeed(end))
          }
        }
      }
    })
  const fibers = yield* FiberSet.make()
  for (const [i, client] of clients.entries()) yield* FiberSet.run(fibers, writer(client, i))
  return {
    committed: () => committed,
    unknown: () => unknown,
    lastCommit: () => lastCommit,
    firstCommitAfter: (after: number) =>
      Effect.gen(function* () {
        const done = yield* Deferred.make<number>()
        waiters.push({ after, done })
        return yield* Deferred.await(done)
      }),
    stop: FiberSet.clear(fibers)
  } satisfies Load
})

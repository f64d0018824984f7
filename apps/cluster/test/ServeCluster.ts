/**
 * Test kit: a cluster of `synod serve` processes as in production — each an acceptor, a
 * leader and a replica with its own data directory (so fsync on) and its HTTP API on a
 * free port — over a nats-server of its own, for the lifetime of the scope. It waits for
 * readiness, finds the active leader, and gives the last lines every process wrote, to
 * put in a failure message (the processes' output stays out of the test's otherwise).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ClusterConfig } from "@synod/core"
import { NatsServer } from "@synod/testing"
import { Cause, Effect } from "effect"
import { type Daemon, daemon, http, ProcessError, settledStatus } from "./Process.ts"

export interface Member {
  readonly node: string
  readonly proc: Daemon
  /** Its HTTP API, e.g. `http://127.0.0.1:40123`. */
  readonly url: string
}

export interface ServeCluster {
  /** The cluster's name (the NATS subject prefix). */
  readonly name: string
  readonly natsUrl: string
  /** The cluster config every process has (for clients in the test process). */
  readonly config: ClusterConfig.ClusterConfig
  readonly members: ReadonlyArray<Member>
  /** The members whose process still runs. */
  readonly live: () => ReadonlyArray<Member>
}

export interface Options {
  readonly name: string
  /** Servers s1…sN (default 3). */
  readonly servers?: number
  /** Default `Info`: the fail-over messages are worth having in a failure report. */
  readonly logLevel?: "Debug" | "Info" | "Warn" | "Error"
  /** More of the cluster's configuration (`snapshotEvery`, timeouts…) beside its members. */
  readonly settings?: Record<string, unknown>
  /** The config file's `tracing` section (an OTLP/HTTP collector); absent: no tracing. */
  readonly tracing?: { readonly endpoint: string }
}

/** A nats-server and `options.servers` `synod serve` processes, each started once its HTTP API listens. */
export const start = Effect.fnUntraced(function* (options: Options) {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), `synod-${options.name}-`))),
    (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
  )
  const nats = yield* NatsServer.start()
  const ids = Array.from({ length: options.servers ?? 3 }, (_, i) => `s${i + 1}`)
  const cluster = { ...options.settings, acceptors: ids, leaders: ids, replicas: ids }
  const members = yield* Effect.forEach(
    ids,
    (node) =>
      Effect.gen(function* () {
        const file = join(dir, `${node}.json`)
        writeFileSync(
          file,
          JSON.stringify({
            name: options.name,
            node,
            cluster,
            dataDir: join(dir, node),
            transport: { kind: "nats", servers: [nats.url] },
            http: { port: 0 },
            logLevel: options.logLevel ?? "Info",
            ...(options.tracing === undefined ? {} : { tracing: options.tracing })
          })
        )
        const proc = yield* daemon(["serve", "--config", file])
        const url = yield* proc.waitFor(/HTTP API on (http:\/\/\S+)/)
        return { node, proc, url } satisfies Member
      }),
    { concurrency: "unbounded" }
  )
  return {
    name: options.name,
    natsUrl: nats.url,
    config: ClusterConfig.make(cluster),
    members,
    live: () => members.filter((m) => !m.proc.exited())
  } satisfies ServeCluster
})

/** Waits until every running member answers `GET /readyz` with 200. */
export const ready = (cluster: ServeCluster, timeoutMs = 30_000) =>
  Effect.gen(function* () {
    let last = ""
    const deadline = performance.now() + timeoutMs
    while (performance.now() < deadline) {
      const answers = yield* Effect.forEach(cluster.live(), (m) => Effect.result(http("GET", `${m.url}/readyz`)), {
        concurrency: "unbounded"
      })
      if (answers.every((a) => a._tag === "Success" && a.success.status === 200)) return
      last = answers
        .map((a) => (a._tag === "Success" ? `${a.success.status} ${JSON.stringify(a.success.body)}` : a.failure.reason))
        .join("; ")
      yield* Effect.sleep("100 millis")
    }
    return yield* new ProcessError({ reason: `the cluster was not ready in ${timeoutMs} ms: ${last}` })
  })

/** The running member whose leader is active, once the cluster is settled (see `settledStatus`). */
export const leader = (cluster: ServeCluster) =>
  Effect.gen(function* () {
    const rows = yield* settledStatus(
      cluster
        .live()
        .map((m) => m.url)
        .join(",")
    )
    const id = rows.find((r) => r.leader.active)!.id
    return cluster.members.find((m) => m.node === id)!
  })

/** A line of a process's JSON log (`Logger.consoleJson`) as `time LEVEL message args`; other lines as they are. */
const readable = (line: string): string => {
  try {
    const j = JSON.parse(line) as { message: unknown; level: string; timestamp: string }
    const [text, ...args] = Array.isArray(j.message) ? j.message : [j.message]
    return [j.timestamp.slice(11, 23), j.level, text, ...args.map((a) => JSON.stringify(a))].join(" ")
  } catch {
    return line
  }
}

/**
 * The last `lines` lines each member wrote (stdout and stderr), readable, a run of lines
 * alike but for their time folded into its last with a count; under a header naming the member.
 */
export const tails = (cluster: ServeCluster, lines = 30): string =>
  cluster.members
    .map((m) => {
      const folded: Array<{ text: string; times: number }> = []
      for (const line of `${m.proc.stdout()}${m.proc.stderr()}`.trimEnd().split("\n").map(readable)) {
        const last = folded.at(-1)
        if (last !== undefined && last.text.slice(13) === line.slice(13)) {
          last.text = line
          last.times++
        } else folded.push({ text: line, times: 1 })
      }
      const shown = folded.slice(-lines).map((l) => (l.times > 1 ? `${l.text} (×${l.times})` : l.text))
      return `---- ${m.node} (pid ${m.proc.pid}, ${m.proc.exited() ? "exited" : "running"}):\n${shown.join("\n")}`
    })
    .join("\n")

/** How many times `pattern` occurs in what the members wrote so far. */
export const count = (cluster: ServeCluster, pattern: RegExp): number =>
  cluster.members.reduce(
    (n, m) => n + (`${m.proc.stdout()}${m.proc.stderr()}`.match(new RegExp(pattern, "g"))?.length ?? 0),
    0
  )

/** A `ProcessError`'s reason (`Cause.pretty` shows only its empty message). */
const reason = (cause: Cause.Cause<unknown>): string => {
  const e = Cause.squash(cause)
  return e instanceof ProcessError ? `${e.reason}\n` : ""
}

/**
 * Runs `self`; if it fails or dies (a failed assertion), dies with the same report
 * followed by the last lines of every member's output.
 */
const explained =
  (cluster: ServeCluster) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, never, R> =>
    Effect.catchCause(self, (cause) =>
      Cause.hasInterruptsOnly(cause)
        ? Effect.failCause(cause as Cause.Cause<never>)
        : Effect.flatMap(statuses(cluster), (now) =>
            Effect.die(
              new Error(
                `${reason(cause)}${Cause.pretty(cause)}\n\nthe servers' status at the failure:\n${now}\n\nthe servers' last lines:\n${tails(cluster)}`
              )
            )
          )
    )

/**
 * Each running member's `GET /status` at the time of a failure (a stalled log shows as a
 * `slotOut` that does not move, a silent leader as no member active), one line each; a
 * member that does not answer within a second says so.
 */
const statuses = (cluster: ServeCluster): Effect.Effect<string> =>
  Effect.forEach(
    cluster.live(),
    (m) =>
      http("GET", `${m.url}/status`).pipe(
        Effect.timeout("1 second"),
        Effect.match({
          onFailure: (e) => `${m.node}: no answer (${"reason" in e ? e.reason : String(e)})`,
          onSuccess: (r) => `${m.node}: ${JSON.stringify(r.body)}`
        })
      ),
    { concurrency: "unbounded" }
  ).pipe(Effect.map((lines) => lines.join("\n")))

/**
 * Starts a cluster (see `start`), waits until it is ready and runs `body` on it; a
 * failure of `body` is reported with the last lines of every member's output.
 */
export const run = <A, E, R>(options: Options, body: (cluster: ServeCluster) => Effect.Effect<A, E, R>) =>
  Effect.flatMap(start(options), (cluster) => Effect.andThen(ready(cluster), body(cluster)).pipe(explained(cluster)))

/**
 * Fail-over benchmark: a nats-server and 3 (then 5) `synod serve` processes with fsync,
 * 64 closed-loop clients in this process, and the active leader faulted again and again:
 * SIGKILLed (then restarted from its data directory) 10 times, stopped cleanly with
 * SIGTERM (it hands the leadership over first; then restarted) 3 times, then stopped with
 * SIGSTOP for 3 s and resumed with SIGCONT 5 times, then (`--transfers N`, 0 by default) handed
 * over on demand to a named server (`POST /leader/transfer?to=`, the server before it in
 * order, so not the default successor) N times, then (`--removals N`, 0 by default) replaced
 * N times: a new server with an empty data directory is started and one configuration
 * change swaps it for a follower's server (odd events) or the leader's (even events: the
 * leadership moves first), the old one stopped once retired. Before each fault the cluster must be whole
 * (every server running and answering, and every replica caught up: its `slotOut` within
 * `--lag` slots of the furthest replica's), have an active leader and commit writes, and keep
 * that leader through 2 s of settling. So each fault is one fault: a server still catching
 * up from the last one is not yet a replica a majority can count on (`--overlap` injects
 * the next fault anyway, as before).
 *
 * For each fault it prints the time from the fault to the commit of the first write
 * submitted after it (a write decided before the fault does not count), and at the end
 * p50/p99/max over the events and the longest interval without any commit (a majority is
 * up throughout), against the targets: p99 ≤ 1 s with 3 servers, ≤ 1.5 s with 5, no
 * interval over 2 s. An event without a commit within the cap (30 s) is a failure. It also
 * prints how long every replica took to catch up after the fault (the restarted server's
 * replica, mostly), with p50 and max in the summary; replicas not caught up within the cap
 * end the scenario as failed. After
 * an event slower than 2 s the last lines of every server's log are printed, and the temp
 * directory (data and full logs) is kept.
 *
 *   pnpm bench failover                                  3 servers, then 5
 *   pnpm bench failover --servers 3 --kills 2 --pauses 1
 *   pnpm bench failover --servers 3 --kills 0 --stops 0 --pauses 0 --transfers 10
 *   pnpm bench failover --servers 3 --kills 0 --stops 0 --pauses 0 --removals 4
 *
 * Flags: --servers N, --kills N, --stops N (3), --pauses N, --transfers N (0), --removals N (0), --clients N (64), --value-bytes N (100),
 * --client-timeout MS (2500), --cap S (30), --settle S (2), --pause-seconds S (3), --lag N (16,
 * a window), --overlap, --keep (keep data and logs).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Fiber, Option, References } from "effect"
import type { ServerStatus } from "@synod/cluster/Api"
import * as Cluster from "./Cluster.ts"
import { flag, has, now, percentile, print } from "./Cluster.ts"

const serverCounts = has("servers") ? [flag("servers", 3)] : [3, 5]
const kills = flag("kills", 10)
const stops = flag("stops", 3)
const pauses = flag("pauses", 5)
const transfers = flag("transfers", 0)
const removals = flag("removals", 0)
const clients = flag("clients", 64)
const valueBytes = flag("value-bytes", 100)
const clientTimeoutMs = flag("client-timeout", 2500)
const capMs = flag("cap", 30) * 1000
const settleMs = flag("settle", 2) * 1000
const pauseMs = flag("pause-seconds", 3) * 1000
const lagSlots = flag("lag", 16)
const overlap = has("overlap")
const targetMs = (servers: number) => (servers <= 3 ? 1000 : 1500)
const gapTargetMs = 2000

type Kind = "kill" | "stop" | "pause" | "transfer" | "remove" | "remove-leader"
const kinds: ReadonlyArray<Kind> = ["kill", "stop", "pause", "transfer", "remove", "remove-leader"]

interface Event {
  readonly kind: Kind
  readonly n: number
  readonly server: string
  /** Fault to the commit of the first write submitted after it; Infinity: none within the cap. */
  readonly ms: number
  /** Longest interval without a commit that ended (or was still open) during the event. */
  readonly gapMs: number
  readonly unknown: number
  /** Fault to every replica caught up (`caughtUp`); Infinity: not within the cap. */
  readonly catchUpMs: number
}

interface Scenario {
  readonly servers: number
  readonly events: ReadonlyArray<Event>
  /** Longest interval without a commit from the first fault to the end. */
  readonly gapMs: number
  readonly unknown: number
  readonly committed: number
  /** Why the scenario stopped early, if it did. */
  readonly aborted: string | undefined
}

const secs = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : "none")

const leaderText = (l: { readonly id: string; readonly ballot: Cluster.Ballot } | undefined) =>
  l === undefined ? "none" : `${l.id} ${Cluster.ballotText(l.ballot)}`

/**
 * Every server answers and its replica has performed up to `lagSlots` of the furthest one:
 * no replica is still catching up (learning the log, or copying a peer's state).
 */
const caughtUp = (rows: ReadonlyArray<ServerStatus | undefined>): boolean => {
  const outs = rows.map((r) => r?.replica?.slotOut)
  if (outs.some((o) => o === undefined)) return false
  const ahead = Math.max(...(outs as Array<number>))
  return (outs as Array<number>).every((o) => o >= ahead - lagSlots)
}

/**
 * Waits until the cluster is ready for a fault: every server runs and answers (and,
 * without `--overlap`, its replica caught up), a leader
 * is active and writes commit (one in the last 500 ms), and after `settleMs` the same
 * leader is still active and writes still commit. Answers that leader, or undefined
 * after `capMs`. A leader change while settling is printed (no fault caused it).
 */
const settled = (cluster: Cluster.Cluster, load: Cluster.Load, onReady: () => void) =>
  Effect.gen(function* () {
    const deadline = now() + capMs
    const flowing = () => now() - load.lastCommit() < 500
    while (now() < deadline) {
      const rows = yield* cluster.statuses()
      const before = Cluster.activeLeader(rows)
      const whole =
        cluster.servers.every((s, i) => s.running() && !s.paused() && rows[i] !== undefined) &&
        (overlap || caughtUp(rows))
      if (!whole || before === undefined || !flowing()) {
        yield* Effect.sleep("200 millis")
        continue
      }
      onReady()
      yield* Effect.sleep(settleMs)
      const after = Cluster.activeLeader(yield* cluster.statuses())
      if (leaderText(after) === leaderText(before) && flowing()) return after
      print(
        `  not settled: leader ${leaderText(before)} → ${leaderText(after)} without a fault, ` +
          `last commit ${secs(now() - load.lastCommit())} s ago; settling again`
      )
    }
    return undefined
  })

const scenario = (servers: number) =>
  Effect.gen(function* () {
    let failed = false
    print(`\n${servers} servers: starting nats-server and ${servers} synod serve processes (fsync on)…`)
    const cluster = yield* Cluster.start({
      servers,
      name: `failover${servers}`,
      clientTimeoutMs,
      keep: () => failed || has("keep")
    })
    let measuring = false
    let last: number | undefined
    let gapMs = 0
    let eventGapMs = 0
    const load = yield* Cluster.load(cluster, {
      clients,
      valueBytes,
      onCommit: (_, end) => {
        if (measuring && last !== undefined) {
          gapMs = Math.max(gapMs, end - last)
          eventGapMs = Math.max(eventGapMs, end - last)
        }
        last = end
      }
    })
    print(`${clients} clients writing ${valueBytes}-byte values; waiting for a leader and commits…`)
    const plan: Array<Kind> = [...Array.from({ length: kills }, () => "kill" as const)]
    for (let i = 0; i < stops; i++) plan.push("stop")
    for (let i = 0; i < pauses; i++) plan.push("pause")
    for (let i = 0; i < transfers; i++) plan.push("transfer")
    // a follower's server, then the leader's, and so on
    for (let i = 0; i < removals; i++) plan.push(i % 2 === 0 ? "remove" : "remove-leader")
    let joined = servers
    const events: Array<Event> = []
    let aborted: string | undefined
    let unknownFrom = load.unknown()
    for (const [k, kind] of plan.entries()) {
      const leader = yield* settled(cluster, load, () => {
        if (!measuring) {
          measuring = true
          unknownFrom = load.unknown()
        }
      })
      if (leader === undefined) {
        aborted = `no settled leader with commits flowing within ${capMs / 1000} s before event ${k + 1}`
        break
      }
      const server = cluster.servers.find((s) => s.id === leader.id)!
      const removing = kind === "remove" || kind === "remove-leader"
      // a removal replaces a server by a new one with an empty data directory, started first
      const fresh = removing ? yield* cluster.join(`s${++joined}`) : undefined
      const unknownBefore = load.unknown()
      eventGapMs = 0
      const t0 = now()
      // a clean stop waits in the background: the process exits once its successor leads
      const stopping = kind === "stop" ? yield* Effect.forkChild(server.terminate) : undefined
      if (kind === "kill") yield* server.kill
      else if (kind === "pause") yield* server.pause
      const resumer =
        kind === "pause"
          ? yield* Effect.forkChild(Effect.sleep(pauseMs).pipe(Effect.andThen(server.resume)))
          : undefined
      // a transfer answers once the named leader leads: in the background too
      const i = cluster.servers.indexOf(server)
      const to = cluster.servers[(i - 1 + cluster.servers.length) % cluster.servers.length]!.id
      const transferring =
        kind === "transfer"
          ? yield* Effect.forkChild(
              Effect.promise(() =>
                fetch(`${server.url}/leader/transfer?to=${to}`, { method: "POST" }).then(
                  async (r) => `${r.status} ${await r.text()}`,
                  (e: unknown) => `failed: ${String(e)}`
                )
              )
            )
          : undefined
      const removed =
        fresh === undefined
          ? undefined
          : yield* Effect.forkChild(
              replace(
                cluster,
                kind === "remove-leader" ? server : cluster.servers.find((s) => s !== server && s !== fresh)!,
                fresh
              )
            )
      const first = yield* load.firstCommitAfter(t0).pipe(Effect.timeoutOption(capMs))
      const ms = Option.isSome(first) ? first.value - t0 : Number.POSITIVE_INFINITY
      // nothing committed since: the open interval counts too
      eventGapMs = Math.max(eventGapMs, now() - load.lastCommit())
      gapMs = Math.max(gapMs, eventGapMs)
      let restartError: string | undefined
      if (stopping !== undefined) yield* Fiber.join(stopping)
      if (transferring !== undefined) {
        const answer = yield* Fiber.join(transferring)
        if (!answer.startsWith("200 ")) restartError = `transfer to ${to}: ${answer}`
      } else if (removed !== undefined) {
        restartError = yield* Fiber.join(removed)
        // the interval without a commit until the old server is gone, and a little after
        yield* Effect.sleep("500 millis")
        eventGapMs = Math.max(eventGapMs, now() - load.lastCommit())
        gapMs = Math.max(gapMs, eventGapMs)
      } else if (resumer !== undefined) yield* Fiber.join(resumer)
      else {
        const r = yield* Effect.result(server.restart)
        if (r._tag === "Failure") restartError = r.failure.reason
      }
      // every replica caught up again (the restarted one, mostly): polled until the cap
      let catchUpMs = Number.POSITIVE_INFINITY
      let rows = yield* cluster.statuses()
      while (restartError === undefined) {
        if (cluster.servers.every((s) => s.running() && !s.paused()) && caughtUp(rows)) {
          catchUpMs = now() - t0
          break
        }
        if (now() - t0 > capMs) break
        yield* Effect.sleep("100 millis")
        rows = yield* cluster.statuses()
      }
      const after = Cluster.activeLeader(rows)
      const event: Event = {
        kind,
        n: k + 1,
        server: server.id,
        ms,
        gapMs: eventGapMs,
        unknown: load.unknown() - unknownBefore,
        catchUpMs
      }
      events.push(event)
      print(
        `${kind.padEnd(8)} #${String(event.n).padEnd(2)} leader ${server.id.padEnd(3)} ` +
          `→ next commit ${Number.isFinite(ms) ? `${secs(ms)} s` : `none within ${capMs / 1000} s`}` +
          `   (longest gap ${secs(event.gapMs)} s, ${event.unknown} unknown, ` +
          `leader now ${leaderText(after)}, replicas caught up ${Number.isFinite(catchUpMs) ? `${secs(catchUpMs)} s` : `not within ${capMs / 1000} s`})`
      )
      // slow or no recovery: what the servers were saying (and keep their full logs)
      if (!(ms <= gapTargetMs)) {
        failed = true
        Cluster.printLogs(cluster, t0 - 1000)
      }
      if (restartError !== undefined) {
        aborted = kind === "transfer" || removing ? restartError : `restart of ${server.id} failed: ${restartError}`
        break
      }
      if (!Number.isFinite(catchUpMs)) {
        const outs = rows.map((r, i) => `${cluster.servers[i]?.id} ${r?.replica?.slotOut ?? "?"}`).join(", ")
        aborted = `replicas not caught up within ${capMs / 1000} s of event ${k + 1} (slotOut: ${outs})`
        break
      }
    }
    if (aborted !== undefined) {
      failed = true
      print(`aborted: ${aborted}`)
      Cluster.printLogs(cluster, now() - capMs)
    }
    yield* load.stop
    return {
      servers,
      events,
      gapMs,
      unknown: load.unknown() - unknownFrom,
      committed: load.committed(),
      aborted
    } satisfies Scenario
  }).pipe(
    Effect.scoped,
    Effect.catchTag("BenchError", (e) =>
      Effect.sync(() => {
        print(`aborted: ${e.reason}`)
        return { servers, events: [], gapMs: 0, unknown: 0, committed: 0, aborted: e.reason } satisfies Scenario
      })
    )
  )

interface MembersBody {
  readonly history?: ReadonlyArray<{
    readonly members: Record<"acceptors" | "leaders" | "replicas", ReadonlyArray<string>>
  }>
  readonly effective?: number
  readonly slotOut?: number
  readonly removed?: ReadonlyArray<{ readonly id: string; readonly retired: boolean }>
}

const call = (method: "GET" | "POST", url: string, body?: unknown) =>
  Effect.promise(async (): Promise<{ status: number; body: MembersBody; text: string }> => {
    try {
      const res = await fetch(url, {
        method,
        signal: AbortSignal.timeout(30_000),
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } })
      })
      const text = await res.text()
      let parsed: MembersBody = {}
      try {
        parsed = JSON.parse(text) as MembersBody
      } catch {}
      return { status: res.status, body: parsed, text }
    } catch (e) {
      return { status: 0, body: {}, text: String(e) }
    }
  })

/**
 * Replaces `old` by `fresh` in one configuration change (`POST /members` through a server
 * that stays), waits until `fresh` has performed past the change and reports `old`
 * retired (no slot needs it any more), then stops `old` cleanly. Answers what went wrong,
 * or undefined.
 */
const replace = (cluster: Cluster.Cluster, old: Cluster.Server, fresh: Cluster.Server) =>
  Effect.gen(function* () {
    const via = cluster.servers.find((s) => s !== old && s !== fresh)!
    const current = yield* call("GET", `${via.url}/members`)
    const members = current.body.history?.at(-1)?.members
    if (members === undefined) return `GET ${via.id}/members: ${current.status} ${current.text.slice(0, 200)}`
    const swap = (ids: ReadonlyArray<string>) => ids.map((id) => (id === old.id ? fresh.id : id))
    const next = {
      acceptors: swap(members.acceptors),
      leaders: swap(members.leaders),
      replicas: swap(members.replicas)
    }
    const changed = yield* call("POST", `${via.url}/members`, next)
    if (changed.status !== 200) return `POST ${via.id}/members: ${changed.status} ${changed.text.slice(0, 200)}`
    const effective = changed.body.effective ?? 0
    cluster.setMembers(next.replicas)
    const deadline = now() + capMs
    for (;;) {
      const st = yield* call("GET", `${fresh.url}/members`)
      const retired = st.body.removed?.some((r) => r.id === old.id && r.retired) === true
      if (retired && (st.body.slotOut ?? 0) > effective) break
      if (now() > deadline) {
        const status = yield* call("GET", `${fresh.url}/status`)
        return (
          `${old.id} not retired, or ${fresh.id} not past slot ${effective}, within ${capMs / 1000} s: ` +
          `${fresh.id} /members ${st.text.slice(0, 600)}; /status ${status.text.slice(0, 1500)}`
        )
      }
      yield* Effect.sleep("50 millis")
    }
    yield* cluster.leave(old)
    return undefined
  })

const row = (label: string, events: ReadonlyArray<Event>, extra: string) => {
  const ms = events.map((e) => e.ms).sort((a, b) => a - b)
  const recovered = ms.filter(Number.isFinite).length
  return (
    `${label.padEnd(17)} ${String(events.length).padStart(6)} ${String(recovered).padStart(9)} ` +
    `${secs(percentile(ms, 50)).padStart(6)} ${secs(percentile(ms, 99)).padStart(6)} ${secs(ms.at(-1) ?? Number.NaN).padStart(6)}` +
    extra
  )
}

/** p50 / max of the events' catch-up times. */
const catchUp = (events: ReadonlyArray<Event>): string => {
  const ms = events.map((e) => e.catchUpMs).sort((a, b) => a - b)
  return `${secs(percentile(ms, 50))} / ${secs(ms.at(-1) ?? Number.NaN)}`
}

const summary = (scenarios: ReadonlyArray<Scenario>) => {
  print(`\nsummary (seconds from the fault to the next committed write)`)
  print(
    `${"scenario".padEnd(17)} ${"events".padStart(6)} ${"recovered".padStart(9)} ${"p50".padStart(6)} ${"p99".padStart(6)} ${"max".padStart(6)}` +
      `  ${"max gap".padStart(7)} ${"unknown".padStart(7)}  ${"caught up p50/max".padStart(17)}  result`
  )
  let pass = true
  for (const s of scenarios) {
    for (const kind of kinds) {
      const evs = s.events.filter((e) => e.kind === kind)
      if (evs.length > 0) {
        const gap = Math.max(...evs.map((e) => e.gapMs))
        const unknown = evs.reduce((n, e) => n + e.unknown, 0)
        print(
          row(
            `${s.servers} servers ${kind}`,
            evs,
            `  ${secs(gap).padStart(7)} ${String(unknown).padStart(7)}  ${catchUp(evs).padStart(17)}`
          )
        )
      }
    }
    const ms = s.events.map((e) => e.ms).sort((a, b) => a - b)
    const p99 = percentile(ms, 99)
    const planned = kills + stops + pauses + transfers + removals
    const reasons: Array<string> = []
    if (s.aborted !== undefined || s.events.length < planned) reasons.push(`${s.events.length}/${planned} events run`)
    if (ms.some((m) => !Number.isFinite(m))) reasons.push("no recovery")
    if (s.events.some((e) => !Number.isFinite(e.catchUpMs))) reasons.push("replicas not caught up")
    if (!(p99 <= targetMs(s.servers))) reasons.push(`p99 > ${targetMs(s.servers) / 1000} s`)
    if (s.gapMs > gapTargetMs) reasons.push(`gap > ${gapTargetMs / 1000} s`)
    pass &&= reasons.length === 0
    const verdict =
      reasons.length === 0
        ? `PASS (p99 ≤ ${targetMs(s.servers) / 1000} s, gap ≤ ${gapTargetMs / 1000} s)`
        : `FAIL: ${reasons.join(", ")}`
    print(
      row(
        `${s.servers} servers all`,
        s.events,
        `  ${secs(s.gapMs).padStart(7)} ${String(s.unknown).padStart(7)}  ${catchUp(s.events).padStart(17)}  ${verdict}`
      )
    )
  }
  print(pass ? "all targets met" : "targets missed")
}

const main = Effect.gen(function* () {
  print(
    `fail-over benchmark: ${serverCounts.join(" then ")} servers over NATS, fsync on, ${clients} clients, ` +
      `${kills} leader kills, ${stops} clean leader stops, ${pauses} leader pauses of ${pauseMs / 1000} s each, ${transfers} transfers and ${removals} removals, cap ${capMs / 1000} s per event`
  )
  const scenarios: Array<Scenario> = []
  for (const n of serverCounts) scenarios.push(yield* scenario(n))
  summary(scenarios)
})

NodeRuntime.runMain(main.pipe(Effect.provideService(References.MinimumLogLevel, "Warn")))

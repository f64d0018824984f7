/**
 * Locks with real processes: three `synod serve` over a nats-server and four `synod lock`
 * processes queued on one lock, each running a command that prints its fencing token.
 * Round after round the holder is SIGKILLed (its lease is then kept alive by no one), and
 * once the leader's server with it; the next waiter must get the lock once the lease
 * expires (the bound, TTL plus fail-over plus a margin for a loaded machine, is a liveness
 * check; the times are printed). At the end the log itself is checked, from the writes to
 * the lock's keys: every acquisition was at a revision where the holder's key was the
 * lowest present, the previous holder's key was deleted at or before it, and fencing
 * tokens only grew: no two holders overlap in the log. A waiter whose own lease ran out
 * while it waited (the leader's death, on a loaded machine, can keep the cluster from
 * answering keep-alives for longer than the 2 s TTL) gives up, as it should; it is started
 * again, as a supervisor would.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import { type Daemon, daemon, http, ProcessError } from "./Process.ts"
import * as QueueLog from "./QueueLog.ts"
import * as ServeCluster from "./ServeCluster.ts"

const ttlSeconds = 2
/** Kill to next holder: the TTL, a leader change, and a loaded machine's slowness. */
const handOverBoundMs = ttlSeconds * 1000 + 12_000
/**
 * Start to first holder: four `synod lock` processes start (on a 2-core machine running
 * another test file beside this one), each grants a lease and queues. Not a hand-over: a
 * bound of its own, so a slow start is told apart from a slow hand-over.
 */
const firstHolderBoundMs = 30_000

interface Acquired {
  readonly waiter: number
  readonly fence: number
  readonly revision: number
  readonly key: string
  /** The command's pid (it outlives a SIGKILLed `synod lock`: the test ends it). */
  readonly pid: number
}

const acquisitionOf = (waiter: number, d: Daemon): Acquired | undefined => {
  const held = /held (\d+) (\d+)/.exec(d.stdout())
  const got = /\{"lock":.*\}/.exec(d.stderr())
  if (held === null || got === null) return undefined
  const j = JSON.parse(got[0]) as { key: string; fence: number; revision: number }
  assert.strictEqual(j.fence, Number(held[1]), "the command got the fencing token synod lock reported")
  return { waiter, fence: j.fence, revision: j.revision, key: j.key, pid: Number(held[2]) }
}

/**
 * Waits for a waiter not in `done` to report that it holds the lock. A waiter whose lease
 * ran out while it waited (keep-alives unanswered for a TTL: a fail-over under load can
 * take longer than the 2 s TTL) has rightly given up; as a supervisor would, it is started
 * again (`requeue`) and queues behind the others. Any other exit fails the test.
 */
const nextHolder = (
  waiters: Array<Daemon>,
  done: Set<number>,
  boundMs: number,
  requeue: Effect.Effect<Daemon, ProcessError, Scope.Scope>
) =>
  Effect.gen(function* () {
    const deadline = performance.now() + boundMs
    while (performance.now() < deadline) {
      const found: Array<Acquired> = []
      for (let i = 0; i < waiters.length; i++) {
        if (done.has(i)) continue
        const d = waiters[i]!
        const a = acquisitionOf(i, d)
        if (a !== undefined) found.push(a)
        else if (d.exited()) {
          if (!/ended while waiting/.test(d.stderr())) {
            return yield* new ProcessError({ reason: `waiter ${i} exited: ${d.stdout()} ${d.stderr()}` })
          }
          done.add(i)
          waiters.push(yield* requeue)
        }
      }
      if (found.length > 1) {
        return yield* new ProcessError({ reason: `two waiters hold the lock: ${JSON.stringify(found)}` })
      }
      if (found.length === 1) return found[0]!
      yield* Effect.sleep("25 millis")
    }
    return yield* new ProcessError({
      reason: `no waiter got the lock within ${boundMs} ms:\n${waiters.map((d, i) => `waiter ${i}: ${d.stdout()} ${d.stderr()}`).join("\n")}`
    })
  })

const kill = (pid: number) =>
  Effect.sync(() => {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // gone already
    }
  })

describe("synod lock across process deaths", () => {
  it.live(
    "the next waiter gets the lock when the holder is SIGKILLed; holders never overlap in the log",
    () =>
      ServeCluster.run({ name: "lock" }, (cluster) =>
        Effect.gen(function* () {
          const urls = cluster.members.map((m) => m.url).join(",")
          const waiter = daemon([
            "lock",
            "--url",
            urls,
            "--ttl",
            String(ttlSeconds),
            "t",
            "--",
            "sh",
            "-c",
            'echo "held $SYNOD_LOCK_FENCE $$"; exec sleep 600'
          ])
          const waiters: Array<Daemon> = []
          for (let i = 0; i < 4; i++) waiters.push(yield* waiter)
          const acquired: Array<Acquired> = []
          const done = new Set<number>()
          const handOvers: Array<number> = []
          for (let round = 0; round < 4; round++) {
            const t0 = performance.now()
            const bound = round === 0 ? firstHolderBoundMs : handOverBoundMs
            const holder = yield* nextHolder(waiters, done, bound, waiter)
            if (round > 0) handOvers.push(performance.now() - t0)
            acquired.push(holder)
            done.add(holder.waiter)
            yield* Effect.addFinalizer(() => kill(holder.pid))
            if (round === 3) break
            if (round === 1) {
              // the keeper moves with the leadership: kill the leader's server too
              const leader = yield* ServeCluster.leader(cluster)
              yield* leader.proc.signal("SIGKILL")
            }
            yield* waiters[holder.waiter]!.signal("SIGKILL")
            yield* kill(holder.pid)
          }
          console.log(
            `lock hand-overs after SIGKILL: ${handOvers.map((ms) => `${(ms / 1000).toFixed(2)} s`).join(", ")}; waiters started again after their lease ran out: ${waiters.length - 4}`
          )

          // ---- the log: every write to the lock's keys, from the first revision on
          const live = cluster.live().map((m) => m.url)
          const listed = yield* http("GET", `${live[0]}/kv?prefix=${encodeURIComponent("lock/t/")}`)
          const last: number = listed.body.revision
          const { firstAt, deletedAt } = yield* QueueLog.replay(live, "lock/t/", last)
          for (let i = 0; i < acquired.length; i++) {
            const a = acquired[i]!
            assert.strictEqual(
              firstAt.get(a.revision),
              a.key,
              `holder ${i} (${a.key}) was first in line at ${a.revision}`
            )
            if (i === 0) continue
            const before = acquired[i - 1]!
            assert.isAbove(a.fence, before.fence, "fencing tokens grow")
            const gone = deletedAt.get(before.key)
            assert.isDefined(gone, `the SIGKILLed holder's key ${before.key} was deleted (its lease expired)`)
            assert.isAtMost(gone!, a.revision, `${before.key} was deleted before ${a.key} took the lock`)
          }
        })
      ),
    120_000
  )
})

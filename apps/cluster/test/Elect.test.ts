/**
 * Elections with real processes: three `synod serve` over a nats-server and three
 * `synod elect` candidates for one name. The first leads (its line on stdout, and
 * `Lock.leader` from this process agrees). SIGTERM of the leader makes it resign: its key
 * is deleted by the resignation, not by expiry, which the test tells apart by giving that
 * candidate a lease far longer than the test may run, so the second can only lead through
 * the resignation. SIGKILL of the second (a short lease, kept alive by no one) makes its
 * key vanish once the lease expires, and the third leads. The order is checked from the
 * log (the writes to the election's keys), not from wall clocks: each leader's key was
 * the lowest present at the revision it was elected, and its predecessor's key was
 * deleted at or before it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as Lock from "@synod/cluster/Lock"
import { type Daemon, daemon, http, ProcessError } from "./Process.ts"
import * as QueueLog from "./QueueLog.ts"
import * as ServeCluster from "./ServeCluster.ts"

interface Elected {
  readonly value: string
  readonly key: string
  readonly fence: number
  readonly revision: number
}

/** Waits until `d` prints that it leads, and answers what it printed. */
const elected = (d: Daemon, value: string) =>
  Effect.map(
    d.waitFor(new RegExp(`(\\{"election":"e","leader":"${value}".*\\})`), 25_000),
    (line) => JSON.parse(line) as Elected
  )

const candidate = (urls: string, value: string, ttlSeconds: number) =>
  daemon(["elect", "--url", urls, "--ttl", String(ttlSeconds), "e", value])

describe("synod elect across process deaths", () => {
  it.live(
    "a SIGTERMed leader resigns and the next leads; a SIGKILLed leader's key expires and the next leads",
    () =>
      ServeCluster.run({ name: "elect" }, (cluster) =>
        Effect.gen(function* () {
          const urls = cluster.members.map((m) => m.url).join(",")
          const connection = { urls: cluster.members.map((m) => m.url) }
          // a's lease outlives the test: only its resignation can hand the leadership on
          const a = yield* candidate(urls, "a", 600)
          const first = yield* elected(a, "a")
          const queued = (n: number) =>
            Effect.gen(function* () {
              for (;;) {
                const r = yield* http("GET", `${cluster.members[0]!.url}/kv?prefix=${encodeURIComponent("elect/e/")}`)
                if (r.body.entries.length === n) return r
                yield* Effect.sleep("50 millis")
              }
            })
          // b queues behind a, then c behind b (started one after the other, they could race)
          const b = yield* candidate(urls, "b", 2)
          yield* queued(2)
          const c = yield* candidate(urls, "c", 2)
          const all = yield* queued(3)
          assert.deepStrictEqual(
            all.body.entries.map((e: { value: string }) => e.value).sort(),
            ["a", "b", "c"],
            "every candidate has its key"
          )
          const now = yield* Lock.leader(connection, "e")
          assert.deepStrictEqual(
            Option.map(now, (l) => l.value),
            Option.some("a"),
            "the first candidate leads"
          )
          assert.notMatch(b.stdout() + c.stdout(), /"leader"/, "no one else leads while a does")

          // SIGTERM: a resigns (exits by itself, not by the signal), b leads
          const code = yield* a.signal("SIGTERM")
          assert.isNotNull(code, "synod elect handled SIGTERM and exited")
          const second = yield* elected(b, "b").pipe(
            Effect.catch((e) =>
              Effect.gen(function* () {
                const keys = yield* http(
                  "GET",
                  `${cluster.members[0]!.url}/kv?prefix=${encodeURIComponent("elect/e/")}`
                )
                const leases = yield* http("GET", `${cluster.members[0]!.url}/lease`)
                return yield* new ProcessError({
                  reason: `${e.reason}\nkeys: ${JSON.stringify(keys.body)}\nleases: ${JSON.stringify(leases.body)}\na (exit ${code}): ${a.stdout()} ${a.stderr()}\nc: ${c.stdout()} ${c.stderr()}`
                })
              })
            )
          )
          assert.notMatch(c.stdout(), /"leader"/, "c waits behind b")

          // SIGKILL: b's lease expires, c leads
          yield* b.signal("SIGKILL")
          const third = yield* elected(c, "c")
          const observed = yield* Lock.leader(connection, "e")
          assert.deepStrictEqual(
            Option.map(observed, (l) => l.fence),
            Option.some(third.fence),
            "observers see c"
          )

          // ---- the log: every write to the election's keys
          const live = cluster.members.map((m) => m.url)
          const last = third.revision
          const { firstAt, deletedAt } = yield* QueueLog.replay(live, "elect/e/", last)
          const leaders = [first, second, third]
          for (let i = 0; i < leaders.length; i++) {
            const l = leaders[i]!
            assert.strictEqual(firstAt.get(l.revision), l.key, `${l.value} (${l.key}) was first at ${l.revision}`)
            if (i === 0) continue
            const before = leaders[i - 1]!
            assert.isAbove(l.fence, before.fence, "fencing tokens grow")
            const gone = deletedAt.get(before.key)
            assert.isDefined(gone, `${before.value}'s key ${before.key} was deleted`)
            assert.isAtMost(gone!, l.revision, `${before.key} was deleted before ${l.value} was elected`)
          }
          // a resigned: its lease (of 600 s) was revoked, not left to expire
          const leases = yield* http("GET", `${live[0]}/lease`)
          const aLease = Number(first.key.slice("elect/e/".length))
          assert.notInclude(
            leases.body.leases.map((l: { id: number }) => l.id),
            aLease,
            "the resigned candidate's lease was revoked"
          )
        })
      ),
    60_000
  )
})

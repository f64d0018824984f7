/**
 * Two outages that used to leave a cluster without a leader for good, reproduced with
 * real `synod serve` processes over a real nats-server, the leader's process SIGKILLed:
 *
 * - large values: eight 192 KiB values (65,536 CJK characters, 3 bytes each in UTF-8)
 *   leave the acceptors an accepted tail larger than NATS's 1 MiB `max_payload`, so a
 *   new leader is adopted only if the P1b replies are paged (B18); a list of those values
 *   must page too, and a body over the HTTP limit is refused without a write;
 * - load: 256 concurrent writers of 4 KB values for 20 s, then the leader is killed
 *   while they keep writing.
 *
 * The bounds (15 s to recover) are liveness checks; the fail-over speed target is the
 * fail-over benchmark's (`pnpm bench failover`). The measured times are printed.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@synod/actors"
import { Kv } from "@synod/kv"
import { NatsTransport } from "@synod/transport-nats"
import { Effect, Layer } from "effect"
import { http, ProcessError } from "./Process.ts"
import * as ServeCluster from "./ServeCluster.ts"

const now = () => performance.now()
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`
const kvUrl = (url: string, key: string) => `${url}/kv/${encodeURIComponent(key)}`

/** Recovery from a killed leader must take less than this. */
const recoveryBoundMs = 15_000

/**
 * PUTs `value` under `key` through `url` until it answers 200, again after every 503 or
 * 504 (no leader yet, outcome unknown); fails on any other answer or after `boundMs`.
 * Answers the time it took and the answers before the 200.
 */
const commitWithin = (url: string, key: string, value: string, boundMs = recoveryBoundMs) =>
  Effect.gen(function* () {
    const t0 = now()
    const retried: Array<number> = []
    for (;;) {
      const r = yield* http("PUT", kvUrl(url, key), { value })
      if (r.status === 200) return { ms: now() - t0, retried }
      if (r.status !== 503 && r.status !== 504) {
        return yield* new ProcessError({ reason: `PUT ${key} answered ${r.status} ${JSON.stringify(r.body)}` })
      }
      retried.push(r.status)
      yield* Effect.sleep("50 millis")
    }
  }).pipe(
    Effect.timeoutOrElse({
      duration: boundMs,
      orElse: () =>
        Effect.fail(new ProcessError({ reason: `PUT ${key} through ${url} did not commit in ${boundMs} ms` }))
    })
  )

/** A value of 65,536 CJK characters (the longest value, 192 KiB of UTF-8), a different character for each `i`. */
const cjk = (i: number) => String.fromCodePoint(0x6f22 + i).repeat(Kv.maxValueLength)

// one after the other: each loads the machine, and they would skew each other's times
describe("outages that used to leave the cluster without a leader", { concurrent: false }, () => {
  it.live(
    "large values: a leader is adopted over an accepted tail above NATS's max_payload; lists of them page; an oversized body is refused",
    () =>
      ServeCluster.run({ name: "outage-large" }, (cluster) =>
        Effect.gen(function* () {
          const [first] = cluster.members
          // 1. eight values of 192 KiB: the accepted tail (no snapshot before 1000 slots) is over 1 MiB
          for (let i = 0; i < 8; i++) {
            const r = yield* http("PUT", kvUrl(first!.url, `cjk/${i}`), { value: cjk(i) })
            assert.strictEqual(r.status, 200, `PUT cjk/${i}: ${JSON.stringify(r.body)}`)
          }
          // every acceptor still holds the eight (nothing snapshotted, so nothing forgotten): over 1 MiB to report
          assert.isAbove(Buffer.byteLength(cjk(0)) * 8, 1024 * 1024)
          const acceptorRows = Effect.forEach(cluster.members, (m) =>
            Effect.map(http("GET", `${m.url}/status`), (r): { readonly accepted: number } => r.body.servers[0].acceptor)
          )
          let acceptors = yield* acceptorRows
          for (let tries = 0; tries < 50 && !acceptors.every((a) => a.accepted >= 8); tries++) {
            yield* Effect.sleep("100 millis")
            acceptors = yield* acceptorRows
          }
          assert.isTrue(
            acceptors.every((a) => a.accepted >= 8),
            `slots accepted: ${JSON.stringify(acceptors)}`
          )

          // 2. a body over the HTTP limit (512 KiB by default) is refused, and nothing written
          const tooBig = yield* http("PUT", kvUrl(first!.url, "too-big"), { value: "x".repeat(600 * 1024) })
          assert.strictEqual(tooBig.status, 413)
          assert.strictEqual(tooBig.body._tag, "PayloadTooLarge")
          assert.strictEqual(tooBig.body.limit, 512 * 1024)
          assert.include(tooBig.body.message, `${512 * 1024} bytes`)
          assert.strictEqual((yield* http("GET", kvUrl(first!.url, "too-big"))).status, 404)

          // 3. the leader's process killed: a survivor's leader must be adopted over that tail
          const leader = yield* ServeCluster.leader(cluster)
          const stepDowns = ServeCluster.count(cluster, /stepping down/)
          const t0 = now()
          yield* leader.proc.signal("SIGKILL")
          const survivors = cluster.live()
          assert.strictEqual(survivors.length, 2)
          const after = yield* commitWithin(survivors[0]!.url, "after-kill", "committed")
          console.log(
            `large values: ${leader.node} (the leader) killed; a PUT through ${survivors[0]!.node} committed ` +
              `${secs(now() - t0)} after the kill (${after.retried.length} answers 503/504 before); ` +
              `leaders stepped down ${ServeCluster.count(cluster, /stepping down/) - stepDowns} times meanwhile`
          )

          // 4. listing the eight values pages (one answer would be over max_payload); all come back intact
          const entries: Array<Kv.Entry> = []
          let pages = 0
          let next: string | undefined
          do {
            const query = `prefix=cjk${next === undefined ? "" : `&after=${encodeURIComponent(next)}`}`
            const page = yield* http("GET", `${survivors[1]!.url}/kv?${query}`)
            assert.strictEqual(page.status, 200, `GET /kv?${query}: ${JSON.stringify(page.body)?.slice(0, 300)}`)
            pages++
            entries.push(...page.body.entries)
            next = page.body.more ? page.body.next : undefined
            assert.isTrue(!page.body.more || next !== undefined, "more without next")
          } while (next !== undefined && pages < 20)
          assert.deepStrictEqual(
            entries.map((e) => e.key),
            Array.from({ length: 8 }, (_, i) => `cjk/${i}`)
          )
          for (const [i, e] of entries.entries()) assert.isTrue(e.value === cjk(i), `${e.key} came back changed`)
          assert.isAbove(pages, 1)

          // 5. sixteen such values at once, through both survivors
          const burst = yield* Effect.forEach(
            Array.from({ length: 16 }, (_, i) => i),
            (i) => http("PUT", kvUrl(survivors[i % 2]!.url, `burst/${i}`), { value: cjk(i) }),
            { concurrency: "unbounded" }
          )
          const statuses = burst.map((r) => r.status)
          assert.isTrue(
            statuses.every((s) => s === 200 || s === 504),
            `burst answers: ${statuses.join(",")}: ${JSON.stringify(burst.find((r) => r.status !== 200)?.body)}`
          )
          const unknown = statuses.filter((s) => s === 504).length
          // whatever the burst did, the cluster still has a leader and commits
          const later = yield* commitWithin(survivors[1]!.url, "after-burst", "committed")
          const settled = yield* ServeCluster.leader(cluster)
          console.log(
            `large values: 16 concurrent 192 KiB PUTs: ${16 - unknown} answered 200, ${unknown} 504; ` +
              `then a PUT committed in ${secs(later.ms)}; leader ${settled.node}`
          )
        })
      ),
    120_000
  )

  it.live(
    "load then fail-over: 256 concurrent writers of 4 KB values, the leader killed after 20 s; writes commit again within the bound and keep committing",
    () =>
      ServeCluster.run({ name: "outage-load" }, (cluster) =>
        Effect.gen(function* () {
          const transport = yield* Layer.build(
            NatsTransport.layer({ servers: [cluster.natsUrl], name: "outage-load-clients", cluster: cluster.name })
          )
          const client = yield* Client.make(Kv.machine, cluster.config, { id: "outage-load" }).pipe(
            Effect.provideContext(transport)
          )
          // every commit's submit and completion times; a failed submit (outcome unknown) is counted and retried
          const commits: Array<{ readonly start: number; readonly end: number }> = []
          let unknown = 0
          const filler = "x".repeat(4096)
          const writer = (i: number) =>
            Effect.gen(function* () {
              for (let n = 0; ; n++) {
                const head = `${i}.${n}.`
                const start = now()
                const r = yield* Effect.result(
                  client.submit({ _tag: "Put", key: `load/${i}`, value: head + filler.slice(head.length) })
                )
                if (r._tag === "Success") commits.push({ start, end: now() })
                else unknown++
              }
            })
          const loadStart = now()
          for (let i = 0; i < 256; i++) yield* Effect.forkScoped(writer(i))
          const between = (from: number, to: number) => commits.filter((c) => c.end > from && c.end <= to).length

          yield* Effect.sleep("20 seconds")
          const leader = yield* ServeCluster.leader(cluster)
          const tKill = now()
          const beforeAll = between(loadStart, tKill) / ((tKill - loadStart) / 1000)
          const beforeLast = between(tKill - 5000, tKill) / 5
          assert.isAbove(beforeLast, 0, "no commits in the 5 s before the kill")
          const unknownBefore = unknown
          const stepDowns = ServeCluster.count(cluster, /stepping down/)
          const adoptions = ServeCluster.count(cluster, /adopted: leading/)
          yield* leader.proc.signal("SIGKILL")
          const survivors = cluster.live()
          const put = yield* commitWithin(survivors[0]!.url, "after-kill", "committed")
          const tRecovered = now()
          yield* Effect.sleep("5 seconds")
          const after = between(tRecovered, tRecovered + 5000)
          // the first commit of a load write submitted after the kill, and the longest time without a commit
          const firstLoad = commits.find((c) => c.start > tKill)
          let gap = 0
          for (let i = 1; i < commits.length; i++)
            if (commits[i]!.end > tKill) gap = Math.max(gap, commits[i]!.end - commits[i - 1]!.end)
          const perSecond = Array.from({ length: Math.ceil((now() - tKill) / 1000) + 3 }, (_, s) =>
            between(tKill + (s - 3) * 1000, tKill + (s - 2) * 1000)
          )
          const since = (pattern: RegExp, before: number) => ServeCluster.count(cluster, pattern) - before
          console.log(
            [
              `load: 256 writers of 4 KB values for ${secs(tKill - loadStart)}: ${beforeAll.toFixed(0)} ops/s on average, ` +
                `${beforeLast.toFixed(0)} ops/s in the last 5 s; leaders adopted ${adoptions} times, stepped down ${stepDowns} times`,
              `load: ${leader.node} (the leader) killed; a PUT through ${survivors[0]!.node} committed ` +
                `${secs(tRecovered - tKill)} after the kill (${put.retried.length} answers 503/504 before); the first ` +
                `load write submitted after the kill committed ${firstLoad === undefined ? "never" : secs(firstLoad.end - tKill)} after it; ` +
                `longest time without a commit ${secs(gap)}`,
              `load: ${(after / 5).toFixed(0)} ops/s in the 5 s after recovery; ${unknown - unknownBefore} outcomes unknown ` +
                `since the kill (${unknownBefore} before); leaders adopted ${since(/adopted: leading/, adoptions)} times, ` +
                `stepped down ${since(/stepping down/, stepDowns)} times since the kill`,
              `load: commits per second from 3 s before the kill on: ${perSecond.join(" ")}`
            ].join("\n")
          )
          assert.isDefined(firstLoad, "no load write submitted after the kill committed")
          assert.isAtLeast(after, 250, `only ${after} commits in the 5 s after recovery`)
        })
      ),
    120_000
  )
})

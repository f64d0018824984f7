/**
 * A clean stop of the leader's process hands the leadership over: `synod serve` of the
 * active leader, sent SIGTERM, resigns first, and the next leader in the configured order
 * competes at once instead of waiting for its failure detector; writes go on through the
 * survivors, and what was written before is still there.
 */
import { assert, describe, it } from "@effect/vitest"
import { Leader } from "@synod/actors"
import { Effect } from "effect"
import { http } from "./Process.ts"
import * as ServeCluster from "./ServeCluster.ts"

const put = (url: string, key: string, value: string) =>
  Effect.gen(function* () {
    // a 503 (no leader known yet) or 504 (outcome unknown) is retried, as a client would
    for (let attempt = 0; attempt < 300; attempt++) {
      const r = yield* http("PUT", `${url}/kv/${encodeURIComponent(key)}`, { value })
      if (r.status === 200) return r.body as { readonly version: number }
      assert.include([503, 504], r.status, `PUT ${key}: ${JSON.stringify(r.body)}`)
      yield* Effect.sleep("50 millis")
    }
    return assert.fail(`PUT ${key} never committed`)
  })

describe("leadership hand-over", () => {
  it.live(
    "SIGTERM of the active leader's process: it resigns, its successor competes at once and leads, writes go on",
    () =>
      ServeCluster.run({ name: "handover" }, (cluster) =>
        Effect.gen(function* () {
          yield* ServeCluster.ready(cluster)
          const first = cluster.members[0]!
          yield* put(first.url, "before", "1")
          const leader = yield* ServeCluster.leader(cluster)
          const successor = Leader.successorOf(cluster.config.leaders, leader.node)!
          assert.strictEqual(yield* leader.proc.signal("SIGTERM"), 0, "a clean exit")
          const out = `${leader.proc.stdout()}${leader.proc.stderr()}`
          assert.match(out, /resigned: handing the leadership over/, ServeCluster.tails(cluster))
          assert.include(out, `"to":"${successor}"`)
          const next = cluster.members.find((m) => m.node === successor)!
          const heard = `${next.proc.stdout()}${next.proc.stderr()}`
          assert.match(heard, /resigned in this leader's favour: competing at once/, ServeCluster.tails(cluster))
          // writes go on through the survivors, and the successor leads
          const survivor = cluster.live()[0]!
          yield* put(survivor.url, "after", "2")
          assert.strictEqual((yield* ServeCluster.leader(cluster)).node, successor)
          const read = yield* http("GET", `${survivor.url}/kv/before`)
          assert.strictEqual(read.body.value, "1")
        })
      ),
    90_000
  )

  it.live(
    "synod leader transfer TO over NATS: the named leader, not the next in order, competes at once",
    () =>
      ServeCluster.run({ name: "transferto" }, (cluster) =>
        Effect.gen(function* () {
          yield* ServeCluster.ready(cluster)
          yield* put(cluster.members[0]!.url, "before", "1")
          const leaders = cluster.config.leaders
          // on a loaded machine the leadership may move between finding the leader and asking
          // it (409 NotLeading): find it again, a few times
          let leader = yield* ServeCluster.leader(cluster)
          let to = ""
          let moved = { status: 0, body: {} as Record<string, unknown> }
          for (let attempt = 0; attempt < 5; attempt++) {
            // the leader before it in order: not the successor a transfer without TO picks
            to = leaders[(leaders.indexOf(leader.node) - 1 + leaders.length) % leaders.length]!
            assert.notStrictEqual(to, Leader.successorOf(leaders, leader.node))
            moved = yield* http("POST", `${leader.url}/leader/transfer?to=${to}`)
            if (moved.status !== 409 || moved.body._tag !== "NotLeading") break
            leader = yield* ServeCluster.leader(cluster)
          }
          assert.strictEqual(moved.status, 200, `${JSON.stringify(moved.body)}\n${ServeCluster.tails(cluster)}`)
          assert.strictEqual(moved.body.from, leader.node)
          assert.notStrictEqual(moved.body.leader, leader.node)
          // the named leader heard the hand-over (Heartbeat.to, over the wire) and competed at once
          const target = cluster.members.find((m) => m.node === to)!
          assert.match(
            `${target.proc.stdout()}${target.proc.stderr()}`,
            /resigned in this leader's favour: competing at once/,
            ServeCluster.tails(cluster)
          )
          const successor = cluster.members.find((m) => m.node === Leader.successorOf(leaders, leader.node))!
          assert.notMatch(`${successor.proc.stdout()}${successor.proc.stderr()}`, /in this leader's favour/)
          // writes go on, and what was written before is still there
          yield* put(leader.url, "after", "2")
          assert.strictEqual((yield* http("GET", `${leader.url}/kv/before`)).body.value, "1")
        })
      ),
    90_000
  )
})

/**
 * Divergence is never silent (issue 14), over a real nats-server with three `synod serve`
 * processes and no cluster key nor NATS permissions: the forged `Decision` the issue
 * opened with, published by hand to `synod.<cluster>.replica.s2`, is applied by s2 alone.
 * At the next digest slot s2 finds its state digest contradicted by s1 and s3: it logs the
 * slot with both digests, its divergence counter moves, it copies the snapshot of a
 * replica of the majority, and afterwards every replica holds the same state again.
 */
import { assert, describe, it } from "@effect/vitest"
import { Address, Ballot, Command, Message, StateMachine } from "@synod/core"
import { Kv } from "@synod/kv"
import { NatsConnection, NatsTransport } from "@synod/transport-nats"
import { Context, Effect, Layer, Schedule } from "effect"
import { http } from "./Process.ts"
import * as ServeCluster from "./ServeCluster.ts"

/** Polls `check` every 100 ms until it holds, for up to 30 s (processes on a busy machine). */
const until = <E, R>(what: string, check: Effect.Effect<boolean, E, R>) =>
  check.pipe(
    Effect.filterOrFail(
      (ok) => ok,
      () => `not yet: ${what}`
    ),
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 300 })))
  )

/** The value of the sample `line` (`name{labels}`) in a Prometheus text page, if present. */
const sample = (page: string, line: string): number | undefined => {
  const found = page.split("\n").find((l) => l.startsWith(`${line} `))
  return found === undefined ? undefined : Number(found.slice(line.length + 1))
}

/** A member's JSON log lines whose message starts with `text`, as `[message, args]`. */
const logged = (member: ServeCluster.Member, text: string): Array<readonly [string, Record<string, unknown>]> =>
  member.proc
    .stdout()
    .split("\n")
    .flatMap((line) => {
      try {
        const j = JSON.parse(line) as { message: unknown }
        const [message, args] = Array.isArray(j.message) ? j.message : [j.message]
        return typeof message === "string" && message.startsWith(text) ? [[message, args ?? {}] as const] : []
      } catch {
        return []
      }
    })

describe("divergence over NATS", () => {
  it.live(
    "a forged Decision makes s2 diverge: it finds out at the next digest slot, says so, and copies a majority replica's state",
    () =>
      ServeCluster.run({ name: "dv", settings: { snapshotEvery: 4 } }, (cluster) =>
        Effect.gen(function* () {
          const [s1, s2, s3] = cluster.members as [ServeCluster.Member, ServeCluster.Member, ServeCluster.Member]
          const put = (n: number) =>
            Effect.gen(function* () {
              const r = yield* http("PUT", `${s1.url}/kv/k`, { value: `${n}` })
              assert.strictEqual(r.status, 200, JSON.stringify(r.body))
            })
          const status = (m: ServeCluster.Member) =>
            Effect.map(http("GET", `${m.url}/status`), (r) => r.body.servers[0].replica as Record<string, any>)
          const all = Effect.forEach(cluster.members, status)
          const metrics = (m: ServeCluster.Member) =>
            Effect.promise(() => fetch(`${m.url}/metrics`).then((r) => r.text()))
          const divergences = (m: ServeCluster.Member) =>
            Effect.map(metrics(m), (page) => sample(page, `synod_replica_divergences_total{id="${m.node}"}`))

          // the metric families are there from the start, at 0
          for (const m of cluster.members) {
            assert.strictEqual(yield* divergences(m), 0, m.node)
            assert.strictEqual(sample(yield* metrics(m), `synod_replica_diverged{id="${m.node}"}`), 0, m.node)
          }
          for (let n = 1; n <= 3; n++) yield* put(n)
          yield* until(
            "the replicas at the same slot",
            Effect.map(all, (rs) => new Set(rs.map((r) => r.slotOut)).size === 1)
          )
          const slot = (yield* status(s2)).slotOut as number

          // the forged Decision of issue 14: the next slot, on s2's protocol subject
          const mallory = yield* Layer.build(
            NatsTransport.layer({ servers: [cluster.natsUrl], name: "mallory", cluster: cluster.name })
          )
          const raw = Context.get(mallory, NatsConnection.NatsConnection).client
          const decision = new Message.Decision({
            slot,
            value: new Command.Batch({
              commands: [
                new Command.Command({
                  client: "evil",
                  seq: 1,
                  acked: 0,
                  op: StateMachine.codecs(Kv.machine).encodeCommand({ _tag: "Put", key: "k", value: "evil" })
                })
              ]
            }),
            ballot: Ballot.make(1, "s1")
          })
          raw.publish(
            `synod.${cluster.name}.replica.s2`,
            JSON.stringify(
              new Message.Envelope({ from: Address.leader("s1"), to: Address.replica("s2"), message: decision })
            )
          )
          yield* until(
            "s2 applied the forged decision",
            Effect.map(status(s2), (r) => r.slotOut === slot + 1)
          )

          // the cluster goes on; within a digest interval s2 finds out
          for (let n = 4; n <= 10; n++) yield* put(n)
          yield* until(
            "s2 logged its divergence",
            Effect.sync(() => logged(s2, "state diverged").length > 0)
          )
          const [, found] = logged(s2, "state diverged")[0]!
          assert.isNumber(found.slot)
          assert.strictEqual(((found.slot as number) - 1) % 4, 0, "a digest slot")
          assert.isAbove(found.slot as number, slot, "after the forgery")
          assert.match(found.digest as string, /^[0-9a-f]{64}$/)
          assert.match(found.majority as string, /^[0-9a-f]{64}$/)
          assert.notStrictEqual(found.digest, found.majority)
          assert.includeMembers(["s1", "s3"], found.from as Array<string>)
          assert.strictEqual(yield* divergences(s2), 1)
          for (const m of [s1, s3]) {
            assert.strictEqual(yield* divergences(m), 0, `${m.node} agreed with the majority`)
            assert.deepStrictEqual(logged(m, "state diverged"), [])
          }

          // it copies a majority replica's snapshot and answers again
          yield* until(
            "s2 recovered",
            Effect.sync(() => logged(s2, "recovered from divergence").length > 0)
          )
          yield* put(11)
          yield* until(
            "the replicas at the same slot again",
            Effect.map(all, (rs) => new Set(rs.map((r) => r.slotOut)).size === 1)
          )
          const rows = yield* all
          for (const r of rows) {
            assert.isUndefined(r.diverged)
            assert.deepStrictEqual([r.keys, r.revision], [rows[0]!.keys, rows[0]!.revision])
          }
          for (const m of cluster.members) {
            const read = yield* http("GET", `${m.url}/kv/k?consistency=serializable`)
            assert.strictEqual(read.status, 200, `${m.node}: ${JSON.stringify(read.body)}`)
            assert.strictEqual(read.body.value, "11", m.node)
            assert.strictEqual(read.body.revision, rows[0]!.revision, m.node)
          }
          assert.strictEqual(sample(yield* metrics(s2), `synod_replica_diverged{id="s2"}`), 0)
        })
      ),
    120_000
  )
})

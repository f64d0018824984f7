/**
 * A rolling replacement with real processes (issue 17): three `synod serve` processes over
 * NATS under compare-and-set-chain load; each server in turn is replaced by a new one that
 * starts with an empty data directory (started, `POST /members` replacing the old one,
 * caught up, then the old process stopped). At the end every acknowledged write is in the
 * log exactly once, as every replica of the final configuration serves it (a watch from
 * revision 1 through each final server), and the longest interval without a commit is
 * reported.
 */
import { assert, describe, it } from "@effect/vitest"
import * as WatchClient from "@synod/cluster/WatchClient"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Fiber, Stream } from "effect"
import { daemon, http } from "./Process.ts"
import * as ServeCluster from "./ServeCluster.ts"

interface Members {
  readonly acceptors: ReadonlyArray<string>
  readonly leaders: ReadonlyArray<string>
  readonly replicas: ReadonlyArray<string>
}

describe("rolling replacement over NATS", () => {
  it.live(
    "three servers replaced one by one by servers that start empty, under CAS-chain load: no acknowledged write lost",
    () =>
      // snapshots every 50 slots: garbage collection passes each change's effective slot soon
      ServeCluster.run({ name: "rolling", settings: { snapshotEvery: 50 } }, (cluster) =>
        Effect.gen(function* () {
          const dir = yield* Effect.acquireRelease(
            Effect.sync(() => mkdtempSync(join(tmpdir(), "synod-rolling-"))),
            (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
          )
          // the URLs of the servers that run, for the clients (a stopped one is taken out first)
          const urls = new Map(cluster.members.map((m) => [m.node, m.url]))
          const acked: Array<{ readonly key: string; readonly value: string; readonly at: number }> = []
          let stop = false
          const fresh_: Array<{ readonly stdout: () => string; readonly stderr: () => string }> = []
          // a CAS chain per client: read the key's version, write version + 1; a 409 or an
          // unknown outcome reads again (an unknown outcome may have been applied: its value is
          // then in the log but not acknowledged, which the check allows). At most `attempts`
          // writes per client, paced, so the whole run stays inside the watch history a server
          // keeps (10,000 revisions): the check below watches every server from revision 1
          const attempts = 3000
          const chain = (c: number) =>
            Effect.gen(function* () {
              const key = `chain${c}`
              let n = 0
              let turn = c
              for (let attempt = 0; !stop && attempt < attempts; attempt++) {
                const live = [...urls.values()]
                const url = live[turn++ % live.length]!
                const got = yield* Effect.result(http("GET", `${url}/kv/${key}?consistency=log`))
                if (got._tag === "Failure" || (got.success.status !== 200 && got.success.status !== 404)) {
                  yield* Effect.sleep("20 millis")
                  continue
                }
                const version = got.success.status === 404 ? 0 : (got.success.body.version as number)
                // unique per attempt: a retry after an unknown outcome that was applied is another write
                const value = `c${c}.${n}.${attempt}`
                const put = yield* Effect.result(http("POST", `${url}/kv/${key}/cas`, { version, value }))
                if (put._tag === "Success" && put.success.status === 200) {
                  acked.push({ key, value, at: performance.now() })
                  n++
                }
                yield* Effect.sleep("10 millis")
              }
            })
          const clients = yield* Effect.forEach([0, 1, 2], (c) => Effect.forkScoped(chain(c)))
          yield* Effect.sleep("500 millis")
          const original = cluster.members.map((m) => m.node)
          for (let k = 0; k < original.length; k++) {
            const old = original[k]!
            const fresh = `s${original.length + k + 1}`
            // the new server: the cluster config it was given first, its own id in `roles`, an empty data dir
            const file = join(dir, `${fresh}.json`)
            writeFileSync(
              file,
              JSON.stringify({
                name: cluster.name,
                node: fresh,
                roles: ["acceptor", "leader", "replica"],
                // the cluster's settings too: a replica snapshotting on another schedule holds
                // the GC watermark back (with the default 10,000 slots, the old server was
                // never retired within the wait below, and the test went on without it)
                cluster: {
                  acceptors: cluster.config.acceptors,
                  leaders: cluster.config.leaders,
                  replicas: cluster.config.replicas,
                  snapshotEvery: cluster.config.snapshotEvery
                },
                dataDir: join(dir, fresh),
                transport: { kind: "nats", servers: [cluster.natsUrl] },
                http: { port: 0 },
                logLevel: "Info"
              })
            )
            const proc = yield* daemon(["serve", "--config", file])
            fresh_.push(proc)
            const url = yield* proc.waitFor(/HTTP API on (http:\/\/\S+)/)
            // ask a server that stays
            const via = [...urls].find(([node]) => node !== old)![1]
            const current = (yield* http("GET", `${via}/members`)).body as {
              history: ReadonlyArray<{ members: Members }>
            }
            const members = current.history.at(-1)!.members
            const swap = (ids: ReadonlyArray<string>) => ids.map((id) => (id === old ? fresh : id))
            const next = {
              acceptors: swap(members.acceptors),
              leaders: swap(members.leaders),
              replicas: swap(members.replicas)
            }
            console.log(`rolling: ${fresh} listens at ${url}; replacing ${old} through ${via}, ${acked.length} acked`)
            const changed = yield* http("POST", `${via}/members`, next)
            console.log(`rolling: ${JSON.stringify(changed.body)}`)
            assert.strictEqual(changed.status, 200, JSON.stringify(changed.body))
            const effective = changed.body.effective as number
            // the old server stops once it is retired (docs/reconfiguration.md, rule 7: the GC
            // watermark passed the slot it left at, so no slot needs it) and the new replica
            // has caught up past the change
            let state = ""
            let caughtUp = false
            for (let i = 0; i < 600 && !caughtUp; i++) {
              const st = yield* Effect.result(http("GET", `${url}/members`))
              const body = st._tag === "Success" ? st.success.body : undefined
              state = JSON.stringify({ slotOut: body?.slotOut, watermark: body?.watermark, removed: body?.removed })
              const retired = (body?.removed as ReadonlyArray<{ id: string; retired: boolean }> | undefined)?.some(
                (r) => r.id === old && r.retired
              )
              caughtUp = (body?.slotOut ?? 0) > effective && retired === true
              if (!caughtUp) yield* Effect.sleep("50 millis")
            }
            console.log(`rolling: ${fresh} ${state}`)
            assert.isTrue(caughtUp, `${fresh} caught up past ${effective} and ${old} retired within 30 s: ${state}`)
            console.log(`rolling: ${fresh} caught up, stopping ${old}`)
            urls.set(fresh, url)
            urls.delete(old)
            // a clean stop: an active leader there hands over first
            yield* cluster.members.find((m) => m.node === old)!.proc.signal("SIGTERM")
            yield* Effect.sleep("300 millis")
          }
          yield* Effect.sleep("500 millis")
          stop = true
          console.log(`rolling: replaced all, ${acked.length} acked; stopping the clients`)
          // a request in flight may wait for its answer's timeout: not for it
          yield* Effect.forEach(clients, Fiber.interrupt, { discard: true })
          assert.isAbove(acked.length, 30, "the clients made progress")
          const finalUrls = [...urls.values()]
          // the final configuration commits on its own
          let committed = false
          console.log("rolling: clients stopped")
          for (let i = 0; i < 20 && !committed; i++) {
            const r = yield* Effect.result(
              http("PUT", `${finalUrls[i % finalUrls.length]}/kv/final`, { value: "1" }).pipe(
                Effect.timeout("3 seconds")
              )
            )
            committed = r._tag === "Success" && r.success.status === 200
            if (!committed) yield* Effect.sleep("200 millis")
          }
          const statuses = yield* Effect.forEach(finalUrls, (u) => Effect.result(http("GET", `${u}/status`)))
          assert.isTrue(
            committed,
            `no commit through the final configuration: ${JSON.stringify(statuses.map((st) => (st._tag === "Success" ? st.success.body : st.failure.reason)))}\n${fresh_.map((p) => `${p.stdout()}${p.stderr()}`.split("\n").slice(-40).join("\n")).join("\n-----\n")}`
          )
          console.log(`rolling: a write through the final configuration committed: ${committed}`)
          // every replica of the final configuration holds every acknowledged write once
          const last = (
            (yield* http("GET", `${finalUrls[0]}/kv?prefix=chain&consistency=log`)).body as {
              revision: number
            }
          ).revision
          for (const url of finalUrls) {
            const events = yield* WatchClient.messages({ urls: [url], prefix: "chain", fromRevision: 1 }).pipe(
              Stream.takeUntil((m) => (m._tag === "Event" ? m.event.revision : m.revision) >= last),
              Stream.runCollect,
              Effect.map((ms) => ms.flatMap((m) => (m._tag === "Event" ? [m.event] : [])))
            )
            const seen = new Map<string, number>()
            console.log(`rolling: ${events.length} writes in the log of ${url}`)
            for (const e of events)
              if (e.type === "put") seen.set(`${e.key}=${e.value}`, (seen.get(`${e.key}=${e.value}`) ?? 0) + 1)
            for (const a of acked) {
              assert.strictEqual(seen.get(`${a.key}=${a.value}`), 1, `${a.key}=${a.value} in the log of ${url} once`)
            }
          }
          let gap = 0
          for (let i = 1; i < acked.length; i++) gap = Math.max(gap, acked[i]!.at - acked[i - 1]!.at)
          console.log(
            `rolling replacement: ${acked.length} acknowledged CAS writes, longest interval without one ${gap.toFixed(0)} ms`
          )
        })
      ),
    240_000
  )
})

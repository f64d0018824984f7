/**
 * Linearizable reads under faults, on real processes: a nats-server and 3 `synod serve`
 * processes with fsync (read leases on, as by default), one writer putting one key again
 * and again, and readers on every server reading it by read index (`client.read`), while
 * the active leader is stopped with SIGSTOP and resumed, and SIGKILLed and restarted, in
 * turn. Afterwards every read is checked against what it must see: its version at least
 * that of every write that completed before the read began, and at least that of every
 * read that ended before it began (versions only grow: the key's writes are ordered in the
 * log). A deposed leader that answered from a lease it no longer held, or a replica that
 * answered before applying the index, fails it.
 *
 *   pnpm bench reads                                   30 s, a fault every 3 s
 *   pnpm bench reads --seconds 10 --readers 2
 *
 * Flags: --seconds S (30), --every S (3: a fault's period), --pause-seconds S (1.5),
 * --readers N (4 per server), --keep (keep data and logs).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Client } from "@synod/actors"
import { Kv } from "@synod/kv"
import { NatsTransport } from "@synod/transport-nats"
import { Effect, FiberSet, Layer, References } from "effect"
import * as Cluster from "./Cluster.ts"
import { flag, has, now, print } from "./Cluster.ts"
import { check, type Op } from "./ReadCheck.ts"

const seconds = flag("seconds", 30)
const everyMs = flag("every", 3) * 1000
const pauseMs = flag("pause-seconds", 1.5) * 1000
const readersPerServer = flag("readers", 4)

const main = Effect.gen(function* () {
  const cluster = yield* Cluster.start({
    servers: 3,
    name: "reads",
    clientTimeoutMs: 2500,
    keep: () => has("keep"),
    logLevel: "Warn"
  })
  const context = yield* Layer.build(
    NatsTransport.layer({ servers: [cluster.natsUrl], name: "reads-bench", cluster: cluster.name })
  ).pipe(Effect.orDie)
  const writes: Array<Op> = []
  const reads: Array<Op> = []
  let unknown = 0
  let unanswered = 0
  const fibers = yield* FiberSet.make()
  const writer = yield* Client.make(Kv.machine, cluster.config, { id: "reads.w" }).pipe(
    Effect.provideContext(context),
    Effect.orDie
  )
  yield* FiberSet.run(
    fibers,
    Effect.gen(function* () {
      for (let n = 1; ; n++) {
        const start = now()
        const result = yield* Effect.result(writer.submit({ _tag: "Put", key: "x", value: `${n}` }))
        const end = now()
        if (result._tag === "Failure" || result.success._tag !== "Written") unknown++
        else writes.push({ start, end, version: result.success.version, who: `write ${n}` })
      }
    })
  )
  for (const server of cluster.servers) {
    for (let k = 0; k < readersPerServer; k++) {
      const name = `reads.${server.id}r${k}`
      // pinned to one server's replica: every server's reads are checked, the deposed
      // leader's above all
      const reader = yield* Client.make(Kv.machine, cluster.config, { id: name, replicas: () => [server.id] }).pipe(
        Effect.provideContext(context),
        Effect.orDie
      )
      yield* FiberSet.run(
        fibers,
        Effect.gen(function* () {
          for (;;) {
            const start = now()
            const result = yield* Effect.result(reader.read({ _tag: "Get", key: "x" }))
            const end = now()
            if (result._tag === "Success" && result.success._tag === "Value") {
              reads.push({ start, end, version: result.success.version, who: `${name}` })
            } else {
              unanswered++
              yield* Effect.sleep(5)
            }
          }
        })
      )
    }
  }
  print(
    `reads under faults: 3 servers, 1 writer, ${readersPerServer} readers per server, ${seconds} s, a fault every ${everyMs / 1000} s`
  )
  const until = now() + seconds * 1000
  let faults = 0
  while (now() < until) {
    yield* Effect.sleep(everyMs)
    const leader = Cluster.activeLeader(yield* cluster.statuses())
    const server = cluster.servers.find((s) => s.id === leader?.id)
    if (server === undefined) continue
    faults++
    if (faults % 2 === 1) {
      print(`  ${((now() - until) / 1000 + seconds).toFixed(1)} s: SIGSTOP leader ${server.id} for ${pauseMs} ms`)
      yield* server.pause
      yield* Effect.sleep(pauseMs)
      yield* server.resume
    } else {
      print(`  ${((now() - until) / 1000 + seconds).toFixed(1)} s: SIGKILL leader ${server.id}, then restart`)
      yield* server.kill
      yield* Effect.orDie(server.restart)
    }
    print(`    ${writes.length} writes, ${reads.length} reads so far`)
  }
  yield* FiberSet.clear(fibers)
  const problems = check(writes, reads)
  print(
    `${writes.length} writes (${unknown} unknown outcomes), ${reads.length} reads checked (${unanswered} unanswered or timed out), ${faults} faults`
  )
  for (const p of problems) print(`  STALE: ${p}`)
  print(problems.length === 0 ? "PASS: every read saw every write and read that ended before it began" : "FAIL")
  if (problems.length > 0) return yield* Effect.die(new Error("stale reads"))
}).pipe(Effect.scoped)

NodeRuntime.runMain(main.pipe(Effect.provideService(References.MinimumLogLevel, "Warn")))

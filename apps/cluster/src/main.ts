/**
 * The main job, until the cluster app (CLI, HTTP API) exists: a 3-server synod cluster
 * (each server a replica, a leader and an acceptor) inside this process on the in-memory
 * bus, replicating a key-value store. It runs a short workload from several concurrent
 * clients, cuts off the active leader's server halfway, and prints what happened.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Client, KeyValue, Server } from "@synod/actors"
import { ClusterConfig, InMemoryBus, Storage } from "@synod/core"
import { Console, Effect, Layer, References } from "effect"

const config = ClusterConfig.servers(3)

const Cluster = Server.layerCluster(config, KeyValue.machine).pipe(
  Layer.provideMerge(Storage.layerMemory()),
  Layer.provideMerge(InMemoryBus.layer({ faults: { lossRate: 0.01, minDelay: 0, maxDelay: 1 } }))
)

const program = Effect.gen(function* () {
  const bus = yield* InMemoryBus.InMemoryBus
  yield* Console.log("synod: 3 servers (s1, s2, s3) in one process on the in-memory bus, 1% message loss")
  const client = yield* Client.make(KeyValue.machine, config, { id: "demo" })
  const show = (label: string, r: unknown) => Console.log(`  ${label.padEnd(34)} -> ${JSON.stringify(r)}`)

  yield* show("put greeting = hello", yield* client.submit({ _tag: "Put", key: "greeting", value: "hello" }))
  yield* show("get greeting", yield* client.submit({ _tag: "Get", key: "greeting" }))
  yield* show(
    "cas greeting hello -> hi",
    yield* client.submit({ _tag: "Cas", key: "greeting", expected: "hello", value: "hi" })
  )
  yield* show(
    "cas greeting hello -> hey (stale)",
    yield* client.submit({ _tag: "Cas", key: "greeting", expected: "hello", value: "hey" })
  )

  const writers = 32
  const started = Date.now()
  const counters = yield* Effect.forEach(
    Array.from({ length: writers }, (_, i) => i),
    (i) =>
      Effect.gen(function* () {
        const c = yield* Client.make(KeyValue.machine, config, { id: `writer${i}` })
        for (let n = 1; n <= 50; n++) {
          if (i === 0 && n === 25) {
            yield* Console.log("  ... isolating server s1 (the first leader) mid-run")
            yield* bus.isolate("s1")
          }
          yield* c.submit({ _tag: "Put", key: `counter${i}`, value: String(n) })
        }
        return (yield* c.submit({ _tag: "Get", key: `counter${i}` })) as KeyValue.KvResult
      }),
    { concurrency: "unbounded" }
  )
  const ok = counters.every((r) => r._tag === "Value" && r.value === "50")
  const stats = yield* bus.stats
  yield* Console.log(
    `  ${writers} clients x 50 puts in ${Date.now() - started} ms with s1 cut off: every counter reads 50: ${ok}`
  )
  yield* Console.log(`  bus: ${stats.delivered} messages delivered, ${stats.dropped} dropped`)
  if (!ok) return yield* Effect.fail(new Error("a counter did not read 50"))
})

program.pipe(
  Effect.scoped,
  Effect.provide(Cluster),
  Effect.provideService(References.MinimumLogLevel, "Warn"),
  NodeRuntime.runMain
)

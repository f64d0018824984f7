import { assert, describe, it } from "@effect/vitest"
import { ClusterConfig, InMemoryBus, Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { Effect, Layer } from "effect"
import { Client, Server } from "@synod/actors"

const config = ClusterConfig.servers(3)

const cluster = (disk = new Storage.MemoryDisk()) =>
  Server.layerCluster(config, Kv.machine).pipe(
    Layer.provideMerge(Storage.layerMemory(disk)),
    Layer.provideMerge(InMemoryBus.layer())
  )

describe("a 3-server cluster on the in-memory bus", () => {
  it.live(
    "commits commands from concurrent clients in one order",
    () =>
      Effect.gen(function* () {
        const client = yield* Client.make(Kv.machine, config)
        const r1 = yield* client.submit({ _tag: "Put", key: "a", value: "1" })
        assert.deepStrictEqual(r1, { _tag: "Written", version: 1 })
        const r2 = yield* client.submit({ _tag: "Get", key: "a" })
        assert.deepStrictEqual(r2, { _tag: "Value", value: "1", version: 1 })
        const results = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => client.submit({ _tag: "Cas", key: "counter", version: 0, value: `v${i}` }),
          { concurrency: 50 }
        )
        const swapped = results.filter((r) => r._tag === "Swapped" && r.ok).length
        assert.strictEqual(swapped, 1, "exactly one CAS from absent wins")
      }).pipe(Effect.provide(cluster())),
    20_000
  )
})

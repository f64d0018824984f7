/**
 * The README's example of swapping the in-memory bus for NATS in a test, verbatim, so the
 * example keeps compiling and working.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client, Server } from "@synod/actors"
import { ClusterConfig, Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { NatsServer } from "@synod/testing"
import { NatsTransport } from "@synod/transport-nats"
import { Effect, Layer } from "effect"

const config = ClusterConfig.servers(3)

describe("README", () => {
  it.live(
    "puts and gets over NATS",
    () =>
      Effect.gen(function* () {
        const nats = yield* NatsServer.start() // a nats-server on a free port, killed with the test's scope
        const transport = NatsTransport.layer({ servers: [nats.url], name: "test", cluster: "test" }) // was: InMemoryBus.layer()
        const cluster = Server.layerCluster(config, Kv.machine).pipe(
          Layer.provideMerge(Storage.layerMemory()),
          Layer.provideMerge(transport)
        )
        const result = yield* Effect.gen(function* () {
          const client = yield* Client.make(Kv.machine, config)
          yield* client.submit({ _tag: "Put", key: "k", value: "v" })
          return yield* client.submit({ _tag: "Get", key: "k" })
        }).pipe(Effect.provide(cluster))
        assert.deepStrictEqual(result, { _tag: "Value", value: "v", version: 1 })
      }),
    30_000
  )
})

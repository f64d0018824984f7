/**
 * Test kit: the HTTP API on a free port of this process, over an embedded 3-server cluster
 * on the in-memory bus, for the life of the test's scope. Answers its URL.
 */
import { ClusterConfig, InMemoryBus, Storage } from "@synod/core"
import { Effect, Layer } from "effect"
import * as ApiServer from "@synod/cluster/ApiServer"
import * as Embedded from "@synod/cluster/Embedded"

export const startApi = Effect.gen(function* () {
  const config = ClusterConfig.servers(3, {
    timeouts: { retransmitMs: 50, heartbeatMs: 50, leaderTimeoutMs: 300, clientTimeoutMs: 10_000 }
  })
  const context = yield* Layer.build(
    ApiServer.layer({ port: 0 }).pipe(
      Layer.provide(Embedded.layerNoDeps(config, { cluster: "test", transport: "memory" })),
      Layer.provideMerge(Storage.layerMemory()),
      Layer.provideMerge(InMemoryBus.layer())
    )
  )
  return yield* ApiServer.url.pipe(Effect.provideContext(context))
})

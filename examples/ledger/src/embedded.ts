/**
 * The ledger embedded in an Effect program: a 3-server cluster in this process on the
 * in-memory bus (each server a replica, a leader and an acceptor), and a client that
 * opens two accounts and moves money between them. `node src/embedded.ts`
 *
 * The cluster is a layer: swap `InMemoryBus.layer()` for `NatsTransport.layer(…)` and
 * `Storage.layerMemory()` for files, and the same program runs against real servers
 * (`server.ts` is one such server process).
 */
import { Client, Server } from "@synod/actors"
import { ClusterConfig, InMemoryBus, Storage } from "@synod/core"
import { Effect, Layer } from "effect"
import * as Ledger from "./Ledger.ts"

export const config = ClusterConfig.servers(3) // s1..s3

export const cluster = Server.layerCluster(config, Ledger.machine).pipe(
  Layer.provideMerge(Storage.layerMemory()),
  Layer.provideMerge(InMemoryBus.layer())
)

export const program = Effect.gen(function* () {
  const client = yield* Client.make(Ledger.machine, config)
  yield* client.submit({ _tag: "Deposit", account: "alice", amount: 100_00 })
  const moved = yield* client.submit({ _tag: "Transfer", from: "alice", to: "bob", amount: 30_00 })
  const refused = yield* client.submit({ _tag: "Transfer", from: "bob", to: "alice", amount: 50_00 })
  return { moved, refused }
}).pipe(Effect.scoped) // the client lives as long as the program

if (import.meta.main) {
  const { moved, refused } = await Effect.runPromise(program.pipe(Effect.provide(cluster)))
  console.log(JSON.stringify(moved))
  console.log(JSON.stringify(refused))
}

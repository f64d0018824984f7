/**
 * Bounded state on real files: a 3-server cluster (in-memory bus, file storage) garbage
 * collects its acceptor logs behind the replicas' snapshots, and a server restarted after
 * losing its replica directory copies a peer's state and carries on.
 */
import { NodeFileSystem, NodePath } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Client, Server } from "@synod/actors"
import { ClusterConfig, InMemoryBus, Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import * as FileStorage from "@synod/node/FileStorage"
import { Effect, Exit, FileSystem, Layer, Path, Scope } from "effect"

const NodeLayer = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer)
const config = ClusterConfig.servers(3, { snapshotEvery: 10 })

/** The three servers on `dataDir`, in a scope of their own (closing it is a process exit). */
const startCluster = (dataDir: string) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const storage = yield* FileStorage.make({ dataDir }).pipe(Scope.provide(scope))
    const servers = yield* Effect.forEach(["s1", "s2", "s3"], (id) =>
      Server.run({ id, config, machine: Kv.machine, snapshotOnClose: true }).pipe(
        Effect.provideService(Storage.Storage, storage),
        Scope.provide(scope)
      )
    )
    return { scope, servers }
  })

describe("garbage collection and state transfer on files", () => {
  it.live(
    "acceptors forget behind the snapshots; a server that lost its replica directory catches up after a restart",
    () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        const dataDir = path.join(yield* fs.makeTempDirectoryScoped({ prefix: "synod-catchup-" }), "data")
        let cluster = yield* startCluster(dataDir)
        const client = yield* Client.make(Kv.machine, config, { id: "c1" })
        for (let i = 1; i <= 200; i++) yield* client.submit({ _tag: "Put", key: `k${i % 5}`, value: `${i}` })
        // progress reports reach the acceptors on a timer
        const forgot = (s: Server.Status) => s.acceptor!.watermark > 150 && s.acceptor!.accepted < 60
        for (let i = 0; i < 100; i++) {
          if ((yield* Effect.forEach(cluster.servers, (s) => s.status)).every(forgot)) break
          yield* Effect.sleep("50 millis")
        }
        const before = yield* Effect.forEach(cluster.servers, (s) => s.status)
        for (const s of before) {
          assert.isAbove(s.acceptor!.watermark, 150, `${s.id} garbage-collected`)
          assert.isBelow(s.acceptor!.accepted, 60, `${s.id} keeps only the slots above its watermark`)
        }

        yield* Scope.close(cluster.scope, Exit.void)
        yield* fs.remove(path.join(dataDir, "replica-s3"), { recursive: true })
        cluster = yield* startCluster(dataDir)
        const s3 = cluster.servers[2]!
        const s1 = cluster.servers[0]!
        for (let i = 201; i <= 220; i++) yield* client.submit({ _tag: "Put", key: `k${i % 5}`, value: `${i}` })
        let caughtUp = false
        for (let i = 0; i < 200 && !caughtUp; i++) {
          const [a, b] = [(yield* s1.status).replica!, (yield* s3.status).replica!]
          caughtUp = a.slotOut === b.slotOut && JSON.stringify(a.state) === JSON.stringify(b.state)
          if (!caughtUp) yield* Effect.sleep("25 millis")
        }
        assert.isTrue(caughtUp, "s3 copied a peer's state and applies new commands")
        // the copy is saved right after it is installed
        let durable = 0
        for (let i = 0; i < 100 && durable <= 150; i++) {
          durable = (yield* s3.status).replica!.durable
          if (durable <= 150) yield* Effect.sleep("20 millis")
        }
        assert.isAbove(durable, 150, "and saved it")
        assert.isTrue(yield* fs.exists(path.join(dataDir, "replica-s3", "snapshot")))
        yield* Scope.close(cluster.scope, Exit.void)
      }).pipe(Effect.provide(InMemoryBus.layer()), Effect.provide(NodeLayer), Effect.scoped),
    60_000
  )
})

/**
 * The same cluster over real NATS: three colocated servers, each with its own NATS
 * connection (as separate processes would have), and clients with theirs, against a
 * nats-server the test starts and stops.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client, KeyValue, Server } from "@synod/actors"
import { ClusterConfig, Storage } from "@synod/core"
import { NatsServer, NatsTransport } from "@synod/transport-nats"
import { Effect, Layer } from "effect"

const config = ClusterConfig.servers(3, {
  timeouts: { retransmitMs: 50, heartbeatMs: 50, leaderTimeoutMs: 300, clientTimeoutMs: 20_000 }
})

const transport = (url: string, name: string) =>
  Layer.build(NatsTransport.layer({ servers: [url], name, cluster: "it", reconnectWait: 100 }))

/** Starts the three servers, each on its own connection; returns their handles. */
const startServers = (url: string) =>
  Effect.forEach(config.replicas, (id) =>
    Effect.gen(function* () {
      const ctx = yield* transport(url, id)
      return yield* Server.run({ id, config, machine: KeyValue.machine }).pipe(
        Effect.provideContext(ctx),
        Effect.provideService(Storage.Storage, Storage.makeMemory(new Storage.MemoryDisk()))
      )
    })
  )

const newClient = (url: string, id: string) =>
  Effect.gen(function* () {
    const ctx = yield* transport(url, id)
    return yield* Client.make(KeyValue.machine, config, { id }).pipe(Effect.provideContext(ctx))
  })

/** Waits until every replica applied the same slots, then returns their states. */
const settledStates = (servers: ReadonlyArray<Server.Handle>) =>
  Effect.gen(function* () {
    for (let i = 0; i < 200; i++) {
      const statuses = yield* Effect.forEach(servers, (s) => s.status)
      const slots = statuses.map((s) => s.replica!.slotOut)
      if (slots.every((x) => x === slots[0])) return statuses.map((s) => JSON.stringify(s.replica!.state))
      yield* Effect.sleep("50 millis")
    }
    return assert.fail("replicas did not converge")
  })

describe("a 3-server cluster over NATS", () => {
  it.live(
    "commits commands from concurrent clients; the replicas end identical",
    () =>
      Effect.gen(function* () {
        const nats = yield* NatsServer.start()
        const servers = yield* startServers(nats.url)
        const results = yield* Effect.forEach(
          Array.from({ length: 8 }, (_, i) => i),
          (i) =>
            Effect.gen(function* () {
              const client = yield* newClient(nats.url, `client${i}`)
              for (let n = 1; n <= 25; n++) yield* client.submit({ _tag: "Put", key: `k${i}`, value: `${n}` })
              return yield* client.submit({ _tag: "Get", key: `k${i}` })
            }),
          { concurrency: "unbounded" }
        )
        for (const r of results) assert.deepStrictEqual(r, { _tag: "Value", value: "25" })
        const states = yield* settledStates(servers)
        assert.strictEqual(new Set(states).size, 1, "identical replica states")
        assert.include(states[0]!, "k7")
      }),
    60_000
  )

  it.live(
    "survives the NATS server being killed and restarted while clients submit: every acknowledged command applied exactly once",
    () =>
      Effect.gen(function* () {
        const nats = yield* NatsServer.start()
        const servers = yield* startServers(nats.url)
        const clients = 4
        const steps = 30
        // each client advances its own counter by compare-and-set: a command applied twice,
        // or a lost acknowledged one, breaks the chain and shows as a failed swap
        const workload = Effect.forEach(
          Array.from({ length: clients }, (_, i) => i),
          (i) =>
            Effect.gen(function* () {
              const client = yield* newClient(nats.url, `cas${i}`)
              const swaps: Array<boolean> = []
              for (let n = 1; n <= steps; n++) {
                const r = yield* client.submit({
                  _tag: "Cas",
                  key: `counter${i}`,
                  expected: n === 1 ? null : String(n - 1),
                  value: String(n)
                })
                swaps.push(r._tag === "Swapped" && r.ok)
                yield* Effect.sleep("10 millis")
              }
              return swaps
            }),
          { concurrency: "unbounded" }
        )
        const nemesis = Effect.gen(function* () {
          yield* Effect.sleep("300 millis")
          yield* nats.kill
          yield* Effect.sleep("700 millis")
          yield* nats.restart
        })
        const [swaps] = yield* Effect.all([workload, nemesis], { concurrency: "unbounded" })
        for (const s of swaps)
          assert.deepStrictEqual(
            s,
            Array.from({ length: steps }, () => true)
          )
        const states = yield* settledStates(servers)
        assert.strictEqual(new Set(states).size, 1, "identical replica states")
        for (let i = 0; i < clients; i++) assert.include(states[0]!, `"counter${i}","${steps}"`)
      }),
    90_000
  )
})

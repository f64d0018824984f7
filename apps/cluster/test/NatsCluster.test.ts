/**
 * The same cluster over real NATS: three colocated servers, each with its own NATS
 * connection (as separate processes would have), and clients with theirs, against a
 * nats-server the test starts and stops.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client, Server } from "@synod/actors"
import { ClusterConfig, Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { NatsServer } from "@synod/testing"
import { NatsStats, NatsTransport } from "@synod/transport-nats"
import { connect } from "@nats-io/transport-node"
import { Context, Effect, Layer } from "effect"
import { eventually } from "./Process.ts"

const config = ClusterConfig.servers(3, {
  timeouts: { retransmitMs: 50, heartbeatMs: 50, leaderTimeoutMs: 300, clientTimeoutMs: 20_000 }
})

const transport = (url: string | ReadonlyArray<string>, name: string) =>
  Layer.build(
    NatsTransport.layer({
      servers: typeof url === "string" ? [url] : [...url],
      name,
      cluster: "it",
      reconnectWait: 100,
      maxMessageBytes: 256 * 1024
    })
  )

/** Starts the three servers, each on its own connection (server i on `urls[i]`); returns their handles. */
const startServers = (url: string | ReadonlyArray<ReadonlyArray<string>>) =>
  Effect.forEach(config.replicas, (id, i) =>
    Effect.gen(function* () {
      const ctx = yield* transport(typeof url === "string" ? url : url[i]!, id)
      const handle = yield* Server.run({ id, config, machine: Kv.machine }).pipe(
        Effect.provideContext(ctx),
        Effect.provideService(Storage.Storage, Storage.makeMemory(new Storage.MemoryDisk()))
      )
      return { ...handle, stats: Context.get(ctx, NatsStats.NatsStats).snapshot }
    })
  )

const newClient = (url: string | ReadonlyArray<string>, id: string) =>
  Effect.gen(function* () {
    const ctx = yield* transport(url, id)
    return yield* Client.make(Kv.machine, config, { id }).pipe(Effect.provideContext(ctx))
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
        // versions count every key's writes: only the values are known
        for (const r of results) assert.strictEqual(r._tag === "Value" ? r.value : undefined, "25")
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
              let version = 0
              for (let n = 1; n <= steps; n++) {
                const r = yield* client.submit({ _tag: "Cas", key: `counter${i}`, version, value: String(n) })
                swaps.push(r._tag === "Swapped" && r.ok)
                if (r._tag === "Swapped") version = r.version
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

  it.live(
    "keeps working when the servers sit on different members of a NATS cluster and one member dies",
    () =>
      Effect.gen(function* () {
        const [m1, m2, m3] = yield* NatsServer.startCluster()
        const urls = [m1!.url, m2!.url, m3!.url]
        // server i starts on member i and knows the others for reconnecting
        const servers = yield* startServers(urls.map((u, i) => [u, ...urls.filter((_, j) => j !== i)]))
        const client = yield* newClient([m1!.url, m2!.url], "roaming")
        // route interest takes a moment to spread: the client retries until then
        for (let n = 1; n <= 20; n++) yield* client.submit({ _tag: "Put", key: "k", value: `${n}` })
        yield* m3!.kill
        for (let n = 21; n <= 40; n++) yield* client.submit({ _tag: "Put", key: "k", value: `${n}` })
        assert.deepStrictEqual(yield* client.submit({ _tag: "Get", key: "k" }), {
          _tag: "Value",
          value: "40",
          version: 40
        })
        const states = yield* settledStates(servers)
        assert.strictEqual(new Set(states).size, 1)
      }),
    90_000
  )

  it.live(
    "garbage, wrong shapes and oversized payloads on every role subject crash nothing; commands still commit",
    () =>
      Effect.gen(function* () {
        const nats = yield* NatsServer.start()
        const servers = yield* startServers(nats.url)
        const client = yield* newClient(nats.url, "steady")
        yield* client.submit({ _tag: "Put", key: "k", value: "before" })
        const raw = yield* Effect.acquireRelease(
          Effect.promise(() => connect({ servers: nats.url })),
          (c) => Effect.promise(() => c.close())
        )
        const junk: Array<string | Uint8Array> = [
          new Uint8Array([0xff, 0x00, 0xfe]),
          "{not json",
          JSON.stringify({ hello: "world" }),
          JSON.stringify({ from: "leader/x", to: "acceptor/s1", message: { _tag: "P2a", ballot: { round: -1 } } }),
          "x".repeat(512 * 1024) // over the transports' 256 KiB limit, under the server's
        ]
        for (let round = 0; round < 3; round++) {
          for (const role of ["acceptor", "leader", "replica"]) {
            for (const id of config.replicas) for (const j of junk) raw.publish(`synod.it.${role}.${id}`, j)
          }
          yield* Effect.promise(() => raw.flush())
          yield* client.submit({ _tag: "Put", key: "k", value: `during${round}` })
        }
        assert.deepStrictEqual(yield* client.submit({ _tag: "Get", key: "k" }), {
          _tag: "Value",
          value: "during2",
          version: 4
        })
        // per server: 3 rounds x 3 roles x 4 undecodable payloads, and 3 x 3 oversized ones.
        // A commit needs only a majority, so a busy server may still be reading the last
        // round's junk: wait for the counts to arrive, then hold them to the exact figures
        for (const server of servers) {
          yield* eventually(
            "every junk payload counted",
            Effect.map(server.stats, (s) => s.decodeErrors >= 36 && s.oversized >= 9)
          )
          const stats = yield* server.stats
          assert.strictEqual(stats.decodeErrors, 36)
          assert.strictEqual(stats.oversized, 9)
        }
      }),
    60_000
  )
})

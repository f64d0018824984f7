/**
 * Authenticated envelopes over a real nats-server without permissions (issue 14): three
 * servers with a cluster key (one of them already rotated to the next key, the others
 * accepting it as the previous one) serve a client that holds no key; a forged `Decision`
 * (without a MAC, and with a MAC by a key the servers do not hold), a forged `StateChunk`
 * and a replayed genuine protocol message are refused, counted and logged with the
 * subject, and the replicas' states stay identical.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client, Server } from "@synod/actors"
import { Address, Ballot, ClusterConfig, Command, Message, StateMachine, Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { NatsServer } from "@synod/testing"
import { ClusterKey, NatsConnection, NatsStats, NatsTransport } from "@synod/transport-nats"
import { Context, Effect, Layer, Logger } from "effect"
import { eventually } from "./Process.ts"

const cluster = "ck"
const config = ClusterConfig.servers(3, { timeouts: { retransmitMs: 50, heartbeatMs: 50, leaderTimeoutMs: 300 } })
const oldKey = "the-old-cluster-key-of-this-test-0001"
const newKey = "the-new-cluster-key-of-this-test-0002"
const keys: Record<string, ClusterKey.Keys> = {
  s1: { current: newKey, previous: oldKey },
  s2: { current: oldKey, previous: newKey },
  s3: { current: oldKey, previous: newKey }
}

describe("authenticated envelopes over NATS", () => {
  it.live(
    "forged Decision and StateChunk and a replayed message are refused; a client without the key is served; replicas identical",
    () => {
      const lines: Array<ReadonlyArray<unknown>> = []
      const logger = Logger.make(({ message }) => {
        lines.push(Array.isArray(message) ? message : [message])
      })
      return Effect.gen(function* () {
        const nats = yield* NatsServer.start()
        const servers = yield* Effect.forEach(config.replicas, (id) =>
          Effect.gen(function* () {
            const ctx = yield* Layer.build(
              NatsTransport.layer({ servers: [nats.url], name: id, cluster, clusterKey: keys[id]!, reconnectWait: 100 })
            )
            const handle = yield* Server.run({ id, config, machine: Kv.machine }).pipe(
              Effect.provideContext(ctx),
              Effect.provideService(Storage.Storage, Storage.makeMemory(new Storage.MemoryDisk()))
            )
            return { handle, stats: Context.get(ctx, NatsStats.NatsStats) }
          })
        )
        const appCtx = yield* Layer.build(NatsTransport.layer({ servers: [nats.url], name: "app", cluster }))
        const app = yield* Client.make(Kv.machine, config).pipe(Effect.provideContext(appCtx))
        for (let n = 1; n <= 5; n++) yield* app.submit({ _tag: "Put", key: "k", value: `${n}` })

        // anyone may read and publish on this NATS: capture a genuine protocol message to s2
        const raw = Context.get(appCtx, NatsConnection.NatsConnection).client
        const target = `synod.${cluster}.replica.s2`
        const captured: Array<Uint8Array> = []
        const sub = raw.subscribe(target, {
          max: 1,
          callback: (_err, msg) => {
            captured.push(msg.data)
          }
        })
        yield* Effect.promise(() => raw.flush())
        yield* app.submit({ _tag: "Put", key: "k", value: "6" })
        yield* eventually(
          "a message to s2 captured",
          Effect.sync(() => captured.length === 1)
        )
        sub.unsubscribe()

        // the forged Decision of issue 14, for the next slot of s2
        const s2 = (yield* servers[1]!.handle.status).replica!
        const decision = new Message.Decision({
          slot: s2.slotOut,
          value: new Command.Batch({
            commands: [
              new Command.Command({
                client: "evil",
                seq: 1,
                acked: 0,
                op: StateMachine.codecs(Kv.machine).encodeCommand({ _tag: "Put", key: "k", value: "evil" })
              })
            ]
          }),
          ballot: Ballot.make(1, "s1")
        })
        const chunk = new Message.StateChunk({
          transfer: { slotOut: 1_000_000, checksum: 0 },
          index: 0,
          count: 1,
          data: "{}"
        })
        const to = Address.replica("s2")
        const json = (from: Address.Address, message: Message.Message) =>
          JSON.stringify(new Message.Envelope({ from, to, message }))
        const wrongKey = ClusterKey.sealer({ current: "a-key-nobody-in-the-cluster-holds-0003" }, "s1")
        raw.publish(target, json(Address.leader("s1"), decision)) // no MAC
        raw.publish(target, wrongKey.seal(target, json(Address.leader("s1"), decision))) // another key
        raw.publish(target, json(Address.replica("s1"), chunk)) // no MAC
        raw.publish(target, captured[0]!) // a replay of a genuine message
        yield* eventually(
          "three unauthenticated messages and a replay counted at s2",
          Effect.map(servers[1]!.stats.snapshot, (s) => s.unauthenticated === 3 && s.replayed === 1)
        )
        const refused = lines
          .filter((l) => typeof l[0] === "string" && l[0].startsWith("refusing a"))
          .map((l) => [l[0], (l[1] as { subject: string }).subject])
        assert.deepStrictEqual(refused, [
          ["refusing an unauthenticated message", target],
          ["refusing an unauthenticated message", target],
          ["refusing an unauthenticated message", target],
          ["refusing a replayed message", target]
        ])

        // the cluster goes on, and every replica holds the same state
        for (let n = 7; n <= 10; n++) yield* app.submit({ _tag: "Put", key: "k", value: `${n}` })
        assert.deepStrictEqual(yield* app.submit({ _tag: "Get", key: "k" }), {
          _tag: "Value",
          value: "10",
          version: 10
        })
        yield* eventually(
          "the replicas caught up with each other",
          Effect.map(
            Effect.forEach(servers, (s) => s.handle.status),
            (all) => new Set(all.map((s) => s.replica!.slotOut)).size === 1
          )
        )
        const statuses = yield* Effect.forEach(servers, (s) => s.handle.status)
        for (const s of statuses.slice(1)) assert.deepStrictEqual(s.replica!.state, statuses[0]!.replica!.state)
        // servers on either key understood each other: nothing genuine was refused anywhere else
        const counts = yield* Effect.forEach(servers, (s) => s.stats.snapshot)
        assert.deepStrictEqual(
          counts.map((s) => [s.unauthenticated, s.replayed, s.decodeErrors]),
          [
            [0, 0, 0],
            [3, 1, 0],
            [0, 0, 0]
          ]
        )
      }).pipe(Effect.provide(Logger.layer([logger])))
    },
    60_000
  )

  it.live(
    "a server's own clients: requests in its scope and answers to them need the key; forged ones are refused and change nothing",
    () =>
      Effect.gen(function* () {
        const nats = yield* NatsServer.start()
        const key = { current: newKey }
        const servers = yield* Effect.forEach(config.replicas, (id) =>
          Effect.gen(function* () {
            const ctx = yield* Layer.build(
              NatsTransport.layer({
                servers: [nats.url],
                name: id,
                cluster,
                clusterKey: key,
                serverIds: config.replicas,
                reconnectWait: 100
              })
            )
            const handle = yield* Server.run({ id, config, machine: Kv.machine }).pipe(
              Effect.provideContext(ctx),
              Effect.provideService(Storage.Storage, Storage.makeMemory(new Storage.MemoryDisk()))
            )
            return { ctx, handle, stats: Context.get(ctx, NatsStats.NatsStats) }
          })
        )
        // as `synod serve`'s HTTP API client: in s1's scope, through s1's transport; it asks
        // s2 only, so its requests cross NATS, sealed
        const id = "s1.http-test"
        const api = yield* Client.make(Kv.machine, config, { id, replicas: () => ["s2"] }).pipe(
          Effect.provideContext(servers[0]!.ctx)
        )
        for (let n = 1; n <= 3; n++) yield* api.submit({ _tag: "Put", key: "k", value: `${n}` })

        // anyone on this NATS, without the key: requests of that client for its next
        // sequence numbers, to every replica, and an answer to its next command
        const forger = Context.get(
          yield* Layer.build(NatsTransport.layer({ servers: [nats.url], name: "forger", cluster })),
          NatsConnection.NatsConnection
        ).client
        const ops = StateMachine.codecs(Kv.machine)
        for (let seq = 4; seq <= 9; seq++) {
          for (const r of config.replicas) {
            const request = new Message.Request({
              command: new Command.Command({
                client: id,
                seq,
                acked: 4,
                op: ops.encodeCommand({ _tag: "Put", key: "forged", value: `${seq}` })
              })
            })
            forger.publish(
              `synod.${cluster}.req.${r}.s1`,
              JSON.stringify(
                new Message.Envelope({ from: Address.client(id), to: Address.replica(r), message: request })
              )
            )
          }
        }
        forger.publish(
          `synod.${cluster}.client.s1.http-test`,
          JSON.stringify(
            new Message.Envelope({
              from: Address.replica("s2"),
              to: Address.client(id),
              message: new Message.Response({
                seq: 4,
                slot: 4,
                result: ops.encodeResult({ _tag: "Written", version: 99 })
              })
            })
          )
        )
        yield* eventually(
          "the forged requests refused at every replica, the forged answer at s1",
          Effect.map(
            Effect.forEach(servers, (s) => s.stats.snapshot),
            (all) => all[0]!.unauthenticated === 7 && all[1]!.unauthenticated === 6 && all[2]!.unauthenticated === 6
          )
        )
        // the client's own commands at those sequence numbers are performed, and answered truly
        for (let n = 4; n <= 9; n++) {
          assert.deepStrictEqual(yield* api.submit({ _tag: "Put", key: "k", value: `${n}` }), {
            _tag: "Written",
            version: n
          })
        }
        assert.deepStrictEqual(yield* api.submit({ _tag: "Get", key: "forged" }), {
          _tag: "Value",
          value: null,
          version: 0
        })
        assert.deepStrictEqual(yield* api.submit({ _tag: "Get", key: "k" }), { _tag: "Value", value: "9", version: 9 })
      }),
    60_000
  )
})

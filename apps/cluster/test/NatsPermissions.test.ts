/**
 * A cluster on a nats-server configured with the output of `synod nats-config`: the
 * servers do their job and clients of each scope get their answers; a client user can
 * neither publish a protocol message (the forged `Decision` and `StateChunk` of issue 14),
 * nor send requests in another scope, nor read another scope's responses. A protocol
 * message on the one subject it may publish to (its requests) is refused by the replica,
 * counted and logged. Through all of it the replicas' states stay identical.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client, Server } from "@synod/actors"
import { Address, Ballot, ClusterConfig, Command, Message, StateMachine, Storage, Transport } from "@synod/core"
import { Kv } from "@synod/kv"
import { NatsServer } from "@synod/testing"
import { NatsConnection, NatsStats, NatsTransport } from "@synod/transport-nats"
import { Context, Effect, Layer, Logger } from "effect"
import { eventually, run } from "./Process.ts"

const cluster = "perm"
const config = ClusterConfig.servers(3, { timeouts: { retransmitMs: 50, heartbeatMs: 50, leaderTimeoutMs: 300 } })

const connect = (url: string, user: string, password: string) =>
  Layer.build(
    NatsTransport.layer({ servers: [url], name: user, cluster, auth: { user, password }, reconnectWait: 100 })
  )

describe("a cluster on a NATS server configured by synod nats-config", () => {
  it.live(
    "clients reach replicas by requests of their own scope only; forged protocol messages are refused and the replicas stay identical",
    () => {
      const lines: Array<ReadonlyArray<unknown>> = []
      const logger = Logger.make(({ message }) => {
        lines.push(Array.isArray(message) ? message : [message])
      })
      return Effect.gen(function* () {
        const generated = yield* run([
          "nats-config",
          "--name",
          cluster,
          "--servers",
          "s1,s2,s3",
          "--clients",
          "app,web"
        ])
        assert.strictEqual(generated.code, 0, generated.stderr)
        const passwords = new Map(
          [...generated.stdout.matchAll(/user: "([^"]+)", password: "([^"]+)"/g)].map((m) => [m[1]!, m[2]!])
        )
        assert.deepStrictEqual([...passwords.keys()], ["s1", "s2", "s3", "app", "web"])
        const nats = yield* NatsServer.start({ config: generated.stdout })
        const login = (user: string) => connect(nats.url, user, passwords.get(user)!)

        const servers = yield* Effect.forEach(config.replicas, (id) =>
          Effect.gen(function* () {
            const ctx = yield* login(id)
            const handle = yield* Server.run({ id, config, machine: Kv.machine }).pipe(
              Effect.provideContext(ctx),
              Effect.provideService(Storage.Storage, Storage.makeMemory(new Storage.MemoryDisk()))
            )
            return { handle, stats: Context.get(ctx, NatsStats.NatsStats) }
          })
        )
        const appCtx = yield* login("app")
        const webCtx = yield* login("web")
        const app = yield* Client.make(Kv.machine, config, { scope: "app" }).pipe(Effect.provideContext(appCtx))
        const web = yield* Client.make(Kv.machine, config, { scope: "web" }).pipe(Effect.provideContext(webCtx))
        for (let n = 1; n <= 5; n++) {
          yield* app.submit({ _tag: "Put", key: "k", value: `${n}` })
          yield* web.submit({ _tag: "Put", key: "w", value: `${n}` })
        }

        // the forged Decision of issue 14 (the next slot, on s2's protocol subject), a forged
        // StateChunk, and a request in the web scope: the NATS server refuses each publish
        const transport = Context.get(appCtx, Transport.Transport)
        const appStats = Context.get(appCtx, NatsStats.NatsStats)
        const s2 = (yield* servers[1]!.handle.status).replica!
        const codecs = StateMachine.codecs(Kv.machine)
        const evil = (client: string) =>
          new Command.Command({
            client,
            seq: 1,
            acked: 0,
            op: codecs.encodeCommand({ _tag: "Put", key: "k", value: "evil" })
          })
        const decision = new Message.Decision({
          slot: s2.slotOut,
          value: new Command.Batch({ commands: [evil("app.evil")] }),
          ballot: Ballot.make(1, "s1")
        })
        const chunk = new Message.StateChunk({
          transfer: { slotOut: 1_000_000, checksum: 0 },
          index: 0,
          count: 1,
          data: "{}"
        })
        // each its own NATS message (the transport would coalesce sends to one subject)
        const raw = Context.get(appCtx, NatsConnection.NatsConnection).client
        const to = Address.replica("s2")
        const json = (from: Address.Address, message: Message.Message) =>
          JSON.stringify(new Message.Envelope({ from, to, message }))
        raw.publish(`synod.${cluster}.replica.s2`, json(Address.leader("s1"), decision))
        raw.publish(`synod.${cluster}.replica.s2`, json(Address.replica("s1"), chunk))
        const request = new Message.Request({ command: evil("web.evil") })
        raw.publish(`synod.${cluster}.req.s2.web`, json(Address.client("web.evil"), request))
        // reading another scope's responses: the subscription is refused
        const denied = yield* Effect.flip(transport.listen(Address.client("web.x")))
        assert.include(denied.reason, "Permissions Violation")
        yield* eventually(
          "three publishes and one subscription refused",
          Effect.map(appStats.snapshot, (s) => s.permissionErrors === 4)
        )

        // on the subject it may publish to, a protocol message is refused by the replica
        const onRequests = `synod.${cluster}.req.s2.app`
        raw.publish(onRequests, json(Address.leader("s1"), decision))
        yield* eventually(
          "s2 refused the Decision on its request subject",
          Effect.map(servers[1]!.stats.snapshot, (s) => s.refused === 1)
        )
        const logged = lines.find((l) => l[0] === "refusing a message")
        assert.isDefined(logged)
        assert.strictEqual((logged![1] as { subject: string }).subject, onRequests)

        // the cluster goes on, and every replica holds the same state
        for (let n = 6; n <= 10; n++) yield* app.submit({ _tag: "Put", key: "k", value: `${n}` })
        assert.deepStrictEqual(yield* web.submit({ _tag: "Get", key: "k" }), {
          _tag: "Value",
          value: "10",
          version: 15
        })
        const statuses = yield* eventually(
          "the replicas caught up with each other",
          Effect.map(
            Effect.forEach(servers, (s) => s.handle.status),
            (all) => new Set(all.map((s) => s.replica!.slotOut)).size === 1
          )
        ).pipe(Effect.andThen(Effect.forEach(servers, (s) => s.handle.status)))
        for (const s of statuses.slice(1)) assert.deepStrictEqual(s.replica!.state, statuses[0]!.replica!.state)
        // nothing the client forged reached a server: the only refusal is the one above
        assert.deepStrictEqual(
          (yield* Effect.forEach(servers, (s) => s.stats.snapshot)).map((s) => [s.refused, s.decodeErrors]),
          [
            [0, 0],
            [1, 0],
            [0, 0]
          ]
        )
      }).pipe(Effect.provide(Logger.layer([logger])))
    },
    60_000
  )
})

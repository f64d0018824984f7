/**
 * A cluster on a NATS server with per-role users and subject permissions: the servers do
 * their job; a client user may publish only requests of its scope and subscribe only to
 * its own responses; its attempt to publish to an acceptor is refused and changes nothing.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client, Server } from "@synod/actors"
import { Address, Ballot, ClusterConfig, Message, Storage, Transport } from "@synod/core"
import { Kv } from "@synod/kv"
import { NatsServer } from "@synod/testing"
import { NatsStats, NatsTransport, Subjects } from "@synod/transport-nats"
import { Context, Effect, Layer, Schedule } from "effect"

const cluster = "perm"
const config = ClusterConfig.servers(3, { timeouts: { retransmitMs: 50, heartbeatMs: 50, leaderTimeoutMs: 300 } })
const list = (subjects: ReadonlyArray<string>) => `[${subjects.map((s) => JSON.stringify(s)).join(", ")}]`

const user = (name: string, p: Subjects.Permissions) =>
  `    { user: "${name}", password: "${name}-pass", permissions: {
        publish: ${list(p.publish)}, subscribe: ${list(p.subscribe)} } }`

// one user per server node, allowed to publish in the cluster and subscribe to its own
// subjects; the client user may publish requests of its scope and read its own responses
const permissions = `
authorization {
  users = [
${[...config.replicas.map((id) => user(id, Subjects.serverPermissions(cluster, id))), user("app", Subjects.clientPermissions(cluster, "app"))].join(",\n")}
  ]
}
`

const connect = (url: string, user: string) =>
  Layer.build(
    NatsTransport.layer({
      servers: [url],
      name: user,
      cluster,
      auth: { user, password: `${user}-pass` },
      reconnectWait: 100
    })
  )

describe("a cluster on a NATS server with per-role permissions", () => {
  it.live(
    "servers work, the client reaches replicas only, and a forbidden publish to an acceptor changes nothing",
    () =>
      Effect.gen(function* () {
        const nats = yield* NatsServer.start({ config: permissions })
        const servers = yield* Effect.forEach(config.replicas, (id) =>
          Effect.gen(function* () {
            const ctx = yield* connect(nats.url, id)
            return yield* Server.run({ id, config, machine: Kv.machine }).pipe(
              Effect.provideContext(ctx),
              Effect.provideService(Storage.Storage, Storage.makeMemory(new Storage.MemoryDisk()))
            )
          })
        )
        const appCtx = yield* connect(nats.url, "app")
        const client = yield* Client.make(Kv.machine, config, { scope: "app" }).pipe(Effect.provideContext(appCtx))
        for (let n = 1; n <= 10; n++) yield* client.submit({ _tag: "Put", key: "k", value: `${n}` })

        // the app user forges a phase-2 message with a huge ballot for every acceptor
        const transport = Context.get(appCtx, Transport.Transport)
        for (const id of config.acceptors) {
          const to = Address.acceptor(id)
          yield* transport.send(
            to,
            new Message.Envelope({
              from: Address.leader("s1"),
              to,
              message: new Message.P1a({ ballot: Ballot.make(1_000_000, "s9") })
            })
          )
        }
        const stats = Context.get(appCtx, NatsStats.NatsStats).snapshot
        yield* stats.pipe(
          Effect.filterOrFail(
            (s) => s.permissionErrors > 0,
            () => "no permission error yet"
          ),
          Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo({ times: 100 })))
        )
        for (let n = 11; n <= 20; n++) yield* client.submit({ _tag: "Put", key: "k", value: `${n}` })
        assert.deepStrictEqual(yield* client.submit({ _tag: "Get", key: "k" }), {
          _tag: "Value",
          value: "20",
          version: 20
        })
        // no acceptor ever promised the forged ballot
        for (const s of servers) {
          const status = yield* s.status
          assert.isTrue(Ballot.lessThan(status.acceptor!.promised, Ballot.make(1_000_000, "s9")))
        }
      }),
    60_000
  )
})

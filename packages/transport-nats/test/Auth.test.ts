import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue } from "effect"
import { Subjects } from "@synod/transport-nats"
import { NatsServer } from "@synod/testing"
import * as Kit from "./Kit.ts"

const cluster = "perm"
const list = (subjects: ReadonlyArray<string>) => `[${subjects.map((s) => JSON.stringify(s)).join(", ")}]`

// "server" (node s1) may publish anywhere in the cluster and subscribe to its own subjects;
// "client" (scope c1) may only publish requests of its scope and read its own responses
const serverUser = Subjects.serverPermissions(cluster, "s1")
const clientUser = Subjects.clientPermissions(cluster, "c1")
const permissions = `
authorization {
  users = [
    {
      user: "server", password: "server-pass",
      permissions: { publish: ${list(serverUser.publish)}, subscribe: ${list(serverUser.subscribe)} }
    },
    {
      user: "client", password: "client-pass",
      permissions: { publish: ${list(clientUser.publish)}, subscribe: ${list(clientUser.subscribe)} }
    }
  ]
}
`

const quick = { reconnectWait: "50 millis", reconnectJitter: "10 millis" } as const

describe("NatsTransport auth", () => {
  it.live(
    "per-user subject permissions: a client cannot reach an acceptor or a replica's protocol subject, server traffic flows",
    () =>
      Effect.gen(function* () {
        const server = yield* NatsServer.start({ config: permissions })
        const s1 = yield* Kit.build({
          ...quick,
          servers: server.url,
          name: "s1",
          cluster,
          localDelivery: false,
          auth: { user: "server", password: "server-pass" }
        })
        const c1 = yield* Kit.build({
          ...quick,
          servers: server.url,
          name: "c1",
          cluster,
          localDelivery: false,
          auth: { user: "client", password: "client-pass" }
        })
        const acceptor = yield* s1.transport.listen("acceptor/s1")
        const replica = yield* s1.transport.listen("replica/s1")
        const client = yield* c1.transport.listen("client/c1.x")

        // refused by the server: the client's connection reports it, the send itself does not fail
        yield* c1.transport.send("acceptor/s1", Kit.ping("client/c1.x", "acceptor/s1", 1))
        yield* Kit.eventually(
          "the client's connection reports the violation",
          c1.stats.snapshot.pipe(Effect.map((s) => s.permissionErrors >= 1))
        )
        // the acceptor's first message is the server's: the client's never arrived
        yield* s1.transport.send("acceptor/s1", Kit.ping("leader/s1", "acceptor/s1", 2))
        assert.strictEqual(Kit.seqOf(yield* Kit.takeWithin(acceptor)), 2)
        assert.strictEqual(Queue.sizeUnsafe(acceptor), 0)

        // what each may do keeps working
        yield* c1.transport.send("replica/s1", Kit.request("c1.x", "replica/s1", 3))
        assert.strictEqual(Kit.seqOf(yield* Kit.takeWithin(replica)), 3)
        yield* s1.transport.send("client/c1.x", Kit.response("client/c1.x", 4))
        assert.strictEqual(Kit.seqOf(yield* Kit.takeWithin(client)), 4)

        // a refused subscription fails listen
        const denied = yield* Effect.flip(c1.transport.listen("acceptor/s1"))
        assert.include(denied.reason, "Permissions Violation")
        const other = yield* Effect.flip(c1.transport.listen("client/c2.x"))
        assert.include(other.reason, "synod.perm.client.c2.x")
        // a protocol message to a replica (the forged Decision of issue 14) and a request in
        // another scope are refused by the server too
        yield* c1.transport.send("replica/s1", Kit.ping("leader/s1", "replica/s1", 5))
        yield* c1.transport.send("replica/s1", Kit.request("c2.x", "replica/s1", 6))

        // status events are read by a fiber of their own: they may trail the listen failure
        yield* Kit.eventually(
          "three publish and two subscribe violations reported",
          c1.stats.snapshot.pipe(Effect.map((s) => s.permissionErrors === 5))
        )
        yield* s1.transport.send("replica/s1", Kit.ping("leader/s1", "replica/s1", 7))
        assert.strictEqual(Kit.seqOf(yield* Kit.takeWithin(replica)), 7, "nothing the client forged arrived first")
        assert.strictEqual((yield* c1.stats.snapshot).subscriptionErrors, 2)
        const ss = yield* s1.stats.snapshot
        assert.strictEqual(ss.permissionErrors, 0)
        assert.strictEqual(ss.errors, 0)
      }),
    20_000
  )

  it.live(
    "user/password: the right password connects, a wrong one fails the layer clearly",
    () =>
      Effect.gen(function* () {
        const server = yield* NatsServer.start({
          config: `authorization { user: "node", password: "right" }`
        })
        const ok = yield* Kit.build({
          ...quick,
          servers: server.url,
          name: "ok",
          cluster: "up",
          auth: { user: "node", password: "right" }
        })
        const mailbox = yield* ok.transport.listen("replica/u1")
        yield* ok.transport.send("replica/u1", Kit.ping("leader/u2", "replica/u1", 1))
        assert.strictEqual(Kit.seqOf(yield* Kit.takeWithin(mailbox)), 1)

        const wrong = yield* Effect.flip(
          Kit.build({
            ...quick,
            servers: server.url,
            name: "bad",
            cluster: "up",
            auth: { user: "node", password: "wrong" }
          })
        )
        assert.strictEqual(wrong._tag, "TransportError")
        assert.include(wrong.reason, "Authorization Violation")
        assert.include(wrong.reason, server.url)
      }),
    20_000
  )

  it.live(
    "token: the right token connects, a wrong one fails the layer",
    () =>
      Effect.gen(function* () {
        const server = yield* NatsServer.start({ config: `authorization { token: "s3cret" }` })
        const ok = yield* Kit.build({
          ...quick,
          servers: server.url,
          name: "tok",
          cluster: "tok",
          auth: { token: "s3cret" }
        })
        const mailbox = yield* ok.transport.listen("leader/t1")
        yield* ok.transport.send("leader/t1", Kit.ping("replica/t2", "leader/t1", 5))
        assert.strictEqual(Kit.seqOf(yield* Kit.takeWithin(mailbox)), 5)

        const wrong = yield* Effect.flip(
          Kit.build({ ...quick, servers: server.url, name: "tok-bad", cluster: "tok", auth: { token: "guess" } })
        )
        assert.include(wrong.reason, "Authorization Violation")
      }),
    20_000
  )
})

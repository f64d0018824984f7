import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { NatsServer } from "@synod/testing"
import * as Kit from "./Kit.ts"

const quick = { reconnectWait: "50 millis", reconnectJitter: "10 millis" } as const

describe("NatsTransport on a NATS cluster", () => {
  it.live(
    "delivers across members, and fails over when a member dies",
    () =>
      Effect.gen(function* () {
        const [m1, m2, m3] = yield* NatsServer.startCluster()
        const all = [m3!.url, m1!.url, m2!.url]
        const t1 = yield* Kit.build({ ...quick, servers: m1!.url, name: "n1", cluster: "routed" })
        const t2 = yield* Kit.build({ ...quick, servers: m2!.url, name: "n2", cluster: "routed" })
        // the full list, tried in order: connects to m3 first, can move to m1 or m2
        const t3 = yield* Kit.build({ ...quick, servers: all, noRandomize: true, name: "n3", cluster: "routed" })
        assert.include(t3.connection.client.getServer(), String(m3!.port))

        const box1 = yield* t1.transport.listen("replica/n1")
        const box2 = yield* t2.transport.listen("replica/n2")
        const box3 = yield* t3.transport.listen("acceptor/n3")

        // subscriptions reach the other members asynchronously: retry until routed
        yield* Kit.deliver(t1.transport, "replica/n1", "replica/n2", box2, 1)
        yield* Kit.deliver(t2.transport, "replica/n2", "replica/n1", box1, 2)
        yield* Kit.deliver(t1.transport, "replica/n1", "acceptor/n3", box3, 3)

        yield* m3!.kill
        yield* Kit.eventually(
          "n3 reconnects to another member",
          t3.stats.snapshot.pipe(Effect.map((s) => s.reconnects >= 1))
        )
        assert.notInclude(t3.connection.client.getServer(), String(m3!.port))
        // the same mailbox keeps receiving (the client re-subscribed), in both directions
        yield* Kit.deliver(t1.transport, "replica/n1", "acceptor/n3", box3, 4)
        yield* Kit.deliver(t3.transport, "acceptor/n3", "replica/n2", box2, 5)
        // the members that stayed up never lost their clients
        assert.strictEqual((yield* t1.stats.snapshot).disconnects, 0)
        assert.strictEqual((yield* t2.stats.snapshot).disconnects, 0)
        assert.isAtLeast((yield* t3.stats.snapshot).disconnects, 1)
      }),
    30_000
  )
})

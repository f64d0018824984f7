import { createServer } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { NatsServer } from "@synod/testing"
import * as Kit from "./Kit.ts"

describe("NatsTransport connection loss", () => {
  it.live(
    "starts before NATS is up and works once it is",
    () =>
      Effect.gen(function* () {
        const port = yield* NatsServer.freePort
        // the port is held until NATS starts on it: a server that another test started on
        // it meanwhile once made this client connect at once (CI, 2026-12-02); the holder
        // closes every connection, which the client takes for a server not there yet
        const holder = createServer((socket) => socket.destroy())
        yield* Effect.callback<void>((resume) => {
          holder.listen(port, "127.0.0.1", () => resume(Effect.void))
        })
        const starting = yield* Kit.build({
          servers: `nats://127.0.0.1:${port}`,
          name: "early",
          cluster: "early",
          reconnectWait: "50 millis",
          reconnectJitter: "10 millis"
        }).pipe(Effect.forkChild)
        yield* Effect.sleep("500 millis")
        // still waiting, not failed: there is nothing to connect to yet
        assert.isUndefined(starting.pollUnsafe())

        yield* Effect.callback<void>((resume) => {
          holder.close(() => resume(Effect.void))
        })
        yield* NatsServer.start({ port })
        const { transport, stats } = yield* Fiber.join(starting)
        const mailbox = yield* transport.listen("replica/e1")
        yield* transport.send("replica/e1", Kit.ping("leader/e2", "replica/e1", 7))
        assert.strictEqual(Kit.seqOf(yield* Kit.takeWithin(mailbox)), 7)
        assert.strictEqual((yield* stats.snapshot).publishErrors, 0)
      }),
    20_000
  )

  it.live(
    "survives the server being killed and restarted on the same port",
    () =>
      Effect.gen(function* () {
        const server = yield* NatsServer.start()
        const { transport, stats, connection } = yield* Kit.build({
          servers: server.url,
          name: "phoenix",
          cluster: "phoenix",
          localDelivery: false,
          reconnectWait: "50 millis",
          reconnectJitter: "10 millis"
        })
        const mailbox = yield* transport.listen("acceptor/p1")
        yield* Kit.deliver(transport, "leader/p2", "acceptor/p1", mailbox, 1)

        yield* server.kill
        yield* Kit.eventually("the disconnect is noticed", stats.snapshot.pipe(Effect.map((s) => s.disconnects >= 1)))
        assert.isFalse(connection.isConnectedUnsafe())
        // while down: dropped and counted, not failed
        yield* transport.send("acceptor/p1", Kit.ping("leader/p2", "acceptor/p1", 2))
        assert.isAtLeast((yield* stats.snapshot).publishErrors, 1)

        yield* server.restart
        // the client re-subscribes on reconnect; sends around the reconnect may be lost
        yield* Kit.deliver(transport, "leader/p2", "acceptor/p1", mailbox, 3)
        const s = yield* stats.snapshot
        assert.isAtLeast(s.reconnects, 1)
        assert.isTrue(connection.isConnectedUnsafe())
      }),
    30_000
  )
})

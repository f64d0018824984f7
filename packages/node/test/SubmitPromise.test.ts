/**
 * `Client.submitPromise`: a command from a caller that is not an Effect fiber. Over NATS
 * and on the in-memory bus it sends without a fiber (`Transport.sendUnsafe`); on a
 * transport without that it runs `submit` in one. Either way it resolves with the
 * result, rejects with the `SubmitError`, and rejects with `OutcomeUnknown` when the client closes with
 * the command still waiting.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@synod/actors"
import { ClusterConfig, InMemoryBus, Transport } from "@synod/core"
import { Kv } from "@synod/kv"
import { Host, HostConfig } from "@synod/node"
import { NatsServer } from "@synod/testing"
import { NatsTransport } from "@synod/transport-nats"
import { Context, Effect, Exit, Layer, Result, Scope } from "effect"

const ids = ["s1"]
const config = ClusterConfig.make({ acceptors: ids, leaders: ids, replicas: ids })

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "synod-promise-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** A client in a scope of its own, which the test closes. */
const clientIn = Effect.fn(function* (scope: Scope.Closeable) {
  return yield* Client.make(Kv.machine, config, { id: "promised" }).pipe(Scope.provide(scope))
})

/** What a promise settled with, as a `Result` (a rejection's reason as the failure). */
const settled = <A>(promise: Promise<A>) =>
  Effect.promise(() =>
    promise.then(
      (a) => Result.succeed(a),
      (e: unknown) => Result.fail(e)
    )
  )

/**
 * A write and a read sent where no server answers, then the client closed: the write
 * rejects with `OutcomeUnknown`, the read with `ReadTimedOut` (not a promise that never settles).
 */
const closesWaiting = Effect.fn(function* (transport: Context.Context<Transport.Transport>) {
  const scope = yield* Scope.make()
  const client = yield* clientIn(scope).pipe(Effect.provide(transport))
  const waiting = client.submitPromise({ _tag: "Put", key: "k", value: "v" })
  const reading = client.readPromise({ _tag: "Get", key: "k" })
  yield* Scope.close(scope, Exit.void)
  const outcome = yield* settled(waiting)
  assert.isTrue(Result.isFailure(outcome))
  assert.instanceOf(Result.isFailure(outcome) ? outcome.failure : undefined, Client.OutcomeUnknown)
  const read = yield* settled(reading)
  assert.instanceOf(Result.isFailure(read) ? read.failure : undefined, Client.ReadTimedOut)
})

describe("Client.submitPromise", () => {
  it.live(
    "over NATS: answers without a fiber per command, and refuses a command too large before sending it",
    () =>
      Effect.gen(function* () {
        const nats = yield* NatsServer.start()
        const host = Result.getOrThrow(
          HostConfig.decode({
            name: "promise",
            node: "s1",
            dataDir: yield* tempDir,
            logLevel: "Warn",
            cluster: { acceptors: ids, leaders: ids, replicas: ids },
            transport: { kind: "nats", servers: [nats.url] }
          })
        )
        yield* Host.run(host, Kv.machine)
        const transport = yield* Layer.build(
          // a command may be at most about 40 kB here: a value of 60,000 characters is too large
          NatsTransport.layer({
            servers: [nats.url],
            name: "promise-client",
            cluster: "promise",
            maxMessageBytes: 40_000
          })
        )
        assert.isDefined(Context.get(transport, Transport.Transport).sendUnsafe, "NATS sends from outside a fiber")
        const scope = yield* Scope.make()
        const client = yield* clientIn(scope).pipe(Effect.provide(transport))
        const put = yield* settled(client.submitPromise({ _tag: "Put", key: "k", value: "v1" }))
        assert.isTrue(Result.isSuccess(put), `${Result.isFailure(put) ? put.failure : ""}`)
        // many at once, as a load generator's loops send them: each gets its own answer
        const puts = yield* Effect.promise(() =>
          Promise.all(
            Array.from({ length: 50 }, (_, i) => client.submitPromise({ _tag: "Put", key: `k${i}`, value: `${i}` }))
          )
        )
        assert.strictEqual(puts.length, 50)
        const got = yield* Effect.promise(() => client.submitPromise({ _tag: "Get", key: "k7" }))
        assert.deepStrictEqual(got, yield* client.submit({ _tag: "Get", key: "k7" }))
        assert.strictEqual((got as { readonly value?: string }).value, "7")
        // a read without a slot, the same way
        assert.deepStrictEqual(yield* Effect.promise(() => client.readPromise({ _tag: "Get", key: "k7" })), got)
        const tooLarge = yield* settled(client.submitPromise({ _tag: "Put", key: "big", value: "x".repeat(60_000) }))
        assert.isTrue(Result.isFailure(tooLarge))
        assert.instanceOf(Result.isFailure(tooLarge) ? tooLarge.failure : undefined, Client.CommandTooLarge)
        yield* Scope.close(scope, Exit.void)
      }),
    30_000
  )

  it.live(
    "over NATS with no server answering: rejects with OutcomeUnknown (a read: ReadTimedOut) when the client closes",
    () =>
      Effect.gen(function* () {
        const nats = yield* NatsServer.start()
        const transport = yield* Layer.build(
          NatsTransport.layer({ servers: [nats.url], name: "promise-alone", cluster: "promise" })
        )
        yield* closesWaiting(transport)
      })
  )

  it.live("on the in-memory bus (it has sendUnsafe too): rejects with OutcomeUnknown on close", () =>
    Effect.gen(function* () {
      const bus = yield* Layer.build(InMemoryBus.layer())
      assert.isDefined(Context.get(bus, Transport.Transport).sendUnsafe)
      yield* closesWaiting(bus)
    })
  )

  it.live("on a transport without sendUnsafe: runs submit in a fiber, and rejects with OutcomeUnknown on close", () =>
    Effect.gen(function* () {
      const bus = yield* Layer.build(InMemoryBus.layer())
      const { sendUnsafe: _, ...rest } = Context.get(bus, Transport.Transport)
      yield* closesWaiting(Context.add(bus, Transport.Transport, Transport.Transport.of(rest)))
    })
  )
})

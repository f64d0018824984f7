import { assert, describe, it } from "@effect/vitest"
import { headers } from "@nats-io/transport-node"
import { transportContract } from "@synod/testing/TransportContract"
import { Trace } from "@synod/core"
import { Effect, Exit, Layer, Logger, Queue, Tracer } from "effect"
import { NatsTransport } from "@synod/transport-nats"
import { NatsServer } from "@synod/testing"
import * as Kit from "./Kit.ts"

// every contract test gets its own server and transport
transportContract(
  "NATS",
  Layer.unwrap(
    Effect.map(NatsServer.start(), (server) =>
      NatsTransport.layer({ servers: server.url, name: "contract", cluster: "contract" })
    )
  ),
  "nats"
)
// the same contract through the server: every listener here is also local
transportContract(
  "NATS, local delivery off",
  Layer.unwrap(
    Effect.map(NatsServer.start(), (server) =>
      NatsTransport.layer({ servers: server.url, name: "contract", cluster: "contract", localDelivery: false })
    )
  ),
  "nats"
)

// the same contract with authenticated envelopes on (issue 14)
transportContract(
  "NATS with a cluster key",
  Layer.unwrap(
    Effect.map(NatsServer.start(), (server) =>
      NatsTransport.layer({
        servers: server.url,
        name: "contract",
        cluster: "contract",
        clusterKey: { current: "a-cluster-key-for-the-contract-tests" }
      })
    )
  ),
  "natsk"
)

/** Log lines (message arrays) written while `eff` runs. */
const capturingLogs = <A, E, R>(eff: (lines: Array<ReadonlyArray<unknown>>) => Effect.Effect<A, E, R>) => {
  const lines: Array<ReadonlyArray<unknown>> = []
  const logger = Logger.make(({ message }) => {
    lines.push(Array.isArray(message) ? message : [message])
  })
  return eff(lines).pipe(Effect.provide(Logger.layer([logger])))
}

/** A transport of cluster `cluster` on a fresh server, delivery through it, and a raw client beside it. */
const throughServer = (cluster: string, options: Partial<NatsTransport.Options> = {}) =>
  Effect.gen(function* () {
    const server = yield* NatsServer.start()
    const built = yield* Kit.build({ servers: server.url, name: cluster, cluster, localDelivery: false, ...options })
    return { ...built, raw: yield* Kit.rawClient(server.url) }
  })

describe("NatsTransport", () => {
  it.live(
    "drops garbage, wrong shapes and oversized messages, counts and logs each, and keeps delivering",
    () =>
      capturingLogs((lines) =>
        Effect.gen(function* () {
          const server = yield* NatsServer.start()
          const { transport, stats } = yield* Kit.build({
            servers: server.url,
            name: "bad-input",
            cluster: "bad",
            localDelivery: false,
            maxMessageBytes: 64 * 1024
          })
          const mailbox = yield* transport.listen("acceptor/a1")
          const raw = yield* Kit.rawClient(server.url)
          const subject = "synod.bad.acceptor.a1"
          raw.publish(subject, new Uint8Array([0xff, 0xfe, 0x00, 0x80])) // not UTF-8
          raw.publish(subject, "{ not json")
          raw.publish(subject, JSON.stringify({ hello: "world" })) // JSON, not an envelope
          raw.publish(
            subject,
            JSON.stringify({ from: "replica/x", to: "acceptor/a1", message: { _tag: "P1a", ballot: "high" } })
          )
          raw.publish(subject, "x".repeat(100 * 1024)) // over the 64 KiB limit
          // the server has routed all five before the valid one (one server, FIFO per subscriber)
          yield* Effect.promise(() => raw.flush())
          yield* transport.send("acceptor/a1", Kit.ping("replica/x", "acceptor/a1", 42))

          const got = yield* Kit.takeWithin(mailbox)
          assert.strictEqual(Kit.seqOf(got), 42)
          assert.strictEqual(Queue.sizeUnsafe(mailbox), 0)
          const s = yield* stats.snapshot
          assert.strictEqual(s.decodeErrors, 4)
          assert.strictEqual(s.oversized, 1)
          assert.strictEqual(s.received, 6)
          assert.strictEqual(s.delivered, 1)

          const dropped = lines.filter((l) => typeof l[0] === "string" && l[0].startsWith("dropping an"))
          assert.strictEqual(dropped.length, 5)
          for (const line of dropped) {
            const detail = line[1] as { subject: string; reason: string }
            assert.strictEqual(detail.subject, subject)
            assert.isAbove(detail.reason.length, 0)
          }
          assert.include((dropped[4]![1] as { reason: string }).reason, "exceeds the limit")
        })
      ),
    20_000
  )

  it.live(
    "a flood of garbage gets a few log lines and one line with how many more, while every message is counted",
    () =>
      capturingLogs((lines) =>
        Effect.gen(function* () {
          const { transport, stats, raw } = yield* throughServer("flood", { dropLogWindow: "1500 millis" })
          const mailbox = yield* transport.listen("leader/l1")
          for (let i = 0; i < 200; i++) raw.publish("synod.flood.leader.l1", `{ junk ${i}`)
          yield* Effect.promise(() => raw.flush())
          yield* transport.send("leader/l1", Kit.ping("replica/x", "leader/l1", 7))
          assert.strictEqual(Kit.seqOf(yield* Kit.takeWithin(mailbox)), 7)

          const dropping = (kind: string) => lines.filter((l) => l[0] === kind)
          const summaries = () => lines.filter((l) => typeof l[0] === "string" && l[0].includes(" more in "))
          assert.strictEqual((yield* stats.snapshot).decodeErrors, 200)
          assert.strictEqual(dropping("dropping an undecodable message").length, 5)
          assert.strictEqual(summaries().length, 0)
          // the window ends with nothing more coming: its summary is written all the same
          yield* Effect.sleep("2 seconds")
          const summary = summaries().find((l) => (l[0] as string).startsWith("dropping an undecodable message"))
          assert.isDefined(summary)
          assert.strictEqual(summary![0], "dropping an undecodable message (and 195 more in 1.5 s)")
          assert.include((summary![1] as { reason: string }).reason, "not JSON")
          assert.strictEqual((summary![1] as { subject: string }).subject, "synod.flood.leader.l1")
          assert.strictEqual(dropping("dropping an undecodable message").length, 5)
        })
      ),
    20_000
  )

  it.live(
    "a burst of garbage larger than a listener's queue is counted whole",
    () =>
      capturingLogs((lines) =>
        Effect.gen(function* () {
          const { transport, stats, raw } = yield* throughServer("burst", { inboxCapacity: 16 })
          const mailbox = yield* transport.listen("acceptor/a1")
          // one write from the raw client, read by the transport's connection in a few reads:
          // the callbacks run back to back, far past the 16 the problems' queue holds
          for (let i = 0; i < 2000; i++) raw.publish("synod.burst.acceptor.a1", `{ junk ${i}`)
          yield* Effect.promise(() => raw.flush())
          yield* transport.send("acceptor/a1", Kit.ping("replica/x", "acceptor/a1", 9))
          assert.strictEqual(Kit.seqOf(yield* Kit.takeWithin(mailbox)), 9)
          yield* Effect.sleep("300 millis")
          assert.strictEqual((yield* stats.snapshot).decodeErrors, 2000)
          const written = lines.filter((l) => typeof l[0] === "string" && l[0].startsWith("dropping"))
          assert.isAtMost(written.length, 10)
        })
      ),
    20_000
  )

  it.live(
    "a send the client refuses is counted and dropped, never failed",
    () =>
      Effect.gen(function* () {
        const server = yield* NatsServer.start()
        const { transport, stats } = yield* Kit.build({
          servers: server.url,
          name: "refused",
          cluster: "refused",
          localDelivery: false
        })
        const mailbox = yield* transport.listen("replica/r1")
        // over the server's max_payload (1 MB): the client throws, the transport must not
        const huge = Kit.ping("replica/x", "replica/r1", 1, { blob: "y".repeat(2 * 1024 * 1024) })
        const exit = yield* Effect.exit(transport.send("replica/r1", huge))
        assert.isTrue(Exit.isSuccess(exit))
        // not an address: would be a wildcard subject
        yield* transport.send("replica/*" as never, Kit.ping("replica/x", "replica/r1", 2))
        yield* transport.send("replica/r1", Kit.ping("replica/x", "replica/r1", 3))
        assert.strictEqual(Kit.seqOf(yield* Kit.takeWithin(mailbox)), 3)
        const s = yield* stats.snapshot
        assert.strictEqual(s.publishErrors, 2)
        assert.strictEqual(s.published, 1)
      }),
    20_000
  )

  it.live(
    "listen refuses what is not an address, and the layer refuses a bad cluster name",
    () =>
      Effect.gen(function* () {
        const server = yield* NatsServer.start()
        const { transport } = yield* Kit.build({ servers: server.url, name: "refuse", cluster: "refuse" })
        const bad = yield* Effect.exit(transport.listen("acceptor/>" as never))
        assert.isTrue(Exit.isFailure(bad))
        const notAddress = yield* Effect.flip(transport.listen("acceptor/a b" as never))
        assert.include(notAddress.reason, "not an address")
        // refused before connecting: no server at this address
        const layer = yield* Effect.flip(Kit.build({ servers: "nats://127.0.0.1:1", name: "x", cluster: "a.b" }))
        assert.strictEqual(layer._tag, "TransportError")
        assert.include(layer.reason, "invalid cluster name")
      }),
    20_000
  )

  it.live(
    "with traceHeader, an envelope with a span leaves alone with a traceparent; others carry none",
    () =>
      Effect.gen(function* () {
        const server = yield* NatsServer.start()
        const { transport } = yield* Kit.build({
          servers: server.url,
          name: "trace",
          cluster: "trace",
          localDelivery: false,
          traceHeader: true
        })
        const raw = yield* Kit.rawClient(server.url)
        const seen = yield* Queue.unbounded<string>()
        raw.subscribe("synod.trace.leader.l1", {
          callback: (_err, msg) => {
            Queue.offerUnsafe(seen, msg.headers?.get(Trace.header) ?? "<none>")
          }
        })
        yield* Effect.promise(() => raw.flush())
        const mailbox = yield* transport.listen("leader/l1")

        // a span attached: its ids, in W3C form, on the wire and on the delivered envelope
        const span = Tracer.externalSpan({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331" })
        const traced = Kit.ping("replica/r9", "leader/l1", 1)
        Trace.attach(traced, span)
        yield* transport.send("leader/l1", traced)
        const first = yield* Kit.takeWithin(mailbox)
        assert.strictEqual(yield* Queue.take(seen), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        const got = Trace.of(first!)
        assert.strictEqual(got?.traceId, span.traceId)
        assert.strictEqual(got?.spanId, span.spanId)

        // no span: no header, no trace
        yield* transport.send("leader/l1", Kit.ping("replica/r9", "leader/l1", 2))
        const second = yield* Kit.takeWithin(mailbox)
        assert.strictEqual(yield* Queue.take(seen), "<none>")
        assert.isUndefined(Trace.of(second!))

        // an invalid header is ignored
        const h = headers()
        h.set(Trace.header, "00-00000000000000000000000000000000-b7ad6b7169203331-01")
        raw.publish("synod.trace.leader.l1", JSON.stringify(Kit.ping("replica/raw", "leader/l1", 3)), { headers: h })
        const third = yield* Kit.takeWithin(mailbox)
        assert.strictEqual(Kit.seqOf(third), 3)
        assert.isUndefined(Trace.of(third!))
      }),
    20_000
  )

  it.live(
    "with traceHeader, envelopes coalesced into one message keep their own spans, in synod-traceparent",
    () =>
      Effect.gen(function* () {
        const server = yield* NatsServer.start()
        const { transport } = yield* Kit.build({
          servers: server.url,
          name: "traces",
          cluster: "traces",
          localDelivery: false,
          traceHeader: true
        })
        const raw = yield* Kit.rawClient(server.url)
        const seen = yield* Queue.unbounded<string>()
        raw.subscribe("synod.traces.leader.l1", {
          callback: (_err, msg) => {
            Queue.offerUnsafe(
              seen,
              `${msg.headers?.get(Trace.header)}|${msg.headers?.get(NatsTransport.traceBatchHeader)}`
            )
          }
        })
        yield* Effect.promise(() => raw.flush())
        const mailbox = yield* transport.listen("leader/l1")
        const a = Tracer.externalSpan({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331" })
        const b = Tracer.externalSpan({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" })
        const sent = [1, 2, 3].map((seq) => Kit.ping("replica/r9", "leader/l1", seq))
        Trace.attach(sent[0]!, a)
        Trace.attach(sent[2]!, b)
        // one run of the fiber: one NATS message
        for (const e of sent) yield* transport.send("leader/l1", e)
        const got = [yield* Kit.takeWithin(mailbox), yield* Kit.takeWithin(mailbox), yield* Kit.takeWithin(mailbox)]
        assert.deepStrictEqual(
          got.map((e) => Kit.seqOf(e)),
          [1, 2, 3]
        )
        assert.strictEqual(yield* Queue.take(seen), `|0=${Trace.format(a)},2=${Trace.format(b)}`)
        assert.strictEqual(Trace.of(got[0]!)?.spanId, a.spanId)
        assert.isUndefined(Trace.of(got[1]!))
        assert.strictEqual(Trace.of(got[2]!)?.spanId, b.spanId)

        // entries that are not an index and a traceparent are ignored, the others kept
        const h = headers()
        h.set(NatsTransport.traceBatchHeader, `x=${Trace.format(a)},1=garbage,1=${Trace.format(b)}`)
        raw.publish(
          "synod.traces.leader.l1",
          JSON.stringify([Kit.ping("replica/raw", "leader/l1", 4), Kit.ping("replica/raw", "leader/l1", 5)]),
          { headers: h }
        )
        const four = yield* Kit.takeWithin(mailbox)
        const five = yield* Kit.takeWithin(mailbox)
        assert.isUndefined(Trace.of(four!))
        assert.strictEqual(Trace.of(five!)?.spanId, b.spanId)
      }),
    20_000
  )

  it.live(
    "off (the default), an envelope with a span attached carries no header and is coalesced",
    () =>
      Effect.gen(function* () {
        const server = yield* NatsServer.start()
        const { transport } = yield* Kit.build({
          servers: server.url,
          name: "notrace",
          cluster: "notrace",
          localDelivery: false
        })
        const raw = yield* Kit.rawClient(server.url)
        const seen = yield* Queue.unbounded<string>()
        raw.subscribe("synod.notrace.leader.l1", {
          callback: (_err, msg) => {
            Queue.offerUnsafe(seen, msg.headers?.get(Trace.header) ?? "<none>")
          }
        })
        yield* Effect.promise(() => raw.flush())
        const mailbox = yield* transport.listen("leader/l1")
        const traced = Kit.ping("replica/r9", "leader/l1", 1)
        Trace.attach(
          traced,
          Tracer.externalSpan({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331" })
        )
        yield* transport.send("leader/l1", traced)
        yield* transport.send("leader/l1", Kit.ping("replica/r9", "leader/l1", 2))
        const first = yield* Kit.takeWithin(mailbox)
        yield* Kit.takeWithin(mailbox)
        assert.isUndefined(Trace.of(first!))
        // one NATS message for both, with no header
        assert.strictEqual(yield* Queue.take(seen), "<none>")
        assert.strictEqual(yield* Queue.size(seen), 0)
      }),
    20_000
  )
})

describe("coalescing", () => {
  it.live(
    "envelopes sent to one address in one run leave as one message, within max_payload, and arrive in order",
    () =>
      Effect.gen(function* () {
        const server = yield* NatsServer.start()
        const { transport, stats } = yield* Kit.build({
          servers: server.url,
          name: "co",
          cluster: "co",
          localDelivery: false
        })
        const raw = yield* Kit.rawClient(server.url)
        const sizes: Array<number> = []
        raw.subscribe("synod.co.leader.l1", { callback: (_err, msg) => void sizes.push(msg.data.length) })
        yield* Effect.promise(() => raw.flush())
        const mailbox = yield* transport.listen("leader/l1")
        // 40 envelopes of about 40 KiB in one synchronous run: more than one NATS message can carry
        const big = "x".repeat(40 * 1024)
        yield* Effect.forEach(
          Array.from({ length: 40 }, (_, i) => i + 1),
          (i) => transport.send("leader/l1", Kit.ping("replica/r1", "leader/l1", i, big)),
          { discard: true }
        )
        const seqs: Array<number> = []
        for (let i = 0; i < 40; i++) seqs.push(Kit.seqOf(yield* Kit.takeWithin(mailbox)))
        assert.deepStrictEqual(
          seqs,
          Array.from({ length: 40 }, (_, i) => i + 1)
        )
        // every byte of the 40 envelopes, however the sender split them
        yield* Kit.eventually(
          "the raw subscriber saw every message",
          Effect.sync(() => sizes.reduce((sum, n) => sum + n, 0) >= 40 * big.length)
        )
        assert.isAbove(sizes.length, 1, "split: 1.6 MiB does not fit one message")
        assert.isBelow(sizes.length, 40, "coalesced: fewer messages than envelopes")
        for (const size of sizes) assert.isAtMost(size, transport.maxMessageBytes)
        assert.strictEqual((yield* stats.snapshot).published, 40)
      }),
    20_000
  )

  it.live(
    "flush hands what was sent, coalesced, to the socket at once: before a write that blocks the event loop",
    () =>
      Effect.gen(function* () {
        const server = yield* NatsServer.start()
        const { transport, stats, connection } = yield* Kit.build({
          servers: server.url,
          name: "fl",
          cluster: "fl",
          localDelivery: false
        })
        const raw = yield* Kit.rawClient(server.url)
        const sizes: Array<number> = []
        raw.subscribe("synod.fl.leader.l1", { callback: (_err, msg) => void sizes.push(msg.data.length) })
        yield* Effect.promise(() => raw.flush())
        const mailbox = yield* transport.listen("leader/l1")
        assert.isFunction(transport.flush, "the NATS transport can flush")
        // the client's own write buffer, which `flush` must empty (see NatsTransport's `writeNow`)
        const outbound = (connection.client as unknown as { protocol: { outbound: { size(): number } } }).protocol
          .outbound
        // three envelopes and the flush in one synchronous run: nothing in between may yield
        const published = yield* Effect.sync(() => {
          for (let i = 1; i <= 3; i++)
            Effect.runSync(transport.send("leader/l1", Kit.ping("replica/r1", "leader/l1", i)))
          const before = Effect.runSync(stats.snapshot).published
          transport.flush!()
          return { before, after: Effect.runSync(stats.snapshot).published, buffered: outbound.size() }
        })
        assert.strictEqual(published.before, 0, "sends wait for the end of the task")
        assert.strictEqual(published.after, 3, "flush publishes them")
        assert.strictEqual(published.buffered, 0, "and the client's buffer went to the socket")
        const seqs: Array<number> = []
        for (let i = 0; i < 3; i++) seqs.push(Kit.seqOf(yield* Kit.takeWithin(mailbox)))
        assert.deepStrictEqual(seqs, [1, 2, 3])
        yield* Kit.eventually(
          "the raw subscriber saw them",
          Effect.sync(() => sizes.length > 0)
        )
        assert.strictEqual(sizes.length, 1, "still one message: flushing does not undo the coalescing")
      }),
    20_000
  )

  it.live(
    "requests sent in one event-loop turn from separate callbacks leave as one message; protocol messages at the end of each microtask",
    () =>
      Effect.gen(function* () {
        const server = yield* NatsServer.start()
        const { transport } = yield* Kit.build({
          servers: server.url,
          name: "turn",
          cluster: "turn",
          localDelivery: false
        })
        const raw = yield* Kit.rawClient(server.url)
        const counts = { req: 0, proto: 0 }
        raw.subscribe("synod.turn.req.r1.alice", { callback: () => void counts.req++ })
        raw.subscribe("synod.turn.leader.l1", { callback: () => void counts.proto++ })
        yield* Effect.promise(() => raw.flush())
        const replica = yield* transport.listen("replica/r1")
        const leader = yield* transport.listen("leader/l1")
        // five callbacks of one turn, as five HTTP connections' requests arrive (each an
        // I/O callback, with a microtask checkpoint after it): one sends a request each,
        // then five more a protocol message each
        const callbacks = (send: (i: number) => Effect.Effect<void>) =>
          Effect.promise(
            () =>
              new Promise<void>((done) => {
                for (let i = 1; i <= 5; i++)
                  setImmediate(() => {
                    Effect.runSync(send(i))
                    if (i === 5) setImmediate(done)
                  })
              })
          )
        yield* callbacks((i) => transport.send("replica/r1", Kit.request("alice.x", "replica/r1", i)))
        yield* callbacks((i) => transport.send("leader/l1", Kit.ping("replica/r1", "leader/l1", i)))
        const requests: Array<number> = []
        const pings: Array<number> = []
        for (let i = 0; i < 5; i++) requests.push(Kit.seqOf(yield* Kit.takeWithin(replica)))
        for (let i = 0; i < 5; i++) pings.push(Kit.seqOf(yield* Kit.takeWithin(leader)))
        assert.deepStrictEqual(requests, [1, 2, 3, 4, 5])
        assert.deepStrictEqual(pings, [1, 2, 3, 4, 5])
        yield* Kit.eventually(
          "the raw subscriber saw every protocol message",
          Effect.sync(() => counts.proto === 5)
        )
        assert.strictEqual(counts.req, 1, `the requests of one turn leave as one message: ${counts.req}`)
      }),
    20_000
  )

  it.live(
    "an array with one bad envelope delivers the others and counts the bad one",
    () =>
      Effect.gen(function* () {
        const server = yield* NatsServer.start()
        const { transport, stats } = yield* Kit.build({
          servers: server.url,
          name: "arr",
          cluster: "arr",
          localDelivery: false
        })
        const raw = yield* Kit.rawClient(server.url)
        const mailbox = yield* transport.listen("leader/l1")
        const good = (seq: number) => JSON.stringify(Kit.ping("replica/r1", "leader/l1", seq))
        raw.publish("synod.arr.leader.l1", `[${good(1)},{"from":"nobody"},${good(3)}]`)
        raw.publish("synod.arr.leader.l1", "[1,2")
        assert.strictEqual(Kit.seqOf(yield* Kit.takeWithin(mailbox)), 1)
        assert.strictEqual(Kit.seqOf(yield* Kit.takeWithin(mailbox)), 3)
        yield* Kit.eventually(
          "both bad payloads counted",
          Effect.map(stats.snapshot, (s) => s.decodeErrors === 2)
        )
      }),
    20_000
  )

  it.live(
    "subjects by trust: requests and responses only on client subjects, protocol only on protocol subjects; the rest refused, counted and logged",
    () =>
      capturingLogs((lines) =>
        Effect.gen(function* () {
          const server = yield* NatsServer.start()
          const { transport, stats } = yield* Kit.build({
            servers: server.url,
            name: "trust",
            cluster: "trust",
            localDelivery: false
          })
          const raw = yield* Kit.rawClient(server.url)
          const replica = yield* transport.listen("replica/r1")
          const client = yield* transport.listen("client/alice.x")
          const json = (e: unknown) => JSON.stringify(e)
          const req = "synod.trust.req.r1.alice"
          const proto = "synod.trust.replica.r1"
          const inbox = "synod.trust.client.alice.x"
          // refused: a protocol message on the request subject, another scope's request, a
          // request on the protocol subject, a protocol message and a request on a client's subject
          raw.publish(req, json(Kit.ping("leader/s1", "replica/r1", 1)))
          raw.publish(req, json(Kit.request("bob.y", "replica/r1", 2)))
          raw.publish(proto, json(Kit.request("alice.x", "replica/r1", 3)))
          raw.publish(inbox, json(Kit.ping("replica/r1", "client/alice.x", 4)))
          raw.publish(inbox, json(Kit.request("alice.x", "replica/r1", 5)))
          // delivered: a request of its scope, a protocol message on the protocol subject, a response
          raw.publish(req, json(Kit.request("alice.x", "replica/r1", 6)))
          raw.publish(proto, json(Kit.ping("leader/s1", "replica/r1", 7)))
          raw.publish(inbox, json(Kit.response("client/alice.x", 8)))
          yield* Effect.promise(() => raw.flush())
          // and through the transport: a Request goes to the request subject, a Response to the client
          yield* transport.send("replica/r1", Kit.request("alice.x", "replica/r1", 9))
          yield* transport.send("client/alice.x", Kit.response("client/alice.x", 10))

          const got = [
            Kit.seqOf(yield* Kit.takeWithin(replica)),
            Kit.seqOf(yield* Kit.takeWithin(replica)),
            Kit.seqOf(yield* Kit.takeWithin(replica))
          ].sort((a, b) => a - b)
          assert.deepStrictEqual(got, [6, 7, 9])
          assert.strictEqual(Kit.seqOf(yield* Kit.takeWithin(client)), 8)
          assert.strictEqual(Kit.seqOf(yield* Kit.takeWithin(client)), 10)
          yield* Kit.eventually(
            "five refusals counted",
            Effect.map(stats.snapshot, (s) => s.refused === 5)
          )
          assert.strictEqual(Queue.sizeUnsafe(replica) + Queue.sizeUnsafe(client), 0)
          const refused = lines
            .filter((l) => l[0] === "refusing a message")
            .map((l) => l[1] as { subject: string; reason: string })
          assert.deepStrictEqual(
            refused.map((r) => r.subject),
            [req, req, proto, inbox, inbox]
          )
          assert.include(refused[0]!.reason, "a Propose on a request subject")
          assert.include(refused[1]!.reason, '"bob.y"')
          assert.include(refused[2]!.reason, "a Request on a protocol subject")
        })
      ),
    20_000
  )
})

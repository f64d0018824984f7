/**
 * Tracing in the roles (`@synod/core/Trace`): off, no role starts a span or attaches one to
 * a message; on, each command's trace goes from the client's span through the replica's
 * proposal, the commander, every acceptor's accept and fsync, the decision and every
 * replica's perform — and a proposal of a batch is a child of one command's trace, linked
 * to the others'.
 */
import { assert, describe, it } from "@effect/vitest"
import { ClusterConfig, InMemoryBus, type Message, Storage, Trace, Transport } from "@synod/core"
import { Kv } from "@synod/kv"
import { Effect, Layer, Option, Tracer } from "effect"
import { Client, Server } from "@synod/actors"

const config = ClusterConfig.servers(3)

/** A tracer that keeps every span it starts. */
const recording = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span(options) {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}

/** Every envelope sent, to look at what is attached to it. */
const watching = (sent: Array<Message.Envelope>) =>
  Layer.effect(
    Transport.Transport,
    Effect.map(Transport.Transport, (t) =>
      Transport.Transport.of({
        ...t,
        send: (to, envelope) =>
          Effect.andThen(
            Effect.sync(() => sent.push(envelope)),
            t.send(to, envelope)
          )
      })
    )
  )

// envelopes handed over as they are, as in `synod up` (the attachment travels with them)
const cluster = (sent: Array<Message.Envelope>) =>
  Server.layerCluster(config, Kv.machine).pipe(
    Layer.provideMerge(Storage.layerMemory()),
    Layer.provideMerge(watching(sent).pipe(Layer.provideMerge(InMemoryBus.layer({ encode: false }))))
  )

const puts = (client: Client.Client<Kv.Command, Kv.Result>, n: number) =>
  Effect.forEach(
    Array.from({ length: n }, (_, i) => i),
    (i) => client.submit({ _tag: "Put", key: `k${i}`, value: "v" }),
    { concurrency: "unbounded" }
  )

const parentOf = (span: Tracer.Span): Tracer.AnySpan | undefined => Option.getOrUndefined(span.parent)

describe("tracing in the roles", () => {
  it.live(
    "off (the default): no role starts a span and no message carries one",
    () => {
      const { spans, tracer } = recording()
      const sent: Array<Message.Envelope> = []
      return Effect.gen(function* () {
        const client = yield* Client.make(Kv.machine, config)
        yield* puts(client, 20)
        assert.isAbove(sent.length, 0)
        assert.deepStrictEqual(
          spans.filter((s) => s.name.startsWith("synod.")).map((s) => s.name),
          []
        )
        assert.isTrue(sent.every((e) => Trace.of(e) === undefined))
      }).pipe(Effect.provide(cluster(sent)), Effect.provideService(Tracer.Tracer, tracer))
    },
    20_000
  )

  it.live(
    "on: every command's trace reaches the commander, each accept and fsync, the decision and each perform",
    () => {
      const { spans, tracer } = recording()
      const sent: Array<Message.Envelope> = []
      return Effect.gen(function* () {
        const client = yield* Client.make(Kv.machine, config)
        // concurrent commands: some share a slot
        yield* puts(client, 20)
        // a replica answers before its perform span ends, and other replicas may not have
        // performed yet: wait (a bounded while) until every span of the roles ended
        for (let i = 0; i < 200 && spans.some((s) => s.name.startsWith("synod.") && s.status._tag !== "Ended"); i++)
          yield* Effect.sleep("10 millis")
        const named = (name: string) => spans.filter((s) => s.name === name)
        const byId = new Map<string, Tracer.Span>(spans.map((s) => [s.spanId, s]))
        const parentNamed = (s: Tracer.Span) => byId.get(parentOf(s)?.spanId ?? "")?.name
        const clients = named("synod.client")
        assert.strictEqual(clients.length, 20)
        // each command: in the trace of exactly one proposal, as its parent or by a link
        const proposals = named("synod.propose")
        for (const c of clients) {
          const reached = proposals.filter(
            (p) => parentOf(p)?.spanId === c.spanId || p.links.some((l) => l.span.spanId === c.spanId)
          )
          assert.isAtLeast(reached.length, 1, `command ${c.attributes.get("synod.seq")} reached no proposal`)
        }
        for (const p of proposals) {
          assert.strictEqual(parentNamed(p), "synod.client")
          assert.strictEqual(p.links.length + 1, p.attributes.get("synod.commands"))
        }
        assert.isTrue(
          proposals.some((p) => p.links.length > 0),
          "no batch of more than one command: the links are untested"
        )
        for (const c of named("synod.commander")) assert.strictEqual(parentNamed(c), "synod.propose")
        for (const a of named("synod.accept")) assert.strictEqual(parentNamed(a), "synod.commander")
        for (const p of named("synod.persist")) assert.strictEqual(parentNamed(p), "synod.accept")
        for (const d of named("synod.decision")) assert.strictEqual(parentNamed(d), "synod.commander")
        for (const p of named("synod.perform")) assert.strictEqual(parentNamed(p), "synod.decision")
        // every decided slot: accepted by the acceptors, performed by the replicas
        const decisions = named("synod.decision")
        assert.isAbove(decisions.length, 0)
        for (const d of decisions) {
          const commander = byId.get(parentOf(d)!.spanId)!
          const accepts = named("synod.accept").filter((a) => parentOf(a)?.spanId === commander.spanId)
          assert.isAtLeast(new Set(accepts.map((a) => a.attributes.get("synod.acceptor"))).size, 2)
          const performs = named("synod.perform").filter((p) => parentOf(p)?.spanId === d.spanId)
          assert.isAtLeast(performs.length, 1)
        }
        // every span of the roles ended
        for (const s of spans.filter((s) => s.name.startsWith("synod.")))
          assert.strictEqual(s.status._tag, "Ended", s.name)
        // heartbeats and the like carry no span
        assert.isTrue(sent.filter((e) => e.message._tag === "Heartbeat").every((e) => Trace.of(e) === undefined))
      }).pipe(
        Effect.provide(cluster(sent)),
        Effect.provideService(Tracer.Tracer, tracer),
        Effect.provideService(Trace.Enabled, true)
      )
    },
    20_000
  )
})

describe("traceparent", () => {
  it("formats a span and parses it back; invalid values are refused", () => {
    const span = Tracer.externalSpan({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" })
    const text = Trace.format(span)
    assert.strictEqual(text, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    const back = Trace.parse(text)!
    assert.strictEqual(back.traceId, span.traceId)
    assert.strictEqual(back.spanId, span.spanId)
    assert.isTrue(back.sampled)
    assert.isFalse(Trace.parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")!.sampled)
    // a later version may add fields
    assert.isDefined(Trace.parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"))
    for (const bad of [
      "",
      "garbage",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
      `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-${"x".repeat(300)}`
    ])
      assert.isUndefined(Trace.parse(bad), bad)
  })

  it("Recent forgets its oldest entries beyond its capacity", () => {
    const evicted: Array<string> = []
    const recent = new Trace.Recent<number, string>(2, (v) => evicted.push(v))
    recent.set(1, "a")
    recent.set(2, "b")
    recent.set(1, "a2") // refreshed: now the newest
    recent.set(3, "c")
    assert.deepStrictEqual(evicted, ["b"])
    assert.strictEqual(recent.get(1), "a2")
    assert.strictEqual(recent.take(3), "c")
    assert.isUndefined(recent.get(3))
  })
})

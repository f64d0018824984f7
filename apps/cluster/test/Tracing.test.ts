/**
 * OTLP tracing: off without an endpoint; with one, a small in-process OTLP/HTTP (JSON)
 * receiver gets the spans. A PUT to `synod up` is one trace from the HTTP request down to
 * the acceptors; a PUT through three `synod serve` processes over NATS is one connected
 * trace whose spans come from more than one process: the trace context crossed the
 * processes in the messages' `traceparent` headers.
 */
import { createServer, type IncomingMessage } from "node:http"
import type { AddressInfo } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import * as Tracing from "@synod/cluster/Tracing"
import { Effect, Result } from "effect"
import * as Serve from "@synod/cluster/Serve"
import { daemon, http } from "./Process.ts"
import * as ServeCluster from "./ServeCluster.ts"

interface Attribute {
  readonly key: string
  readonly value: Record<string, unknown>
}

interface Span {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly attributes: ReadonlyArray<Attribute>
  readonly links?: ReadonlyArray<{ readonly traceId: string; readonly spanId: string }>
  /** Added by the receiver: the exporting process's `service.instance.id`. */
  instance?: string
}

const body = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let text = ""
    req.on("data", (d: Buffer) => {
      text += d.toString()
    })
    req.on("end", () => resolve(text))
    req.on("error", reject)
  })

const stringAttribute = (attributes: ReadonlyArray<Attribute>, key: string): string | undefined => {
  const v = attributes.find((a) => a.key === key)?.value.stringValue
  return typeof v === "string" ? v : undefined
}

/** An OTLP/HTTP JSON receiver on a free port for the lifetime of the scope: the spans it got, and the service names. */
const receiver = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ url: string; spans: Array<Span>; services: Set<string>; close: () => void }>((resolve) => {
        const spans: Array<Span> = []
        const services = new Set<string>()
        const server = createServer((req, res) => {
          void body(req).then((text) => {
            if (req.method === "POST" && req.url === "/v1/traces") {
              const json = JSON.parse(text) as {
                resourceSpans: Array<{
                  resource: { attributes: ReadonlyArray<Attribute> }
                  scopeSpans: Array<{ spans: Array<Span> }>
                }>
              }
              for (const rs of json.resourceSpans) {
                const name = stringAttribute(rs.resource.attributes, "service.name")
                if (name !== undefined) services.add(name)
                const instance = stringAttribute(rs.resource.attributes, "service.instance.id")
                for (const ss of rs.scopeSpans)
                  for (const span of ss.spans) spans.push(instance === undefined ? span : { ...span, instance })
              }
            }
            res.writeHead(200, { "content-type": "application/json" }).end("{}")
          })
        })
        server.listen(0, "127.0.0.1", () =>
          resolve({
            url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
            spans,
            services,
            close: () => server.close()
          })
        )
      })
  ),
  (r) => Effect.sync(r.close)
)

/** The spans of one command's trace, from its HTTP request (`PUT /kv/<key>`) on. */
const traceOf = (spans: ReadonlyArray<Span>, key: string): Array<Span> => {
  const request = spans.find(
    (s) => s.name === "PUT /kv/{key}" && stringAttribute(s.attributes, "url.path") === `/kv/${key}`
  )
  return request === undefined ? [] : spans.filter((s) => s.traceId === request.traceId)
}

/**
 * Why `trace` is not yet one connected trace with every span a command goes through
 * (`undefined`: it is): one root, every other span's parent in the trace.
 */
const incomplete = (trace: ReadonlyArray<Span>, names: ReadonlyArray<string>): string | undefined => {
  if (trace.length === 0) return "no trace"
  const missing = names.filter((n) => !trace.some((s) => s.name === n))
  if (missing.length > 0) return `missing ${missing.join(", ")}`
  const ids = new Set(trace.map((s) => s.spanId))
  const roots = trace.filter((s) => s.parentSpanId === undefined || s.parentSpanId === "")
  if (roots.length !== 1) return `${roots.length} roots: ${roots.map((s) => s.name).join(", ")}`
  const orphans = trace.filter((s) => s !== roots[0] && !ids.has(s.parentSpanId!))
  if (orphans.length > 0) return `parents not in the trace: ${orphans.map((s) => s.name).join(", ")}`
  return undefined
}

/**
 * Waits (up to 60 s: the exporters send every second, but a loaded machine delays them)
 * until `check` answers `undefined`; fails with its last answer.
 */
const until = (check: () => string | undefined) =>
  Effect.gen(function* () {
    let last: string | undefined = "not checked"
    for (let i = 0; i < 600; i++) {
      last = check()
      if (last === undefined) return
      yield* Effect.sleep("100 millis")
    }
    return assert.fail(`the trace never completed: ${last}`)
  })

const names = [
  "PUT /kv/{key}",
  "synod.submit",
  "synod.client",
  "synod.propose",
  "synod.commander",
  "synod.accept",
  "synod.persist",
  "synod.decision",
  "synod.perform"
]

const show = (trace: ReadonlyArray<Span>) =>
  trace.map((s) => `${s.name}@${s.instance} ${s.spanId}<-${s.parentSpanId}`).join("\n")

describe("tracing", () => {
  it("the endpoint comes from the environment, then the config file; none means off", () => {
    assert.isUndefined(Tracing.endpoint({}))
    assert.isUndefined(Tracing.endpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: " " }))
    assert.strictEqual(Tracing.endpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318/" }), "http://c:4318/v1/traces")
    assert.strictEqual(
      Tracing.endpoint({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://t/x"
      }),
      "http://t/x"
    )
    assert.strictEqual(Tracing.endpoint({}, { endpoint: "http://f:4318" }), "http://f:4318/v1/traces")
    assert.strictEqual(
      Tracing.endpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }, { endpoint: "http://f:4318" }),
      "http://c:4318/v1/traces"
    )
  })

  it("the config file's tracing section is checked", () => {
    const config = {
      name: "t",
      node: "s1",
      cluster: { acceptors: ["s1"], leaders: ["s1"], replicas: ["s1"] },
      transport: { kind: "nats", servers: ["nats://127.0.0.1:4222"] },
      dataDir: "/tmp/unused"
    }
    const good = Serve.decode({ ...config, tracing: { endpoint: "http://127.0.0.1:4318" } })
    assert.isTrue(Result.isSuccess(good))
    assert.deepStrictEqual(Result.getOrThrow(good).tracing, { endpoint: "http://127.0.0.1:4318" })
    const bad = Serve.decode({ ...config, tracing: { endpoint: "collector:4318" } })
    assert.isTrue(Result.isFailure(bad))
    assert.include(Result.isFailure(bad) ? bad.failure.message : "", "tracing.endpoint is an http:// or https:// URL")
  })

  it.live(
    "a PUT to synod up is one connected trace at the collector, from the HTTP request to the acceptors' fsync",
    () =>
      Effect.gen(function* () {
        const collector = yield* receiver
        const proc = yield* daemon(["up", "--port", "0"], {
          OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
          OTEL_SERVICE_NAME: "synod-test"
        })
        const url = yield* proc.waitFor(/HTTP API on (http:\/\/\S+)/)
        assert.strictEqual((yield* http("PUT", `${url}/kv/traced`, { value: "x" })).status, 200)
        yield* until(() => incomplete(traceOf(collector.spans, "traced"), names))
        const trace = traceOf(collector.spans, "traced")
        const request = trace.find((s) => s.name === "PUT /kv/{key}")!
        const submit = trace.find((s) => s.name === "synod.submit")!
        assert.strictEqual(submit.parentSpanId, request.spanId)
        assert.strictEqual(stringAttribute(submit.attributes, "synod.command"), "Put")
        assert.isTrue(collector.services.has("synod-test"))
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "a PUT through three synod serve processes over NATS is one connected trace, with spans from several processes",
    () =>
      Effect.gen(function* () {
        const collector = yield* receiver
        yield* ServeCluster.run({ name: "traced", tracing: { endpoint: collector.url } }, (cluster) =>
          Effect.gen(function* () {
            // a first write makes every acceptor promise the leader's ballot (one that started
            // after the leader's phase 1 had its majority has not heard it yet): then it is settled
            assert.strictEqual((yield* http("PUT", `${cluster.members[0]!.url}/kv/first`, { value: "x" })).status, 200)
            const leader = yield* ServeCluster.leader(cluster)
            // through a follower: its replica proposes to the leader in another process
            const follower = cluster.members.find((m) => m !== leader)!
            assert.strictEqual((yield* http("PUT", `${follower.url}/kv/across`, { value: "x" })).status, 200)
            yield* until(() => {
              const trace = traceOf(collector.spans, "across")
              return (
                incomplete(trace, names) ??
                (trace.filter((s) => s.name === "synod.accept").length >= 2 ? undefined : "fewer than 2 accepts")
              )
            })
            const trace = traceOf(collector.spans, "across")
            const instances = new Set(trace.map((s) => s.instance))
            assert.isAtLeast(instances.size, 2, show(trace))
            for (const i of instances) assert.include(["s1", "s2", "s3"], i)
            const one = (name: string) => trace.find((s) => s.name === name)!
            const at = (name: string) => new Set(trace.filter((s) => s.name === name).map((s) => s.instance))
            // the request and the client in the follower's process, the commander in the leader's
            // (the client's first replica is the first configured one: not always its own)
            assert.strictEqual(one("PUT /kv/{key}").instance, follower.node, show(trace))
            assert.strictEqual(one("synod.client").instance, follower.node, show(trace))
            assert.strictEqual(one("synod.commander").instance, leader.node, show(trace))
            // each accept is a child of the commander, and each fsync of an accept
            const commander = one("synod.commander")
            for (const a of trace.filter((s) => s.name === "synod.accept"))
              assert.strictEqual(a.parentSpanId, commander.spanId)
            const accepts = new Set(trace.filter((s) => s.name === "synod.accept").map((s) => s.spanId))
            for (const p of trace.filter((s) => s.name === "synod.persist")) assert.isTrue(accepts.has(p.parentSpanId!))
            assert.isAtLeast(at("synod.accept").size, 2, show(trace))
          })
        )
      }).pipe(Effect.scoped),
    180_000
  )
})

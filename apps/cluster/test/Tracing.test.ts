/**
 * OTLP tracing: off without an endpoint; with `OTEL_EXPORTER_OTLP_ENDPOINT`, a PUT to
 * `synod up` arrives at a small in-process OTLP/HTTP receiver as one trace: the request's
 * span (`PUT /kv/{key}`) with the command's (`synod.submit`) as its child.
 */
import { createServer, type IncomingMessage } from "node:http"
import type { AddressInfo } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import * as Tracing from "@synod/cluster/Tracing"
import { Effect } from "effect"
import { daemon, http } from "./Process.ts"

interface Span {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }>
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

/** An OTLP/HTTP JSON receiver on a free port for the lifetime of the scope: the spans it got, and the service names. */
const receiver = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ url: string; spans: Array<Span>; services: Set<string>; close: () => void }>((resolve) => {
        const spans: Array<Span> = []
        const services = new Set<string>()
        const server = createServer((req, res) => {
          void body(req).then((text) => {
            if (req.url === "/v1/traces") {
              const json = JSON.parse(text) as {
                resourceSpans: Array<{
                  resource: { attributes: Span["attributes"] }
                  scopeSpans: Array<{ spans: Array<Span> }>
                }>
              }
              for (const rs of json.resourceSpans) {
                const name = rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue
                if (typeof name === "string") services.add(name)
                for (const ss of rs.scopeSpans) spans.push(...ss.spans)
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

describe("tracing", () => {
  it("the endpoint comes from the environment; none means off", () => {
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
  })

  it.live(
    "a PUT to synod up is one trace at the collector: the request's span, the command's as its child",
    () =>
      Effect.gen(function* () {
        const collector = yield* receiver
        const proc = yield* daemon(["up", "--port", "0"], {
          OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
          OTEL_SERVICE_NAME: "synod-test"
        })
        const url = yield* proc.waitFor(/HTTP API on (http:\/\/\S+)/)
        assert.strictEqual((yield* http("PUT", `${url}/kv/traced`, { value: "x" })).status, 200)
        // the exporter sends every second, and flushes as the process stops
        assert.strictEqual(yield* proc.signal("SIGTERM"), 0)
        const request = collector.spans.find((s) => s.name === "PUT /kv/{key}")
        assert.isDefined(request, `spans: ${collector.spans.map((s) => s.name).join(", ")}`)
        const submit = collector.spans.find((s) => s.name === "synod.submit" && s.traceId === request!.traceId)
        assert.isDefined(submit, "the command's span in the request's trace")
        assert.strictEqual(submit!.parentSpanId, request!.spanId)
        assert.deepStrictEqual(submit!.attributes.find((a) => a.key === "synod.command")?.value, { stringValue: "Put" })
        assert.isTrue(collector.services.has("synod-test"))
      }).pipe(Effect.scoped),
    60_000
  )
})

/**
 * Traces over OTLP/HTTP (JSON), through effect's own exporter (`effect/observability`'s
 * `OtlpTracer`): on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (with `/v1/traces` appended), names a collector; off, and
 * free, otherwise (effect's built-in tracer has no backend, and the HTTP server skips its
 * spans). Each HTTP request is a span named by its method and route (`PUT /kv/{key}`),
 * with the command it submitted as a child (`synod.submit`; a read by read index:
 * `synod.read`). The service is named by
 * `OTEL_SERVICE_NAME` (default: `synod`).
 *
 * The trace ends at the process's client: the roles do not carry it across messages.
 *
 * @since 0.2.0
 */
import { Layer } from "effect"
import { FetchHttpClient, HttpMiddleware } from "effect/http"
import { OtlpSerialization, OtlpTracer } from "effect/observability"
import { routeOf } from "./HttpMetrics.ts"
import { version } from "./Version.ts"

/** The collector's traces URL the environment names, if any. */
export const endpoint = (env: Record<string, string | undefined>): string | undefined => {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim()
  if (traces) return traces
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()
  return base ? `${base.replace(/\/+$/, "")}/v1/traces` : undefined
}

/**
 * The tracer the environment asks for, or nothing. It sets references (the tracer, span
 * names), which types do not show, and no service anyone requires: hence `never`.
 */
export const layer = (env: Record<string, string | undefined>): Layer.Layer<never> => {
  const url = endpoint(env)
  if (url === undefined) return Layer.empty
  const route = routeOf()
  return Layer.mergeAll(
    OtlpTracer.layer({
      url,
      resource: { serviceName: env.OTEL_SERVICE_NAME?.trim() || "synod", serviceVersion: version },
      exportInterval: "1 second"
    }).pipe(Layer.provide(OtlpSerialization.layerJson), Layer.provide(FetchHttpClient.layer)),
    Layer.succeed(
      HttpMiddleware.SpanNameGenerator,
      (request) => `${request.method} ${route(request.method, request.url)}`
    )
  ) as Layer.Layer<never>
}

/**
 * Traces over OTLP/HTTP (JSON), through effect's own exporter (`effect/observability`'s
 * `OtlpTracer`): on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (with `/v1/traces` appended), names a collector — or, for
 * `synod serve`, the config file's `tracing.endpoint`; off otherwise.
 *
 * On, it provides `Trace.Enabled` (`@synod/core`), so the roles, the client and the NATS
 * transport trace each command across processes: the HTTP request's span (`PUT /kv/{key}`),
 * `synod.submit`, the client's `synod.client`, the replica's `synod.propose`, the leader's
 * `synod.commander`, each acceptor's `synod.accept` with its `synod.persist`, the
 * commander's `synod.decision` and each replica's `synod.perform` (docs in the README,
 * "Tracing"). Off, nothing is traced and nothing costs anything per message.
 *
 * The service is named by `OTEL_SERVICE_NAME` (default: `synod`), each process by
 * `service.instance.id` (the node id for `synod serve`).
 *
 * @since 0.2.0
 */
import { Trace } from "@synod/core"
import { Layer, Schema } from "effect"
import { FetchHttpClient, HttpMiddleware } from "effect/http"
import { OtlpSerialization, OtlpTracer } from "effect/observability"
import { routeOf } from "./HttpMetrics.ts"
import { version } from "./Version.ts"

/** The config file's `tracing` section (`synod serve`). */
export const Config = Schema.Struct({
  /** The collector's OTLP/HTTP base URL (`/v1/traces` is appended), like `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  endpoint: Schema.String.check(
    Schema.isPattern(/^https?:\/\/[^\s]{1,2040}$/, { message: "tracing.endpoint is an http:// or https:// URL" })
  ),
  /** The service name (default `synod`; `OTEL_SERVICE_NAME` overrides it). */
  serviceName: Schema.optionalKey(
    Schema.String.check(
      Schema.isPattern(/^[^\s]{1,128}$/, { message: "tracing.serviceName is 1-128 characters, no spaces" })
    )
  )
})
export type Config = typeof Config.Type

const traces = (base: string): string => `${base.replace(/\/+$/, "")}/v1/traces`

/** The collector's traces URL the environment (over the config file) names, if any. */
export const endpoint = (env: Record<string, string | undefined>, config?: Config): string | undefined => {
  const tracesUrl = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim()
  if (tracesUrl) return tracesUrl
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()
  if (base) return traces(base)
  return config === undefined ? undefined : traces(config.endpoint)
}

/**
 * The tracer the environment (or `config`) asks for, or nothing. It sets references (the
 * tracer, span names, `Trace.Enabled`), which types do not show, and no service anyone
 * requires: hence `never`. `instance` names this process (`service.instance.id`).
 */
export const layer = (
  env: Record<string, string | undefined>,
  options: { readonly instance?: string; readonly config?: Config | undefined } = {}
): Layer.Layer<never> => {
  const url = endpoint(env, options.config)
  if (url === undefined) return Layer.empty
  const route = routeOf()
  return Layer.mergeAll(
    OtlpTracer.layer({
      url,
      resource: {
        serviceName: env.OTEL_SERVICE_NAME?.trim() || options.config?.serviceName || "synod",
        serviceVersion: version,
        attributes: { "service.instance.id": options.instance ?? `synod-${process.pid}` }
      },
      exportInterval: "1 second"
    }).pipe(Layer.provide(OtlpSerialization.layerJson), Layer.provide(FetchHttpClient.layer)),
    Layer.succeed(
      HttpMiddleware.SpanNameGenerator,
      (request) => `${request.method} ${route(request.method, request.url)}`
    ),
    Layer.succeed(Trace.Enabled, true)
  ) as Layer.Layer<never>
}

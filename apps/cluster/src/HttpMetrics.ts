/**
 * Metrics of the HTTP API: requests by route, method and status, and their latency by
 * route and method, as effect `Metric`s (exported at `/metrics` with the roles' metrics).
 * The route is the endpoint's path pattern (`/kv/{key}`), never the URL itself, so the
 * number of series is bounded by the API's definition; a path no route matches counts as
 * `unmatched`. Each key-value request's latency also goes to the live dashboard.
 *
 * @since 0.2.0
 */
import { Cause, Effect, Exit, Metric } from "effect"
import { FindMyWay, HttpRouter, HttpServerRequest } from "effect/http"
import { HttpApi } from "effect/http-api"
import * as Api from "./Api.ts"
import { Dashboard } from "./Dashboard.ts"

export const requests = Metric.counter("synod_http_requests_total", {
  description: "HTTP requests answered, by route, method and status",
  incremental: true
})

export const duration = Metric.histogram("synod_http_request_duration_milliseconds", {
  description: "Time to answer an HTTP request (until the response starts), by route and method",
  boundaries: [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]
})

const methods = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])

/** The routes the process serves besides the `Api`'s. */
export const extraRoutes: ReadonlyArray<readonly [string, string]> = [
  ["GET", Api.openApiPath],
  ["GET", "/ui"],
  ["GET", "/ui/events"],
  ["GET", "/metrics"]
]

/** The API's routes, as `[method, pattern]`, OpenAPI-style (`/kv/{key}`). */
export const knownRoutes = (): ReadonlyArray<readonly [string, string]> => {
  const routes: Array<readonly [string, string]> = [...extraRoutes]
  HttpApi.reflect(Api.Api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => routes.push([endpoint.method, endpoint.path])
  })
  return routes
}

const label = (pattern: string): string => pattern.replace(/:([A-Za-z0-9_]+)/g, "{$1}")

/** A function from a request's method and URL to its route label. */
export const routeOf = (): ((method: string, url: string) => string) => {
  const router = FindMyWay.make<string>({ maxParamLength: 100_000 })
  for (const [method, path] of knownRoutes()) router.on(method as "GET", path as FindMyWay.PathInput, label(path))
  return (method, url) => {
    const found = router.find((method === "HEAD" ? "GET" : method) as "GET", url.split("?")[0]!)
    return found?.handler ?? "unmatched"
  }
}

/**
 * Every route's request counter (with status 200) and latency histogram, at 0, so each
 * family is exported before the first request (a dashboard can tell "none yet" from "not
 * running").
 */
export const start: Effect.Effect<void> = Effect.forEach(
  knownRoutes(),
  ([method, path]) =>
    Effect.andThen(
      Metric.update(Metric.withAttributes(requests, { route: label(path), method, status: "200" }), 0),
      // reading a metric registers it, without an observation
      Metric.value(Metric.withAttributes(duration, { route: label(path), method }))
    ),
  { discard: true }
)

/**
 * Counts and times one answered request (`route` as `routeOf` labels it); a key-value
 * request's latency also feeds the dashboard. It updates the metrics at once, in the
 * context it was made in: the fast path (`KvFastPath`) records through this, from outside
 * any fiber.
 */
export const recorderUnsafe = Effect.gen(function* () {
  const dashboard = yield* Dashboard
  const context = yield* Effect.context<never>()
  // one tagged metric per series, made once: tagging and keying a metric on every
  // request showed in profiles (series are bounded by routes × methods × statuses)
  const counters = new Map<string, Metric.Metric<number, unknown>>()
  const timers = new Map<string, Metric.Metric<number, unknown>>()
  const counter = (route: string, method: string, status: string) => {
    const key = `${route} ${method} ${status}`
    let m = counters.get(key)
    if (m === undefined) counters.set(key, (m = Metric.withAttributes(requests, { route, method, status })))
    return m
  }
  const timer = (route: string, method: string) => {
    const key = `${route} ${method}`
    let m = timers.get(key)
    if (m === undefined) timers.set(key, (m = Metric.withAttributes(duration, { route, method })))
    return m
  }
  return (route: string, requestMethod: string, status: number, ms: number): void => {
    const method = methods.has(requestMethod) ? requestMethod : "other"
    if (route.startsWith("/kv") && status < 500) dashboard.recordLatency(ms)
    counter(route, method, String(status)).updateUnsafe(1, context)
    timer(route, method).updateUnsafe(ms, context)
  }
})

/** `recorderUnsafe` as an effect: the middleware records through this. */
export const recorder = Effect.map(
  recorderUnsafe,
  (record) =>
    (route: string, requestMethod: string, status: number, ms: number): Effect.Effect<void> =>
      Effect.sync(() => record(route, requestMethod, status, ms))
)

/** Global middleware: counts and times every request; a key-value request's latency feeds the dashboard. */
export const middleware = HttpRouter.middleware(
  Effect.gen(function* () {
    const record = yield* recorder
    const route = routeOf()
    yield* start
    return (app) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const started = performance.now()
        const exit = yield* Effect.exit(app)
        const ms = performance.now() - started
        // a request whose client went away has no status to count
        if (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) return yield* exit
        const status = Exit.isSuccess(exit) ? exit.value.status : 500
        yield* record(route(request.method, request.url), request.method, status, ms)
        return yield* exit
      })
  }),
  { global: true }
)

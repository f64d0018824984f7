/**
 * The HTTP API's own metrics, at `/metrics` beside the roles': every route's request
 * counter and latency histogram exported at 0 before any request, then counted by route
 * pattern (never the raw URL), method and status.
 */
import { readdirSync, readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import * as ApiServer from "@synod/cluster/ApiServer"
import * as Embedded from "@synod/cluster/Embedded"
import * as HttpMetrics from "@synod/cluster/HttpMetrics"
import { Effect, Layer } from "effect"
import { http } from "./Process.ts"

const metrics = (url: string) => Effect.promise(() => fetch(`${url}/metrics`).then((r) => r.text()))

/** The value of the sample line `name{labels}` in a Prometheus text page, if present. */
const sample = (page: string, line: string): number | undefined => {
  const found = page.split("\n").find((l) => l.startsWith(`${line} `))
  return found === undefined ? undefined : Number(found.slice(line.length + 1))
}

const root = new URL("../../../", import.meta.url).pathname

/** The source of every package and app (`src/*.ts`), where metrics are defined. */
const sources = (): string =>
  ["packages", "apps"]
    .flatMap((dir) => readdirSync(`${root}${dir}`).map((p) => `${root}${dir}/${p}/src`))
    .flatMap((src) => {
      try {
        return readdirSync(src, { recursive: true })
          .map(String)
          .filter((f) => f.endsWith(".ts"))
          .map((f) => readFileSync(`${src}/${f}`, "utf8"))
      } catch {
        return []
      }
    })
    .join("\n")

describe("HTTP metrics", () => {
  it("the example Grafana dashboard uses only metric names synod exports", () => {
    const dashboard = JSON.parse(readFileSync(`${root}docs/grafana/synod-dashboard.json`, "utf8"))
    const exprs: Array<string> = dashboard.panels.flatMap((p: { targets: Array<{ expr: string }> }) =>
      p.targets.map((t) => t.expr)
    )
    const names = new Set(exprs.flatMap((e) => e.match(/synod_[a-z_]+/g) ?? []))
    assert.isAtLeast(names.size, 10)
    const code = sources()
    for (const name of names) {
      const base = name.replace(/_(bucket|sum|count)$/, "")
      // the NATS counters are named synod_nats_<name>_total from their short name
      const nats = /^synod_nats_([a-z_]+)_total$/.exec(base)
      const defined = nats ? code.includes(`counter("${nats[1]}"`) : code.includes(`"${base}"`)
      assert.isTrue(defined, `${name} (in the Grafana dashboard) is not defined by any metric`)
    }
  })

  it("route labels are the API's patterns; anything else is unmatched", () => {
    const route = HttpMetrics.routeOf()
    assert.strictEqual(route("GET", "/kv/config%2Fdb"), "/kv/{key}")
    assert.strictEqual(route("HEAD", "/kv/a"), "/kv/{key}")
    assert.strictEqual(route("POST", "/kv/a/cas"), "/kv/{key}/cas")
    assert.strictEqual(route("GET", "/kv?prefix=a&limit=3"), "/kv")
    assert.strictEqual(route("GET", "/ui/events"), "/ui/events")
    assert.strictEqual(route("GET", "/kv/a/b/c"), "unmatched")
    assert.strictEqual(route("PATCH", "/kv/a"), "unmatched")
    assert.strictEqual(route("GET", `/${"x".repeat(5000)}`), "unmatched")
  })

  it.live(
    "synod up's /metrics: every family from the start, then requests by route, method and status",
    () =>
      Effect.gen(function* () {
        const context = yield* Layer.build(ApiServer.layer({ port: 0 }).pipe(Layer.provide(Embedded.layer())))
        const url = yield* ApiServer.url.pipe(Effect.provideContext(context))
        const put = 'synod_http_requests_total{route="/kv/{key}",method="PUT",status="200"}'
        const putCount = 'synod_http_request_duration_milliseconds_count{route="/kv/{key}",method="PUT"}'
        const before = yield* metrics(url)
        assert.strictEqual(sample(before, put), 0)
        assert.strictEqual(sample(before, putCount), 0)
        for (const family of [
          "synod_commands_committed_total",
          "synod_slot_lag",
          "synod_leader_active",
          "synod_acceptor_promised_round"
        ]) {
          assert.include(before, `# TYPE ${family} `)
        }
        assert.strictEqual((yield* http("PUT", `${url}/kv/Key-M1`, { value: "a" })).status, 200)
        assert.strictEqual((yield* http("PUT", `${url}/kv/Key-M2`, { value: "b" })).status, 200)
        assert.strictEqual((yield* http("GET", `${url}/kv/absent`)).status, 404)
        assert.strictEqual((yield* http("PUT", `${url}/kv/Key-M3`, { value: 3 })).status, 400)
        assert.strictEqual((yield* http("GET", `${url}/no/such/path`)).status, 404)
        const after = yield* metrics(url)
        assert.strictEqual(sample(after, put), 2)
        assert.strictEqual(sample(after, putCount), 3)
        assert.strictEqual(sample(after, 'synod_http_requests_total{route="/kv/{key}",method="GET",status="404"}'), 1)
        assert.strictEqual(sample(after, 'synod_http_requests_total{route="/kv/{key}",method="PUT",status="400"}'), 1)
        assert.strictEqual(sample(after, 'synod_http_requests_total{route="unmatched",method="GET",status="404"}'), 1)
        assert.isAtLeast(sample(after, 'synod_commands_committed_total{id="s1"}') ?? 0, 2)
        // (keys no generated id can hold: a client's id, random lower-case letters and digits, once held "m1")
        assert.notInclude(after, "Key-M", "no key in any label")
        // the process's own memory and CPU, under the names Prometheus's Node clients use
        const rss = sample(after, "process_resident_memory_bytes") ?? 0
        assert.isAbove(rss, 10 * 2 ** 20)
        assert.isBelow(rss, 64 * 2 ** 30)
        assert.isAbove(sample(after, "nodejs_heap_size_used_bytes") ?? 0, 2 ** 20)
        assert.isAbove(sample(after, "nodejs_heap_size_total_bytes") ?? 0, 2 ** 20)
        assert.isAbove(sample(after, "process_cpu_seconds_total") ?? 0, 0)
      }).pipe(Effect.scoped),
    60_000
  )
})

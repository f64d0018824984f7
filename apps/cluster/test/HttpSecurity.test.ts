/**
 * The HTTP API's security (issue 14), on a real Node server over an embedded cluster:
 * bearer tokens (401 without or with an unknown one, 403 for a read-only token on a write,
 * the probes open), the `Host` check, HTTPS with a certificate made for the test by the
 * `openssl` CLI, the CLI's token from a file or the environment, and config errors that
 * name the field.
 */
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { request as httpRequest } from "node:http"
import { request as httpsRequest } from "node:https"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { ClusterConfig, InMemoryBus, Storage } from "@synod/core"
import { Effect, Layer, Result } from "effect"
import * as ApiServer from "@synod/cluster/ApiServer"
import * as Embedded from "@synod/cluster/Embedded"
import * as Serve from "@synod/cluster/Serve"
import { run } from "./Process.ts"

const config = ClusterConfig.servers(3, {
  timeouts: { retransmitMs: 50, heartbeatMs: 50, leaderTimeoutMs: 300, clientTimeoutMs: 10_000 }
})

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "synod-sec-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** The API over an embedded cluster with `options`; answers its URL. */
const start = (options: Omit<ApiServer.Options, "port">) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      ApiServer.layer({ port: 0, ...options }).pipe(
        Layer.provideMerge(Embedded.layerNoDeps(config, { cluster: "test", transport: "memory" })),
        Layer.provide(Storage.layerMemory()),
        Layer.provide(InMemoryBus.layer())
      )
    )
    const url = yield* ApiServer.url.pipe(Effect.provideContext(context))
    return options.tls === undefined ? url : url.replace(/^http:/, "https:")
  })

interface Answer {
  readonly status: number
  readonly headers: Record<string, string | Array<string> | undefined>
  readonly body: any
}

/** One request with explicit headers (fetch would not let a test set `Host`); `ca` for HTTPS. */
const call = (
  method: string,
  url: string,
  options: { readonly headers?: Record<string, string>; readonly body?: unknown; readonly ca?: string } = {}
) =>
  Effect.tryPromise({
    try: () =>
      new Promise<Answer>((resolve, reject) => {
        const body = options.body === undefined ? undefined : JSON.stringify(options.body)
        const headers = {
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...options.headers
        }
        const make = url.startsWith("https:") ? httpsRequest : httpRequest
        const req = make(url, { method, headers, ...(options.ca === undefined ? {} : { ca: options.ca }) }, (res) => {
          let text = ""
          res.setEncoding("utf8")
          res.on("data", (d: string) => {
            text += d
          })
          res.on("end", () => {
            try {
              resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) })
            } catch (e) {
              reject(new Error(`${res.statusCode}: not JSON: ${JSON.stringify(text)} (${String(e)})`))
            }
          })
        })
        req.on("error", reject)
        req.end(body)
      }),
    catch: (e) => new Error(`${method} ${url}: ${String(e)}`)
  })

const newToken = () => randomBytes(24).toString("base64url")
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** A self-signed certificate for localhost and 127.0.0.1, made by the openssl CLI in `dir`. */
const certificate = (dir: string, name: string) => {
  const certFile = join(dir, `${name}.crt`)
  const keyFile = join(dir, `${name}.key`)
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", "/CN=localhost"],
      ...["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    ],
    { stdio: "ignore" }
  )
  return { certFile, keyFile }
}

describe("HTTP API security", () => {
  it.live(
    "with tokens: 401 without one or with an unknown one, 403 for a read-only token on a write, probes open",
    () =>
      Effect.gen(function* () {
        const write = newToken()
        const read = newToken()
        const url = yield* start({
          tokens: [
            { token: write, scope: "write" },
            { token: read, scope: "read" }
          ]
        })
        const none = yield* call("GET", `${url}/kv/k`)
        assert.strictEqual(none.status, 401)
        assert.strictEqual(none.body._tag, "Unauthorized")
        assert.strictEqual(none.headers["www-authenticate"], 'Bearer realm="synod"')
        const wrong = yield* call("PUT", `${url}/kv/k`, { headers: bearer(newToken()), body: { value: "v" } })
        assert.strictEqual(wrong.status, 401)
        assert.include(wrong.body.message, "not valid")
        // a token that differs only in its last character is just as unknown
        const near = yield* call("GET", `${url}/kv/k`, { headers: bearer(`${read.slice(0, -1)}~`) })
        assert.strictEqual(near.status, 401)
        assert.strictEqual((yield* call("GET", `${url}/openapi.json`)).status, 401)

        const forbidden = yield* call("PUT", `${url}/kv/k`, { headers: bearer(read), body: { value: "v" } })
        assert.strictEqual(forbidden.status, 403)
        assert.deepStrictEqual(forbidden.body, { _tag: "Forbidden", message: "a read-only token may not PUT /kv/k" })
        assert.strictEqual((yield* call("DELETE", `${url}/kv/k`, { headers: bearer(read) })).status, 403)
        assert.strictEqual((yield* call("GET", `${url}/kv/k`, { headers: bearer(read) })).status, 404)

        const put = yield* call("PUT", `${url}/kv/k`, { headers: bearer(write), body: { value: "v" } })
        assert.deepStrictEqual([put.status, put.body], [200, { key: "k", version: 1 }])
        const got = yield* call("GET", `${url}/kv/k`, { headers: { authorization: `bearer ${read}` } })
        assert.deepStrictEqual([got.status, got.body.value], [200, "v"])
        assert.strictEqual((yield* call("GET", `${url}/status`, { headers: bearer(read) })).status, 200)
        assert.strictEqual((yield* call("GET", `${url}/healthz`)).status, 200)
      }),
    30_000
  )

  it.live(
    "a Host header that is neither a loopback name nor a configured one gets 421, with hosts or on loopback without",
    () =>
      Effect.gen(function* () {
        const url = yield* start({ hosts: ["synod.example.com"] })
        const port = new URL(url).port
        const evil = yield* call("GET", `${url}/healthz`, { headers: { host: `evil.example:${port}` } })
        assert.strictEqual(evil.status, 421)
        assert.strictEqual(evil.body._tag, "HostNotAllowed")
        assert.include(evil.body.message, "evil.example")
        for (const host of [
          `SYNOD.example.com:${port}`,
          "synod.example.com",
          `127.0.0.1:${port}`,
          `localhost:${port}`
        ]) {
          assert.strictEqual((yield* call("GET", `${url}/healthz`, { headers: { host } })).status, 200, host)
        }
        // without hosts on loopback, loopback names only: a rebound name is refused there too
        const open = yield* start({})
        const openPort = new URL(open).port
        const rebound = yield* call("GET", `${open}/kv/a`, { headers: { host: `evil.example:${openPort}` } })
        assert.strictEqual(rebound.status, 421)
        assert.strictEqual(rebound.body._tag, "HostNotAllowed")
        for (const host of [`127.0.0.1:${openPort}`, `localhost:${openPort}`, "127.0.0.2", `[::1]:${openPort}`]) {
          assert.strictEqual((yield* call("GET", `${open}/healthz`, { headers: { host } })).status, 200, host)
        }
      }),
    30_000
  )

  it.live(
    "TLS with a certificate made in the test; the CLI reads its token from a file or SYNOD_TOKEN and trusts the CA from NODE_EXTRA_CA_CERTS",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const cert = certificate(dir, "api")
        const write = newToken()
        const read = newToken()
        const api = yield* Serve.apiOptions({
          port: 0,
          tls: cert,
          tokens: [
            { token: write, scope: "write" },
            { token: read, scope: "read" }
          ]
        })
        const url = yield* start(api)
        assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/)
        const ca = api.tls!.cert
        const health = yield* call("GET", `${url}/healthz`, { ca })
        assert.strictEqual(health.status, 200)
        // not trusted without the CA; no plain HTTP on the port
        const untrusted = yield* Effect.flip(call("GET", `${url}/healthz`))
        assert.match(untrusted.message, /self.signed|certificate/i)
        const plain = yield* Effect.flip(call("GET", `${url.replace("https:", "http:")}/healthz`))
        assert.isAbove(plain.message.length, 0)

        const readFile = join(dir, "read.token")
        writeFileSync(readFile, `${read}\n`)
        const env = { NODE_EXTRA_CA_CERTS: cert.certFile }
        const [anonymous, readOnly, written] = yield* Effect.all(
          [
            run(["kv", "put", "k", "v", "--url", url], 30_000, env),
            run(["kv", "put", "k", "v", "--url", url, "--token-file", readFile], 30_000, env),
            run(["kv", "put", "k", "v", "--url", url], 30_000, { ...env, SYNOD_TOKEN: write })
          ],
          { concurrency: "unbounded" }
        )
        assert.strictEqual(anonymous.code, 5, anonymous.stderr)
        assert.include(anonymous.stderr, "SYNOD_TOKEN")
        assert.strictEqual(readOnly.code, 5, readOnly.stderr)
        assert.include(readOnly.stderr, "read-only token")
        assert.strictEqual(written.code, 0, written.stderr)
        assert.deepStrictEqual(JSON.parse(written.stdout), { key: "k", version: 1 })
        const got = yield* run(["kv", "get", "k", "--url", url], 30_000, { ...env, SYNOD_TOKEN_FILE: readFile })
        assert.strictEqual(got.code, 0, got.stderr)
        assert.strictEqual(JSON.parse(got.stdout).value, "v")
      }),
    60_000
  )

  it.live(
    "bad security settings fail naming the field or variable",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const base = {
          name: "sec",
          node: "s1",
          dataDir: join(dir, "s1"),
          cluster: { acceptors: ["s1"], leaders: ["s1"], replicas: ["s1"] },
          transport: { kind: "nats", servers: ["nats://127.0.0.1:4222"] }
        }
        const message = (raw: unknown, overrides: Serve.Overrides = {}) => {
          const r = Serve.decode(raw, overrides)
          return Result.isFailure(r) ? r.failure.message : "accepted"
        }
        assert.include(message({ ...base, http: { port: 1, host: "0.0.0.0" } }), "http.hosts is required")
        assert.strictEqual(
          message({ ...base, http: { port: 1, host: "0.0.0.0", hosts: ["synod.example"] } }),
          "accepted"
        )
        assert.strictEqual(
          message({ ...base, http: { port: 1, host: "0.0.0.0" } }, { httpHosts: ["synod.example"] }),
          "accepted"
        )
        const short = message({ ...base, http: { port: 1, tokens: [{ token: "short", scope: "write" }] } })
        assert.include(short, "tokens")
        assert.include(short, "16-256")
        assert.notInclude(short, '"short"')
        assert.include(
          message({ ...base, http: { port: 1, tokens: [{ token: newToken(), scope: "admin" }] } }),
          "scope"
        )
        assert.include(message({ ...base, http: { port: 1, tls: { certFile: "c.pem" } } }), "keyFile")
        // a misspelt `tokens` would have left the API open: refused, named
        const misspelt = message({ ...base, http: { port: 1, token: [{ token: newToken(), scope: "write" }] } })
        assert.include(misspelt, "token")
        assert.notStrictEqual(misspelt, "accepted")
        assert.notStrictEqual(message({ ...base, htpp: { port: 1 } }), "accepted")

        const env = Serve.httpSecurityFromEnv({ SYNOD_HTTP_READ_TOKEN: "too short" })
        assert.isTrue(Result.isFailure(env) && env.failure.message.includes("SYNOD_HTTP_READ_TOKEN"))
        const ok = Serve.httpSecurityFromEnv({
          SYNOD_HTTP_TOKEN: "a".repeat(16),
          SYNOD_HTTP_HOSTS: "a.example, b.example"
        })
        assert.deepStrictEqual(Result.getOrThrow(ok), {
          httpTokens: [{ token: "a".repeat(16), scope: "write" }],
          httpHosts: ["a.example", "b.example"]
        })

        const missing = yield* Effect.flip(
          Serve.apiOptions({ port: 1, tls: { certFile: join(dir, "nope.crt"), keyFile: join(dir, "nope.key") } })
        )
        assert.include(missing.message, "http.tls.certFile")
        const one = certificate(dir, "one")
        const two = certificate(dir, "two")
        const mismatched = yield* Effect.flip(
          Serve.apiOptions({ port: 1, tls: { certFile: one.certFile, keyFile: two.keyFile } })
        )
        assert.include(mismatched.message, "http.tls")
        assert.include(mismatched.message, "private key")
      }),
    30_000
  )
})

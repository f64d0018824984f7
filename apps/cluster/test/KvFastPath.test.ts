/**
 * The fast path for `PUT /kv/{key}` and `GET /kv/{key}` (`KvFastPath`) answers exactly
 * what the API's endpoints answer. Two HTTP APIs over one embedded cluster, one with the fast path and
 * one without, get the same requests, good and bad (bodies that do not decode, unknown
 * fields, leases that do not exist, bodies over the limit, other content types, chunked
 * bodies, keys too long or badly escaped, query strings, tokens and hosts refused), and
 * answer the same status, content type and body, the version aside (each write moves it
 * by one); reads of keys present and absent, with and without a query, a body or a token.
 * A property test does the same for arbitrary bodies. A server with only the fast path
 * shows which requests it takes: the well-formed writes and reads, and nothing else.
 * Over a backend whose commands and reads fail (no answer, refused, too large, a defect),
 * both answer alike, whether the fast path goes through the client's `submitPromise` and
 * `readPromise` or, without them, through `submit` and `read`. A client gone before its
 * answer is neither written to nor counted, and the server answers the next one.
 */
import { randomBytes } from "node:crypto"
import { createServer, request as httpRequest } from "node:http"
import type { AddressInfo } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Socket } from "node:net"
import { Client } from "@synod/actors"
import { ClusterConfig, InMemoryBus, Storage } from "@synod/core"
import type { Kv } from "@synod/kv"
import { Context, Effect, Layer } from "effect"
import * as fc from "fast-check"
import * as ApiServer from "@synod/cluster/ApiServer"
import { Backend } from "@synod/cluster/Backend"
import { Dashboard } from "@synod/cluster/Dashboard"
import * as Embedded from "@synod/cluster/Embedded"
import * as KvFastPath from "@synod/cluster/KvFastPath"

const config = ClusterConfig.servers(3, {
  timeouts: { retransmitMs: 50, heartbeatMs: 50, leaderTimeoutMs: 300, clientTimeoutMs: 10_000 }
})

interface Answer {
  readonly status: number
  readonly contentType: string | undefined
  readonly body: string
}

interface Request {
  readonly method?: string
  readonly path: string
  readonly headers?: Record<string, string>
  /** The body's bytes; sent with a `Content-Length` unless `chunked`. */
  readonly body?: string | Buffer
  readonly chunked?: boolean
}

/** One request with exactly these headers (fetch adds its own). */
const send = (url: string, r: Request) =>
  Effect.tryPromise({
    try: () =>
      new Promise<Answer>((resolve, reject) => {
        const body = r.body === undefined ? undefined : Buffer.from(r.body)
        const headers: Record<string, string> = {
          ...(body === undefined || r.chunked === true ? {} : { "content-length": String(body.length) }),
          ...(r.chunked === true ? { "transfer-encoding": "chunked" } : {}),
          ...r.headers
        }
        const req = httpRequest(`${url}${r.path}`, { method: r.method ?? "PUT", headers }, (res) => {
          const chunks: Array<Buffer> = []
          res.on("data", (c: Buffer) => chunks.push(c))
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              contentType: res.headers["content-type"],
              body: Buffer.concat(chunks).toString("utf8")
            })
          )
        })
        req.on("error", reject)
        if (body !== undefined && r.chunked === true) {
          req.write(body.subarray(0, body.length >> 1))
          req.end(body.subarray(body.length >> 1))
        } else req.end(body)
      }),
    catch: (e) => new Error(`${r.method ?? "PUT"} ${r.path}: ${String(e)}`)
  })

const json = { "content-type": "application/json" }

/** Two answers alike; a write's version aside: two writes in a row differ there by one. */
const sameBut = (a: Answer, b: Answer, write: boolean, what: string) => {
  if (!write) return assert.deepStrictEqual(b, a, what)
  const version = /"version":(\d+)/
  const va = version.exec(a.body)
  const vb = version.exec(b.body)
  if (a.status === 200 && va !== null && vb !== null) {
    assert.strictEqual(Number(vb[1]), Number(va[1]) + 1, `${what}: the second write's version is the next`)
  }
  assert.deepStrictEqual(
    { ...b, body: b.body.replace(version, '"version":_') },
    { ...a, body: a.body.replace(version, '"version":_') },
    what
  )
}

/** A 3-server cluster on the in-memory bus, in this process. */
const embedded = Embedded.layerNoDeps(config, { cluster: "test", transport: "memory" }).pipe(
  Layer.provideMerge(Storage.layerMemory()),
  Layer.provideMerge(InMemoryBus.layer())
)

/** An embedded cluster with two APIs on it, `options` each, the fast path on in the first only. */
const twoApis = (options: Omit<ApiServer.Options, "port"> = {}) =>
  Effect.gen(function* () {
    const cluster = yield* Layer.build(embedded)
    const api = (fastPath: boolean) =>
      Effect.flatMap(
        Layer.build(
          ApiServer.layer({ ...options, port: 0, fastPath }).pipe(Layer.provide(Layer.succeedContext(cluster)))
        ),
        (context) => ApiServer.url.pipe(Effect.provideContext(context))
      )
    return { fast: yield* api(true), platform: yield* api(false) }
  })

/** A failure as an effect: a client's error as the error, anything else as a defect. */
const failWith = (e: unknown): Effect.Effect<never, any> =>
  e instanceof Client.OutcomeUnknown ||
  e instanceof Client.ReadTimedOut ||
  e instanceof Client.CommandRejected ||
  e instanceof Client.CommandTooLarge
    ? Effect.fail(e)
    : Effect.die(e)

/**
 * A backend whose every command fails with `command()` and every read with `read()`, with
 * (`promises`) or without the client's `submitPromise` and `readPromise`: the fast path
 * answers through them when they are there, and through `submit` and `read` in a fiber
 * when not.
 */
const failingBackend = (command: () => unknown, read: () => unknown, promises: boolean) =>
  Backend.of({
    cluster: "test",
    transport: "memory",
    submit: () => failWith(command()),
    read: () => failWith(read()),
    ...(promises
      ? {
          submitPromise: () => Promise.reject(command()),
          readPromise: () => Promise.reject(read())
        }
      : {}),
    servers: Effect.succeed([])
  })

/** Two APIs over `backend`, as `twoApis`. */
const twoApisOver = (backend: Backend["Service"]) =>
  Effect.gen(function* () {
    const api = (fastPath: boolean) =>
      Effect.flatMap(
        Layer.build(ApiServer.layer({ port: 0, fastPath }).pipe(Layer.provide(Layer.succeed(Backend, backend)))),
        (context) => ApiServer.url.pipe(Effect.provideContext(context))
      )
    return { fast: yield* api(true), platform: yield* api(false) }
  })

/**
 * A server with only the fast path over `backend` (what it leaves is answered 599), each
 * key-value request's latency handed to `recordLatency`: its port.
 */
const fastPathOnly = (backend: Context.Context<Backend>, recordLatency: (ms: number) => void = () => {}) =>
  Effect.gen(function* () {
    const take = yield* KvFastPath.make({ maxBodyBytes: 4096, routerConfig: {} }).pipe(
      Effect.provideContext(backend),
      Effect.provideService(Dashboard, {
        recordLatency,
        history: Effect.succeed({ samples: [], events: [] }),
        subscribe: Effect.succeed(undefined),
        close: Effect.void
      })
    )
    assert.isDefined(take)
    const server = KvFastPath.serve(
      createServer((_, res) => {
        res.writeHead(599)
        res.end()
      }),
      take
    )
    yield* Effect.acquireRelease(
      Effect.callback<void>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.void))
      }),
      () => Effect.sync(() => server.close())
    )
    return (server.address() as AddressInfo).port
  })

/** Sends `r` to both and checks they answer alike; answers the fast path's answer. */
const both = (apis: { readonly fast: string; readonly platform: string }, r: Request, what = `${r.path}`) =>
  Effect.gen(function* () {
    const a = yield* send(apis.fast, r)
    const b = yield* send(apis.platform, r)
    sameBut(a, b, r.method !== "GET" && r.method !== "HEAD", what)
    return a
  })

describe("KvFastPath: PUT and GET /kv/{key} past the router", () => {
  it.live("answers every request as the API's endpoint does", () =>
    Effect.gen(function* () {
      const apis = yield* twoApis({ maxBodyBytes: 4096 })
      const put = (body: string | Buffer, more: Partial<Request> = {}) => ({
        path: "/kv/k",
        headers: json,
        body,
        ...more
      })
      const ok = yield* both(apis, put('{"value":"x"}'), "a write")
      assert.strictEqual(ok.status, 200)
      assert.strictEqual(ok.contentType, "application/json")
      const cases: ReadonlyArray<readonly [string, Request]> = [
        ["a value with an escape", put('{"value":"a\\u00e9\\n"}')],
        ["invalid JSON", put('{"value":"x"')],
        ["an empty body", put("")],
        ["null", put("null")],
        ["an array", put("[1]")],
        ["a misspelt field", put('{"valeu":"x"}')],
        ["an unknown field", put('{"value":"x","extra":1}')],
        ["a number for the value", put('{"value":1}')],
        ["a fractional lease", put('{"value":"x","lease":1.5}')],
        ["a negative lease", put('{"value":"x","lease":-3}')],
        ["a lease that does not exist", put('{"value":"x","lease":77}')],
        ["a value over the longest", put(JSON.stringify({ value: "v".repeat(70_000) }))],
        ["a body over the limit", put(JSON.stringify({ value: "v".repeat(5000) }))],
        ["a byte-order mark", put(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"value":"b"}')]))],
        [
          "bytes that are not UTF-8",
          put(Buffer.concat([Buffer.from('{"value":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]))
        ],
        ["a charset", put('{"value":"x"}', { headers: { "content-type": "Application/JSON; charset=utf-8" } })],
        ["no content type", put('{"value":"x"}', { headers: {} })],
        ["text", put('{"value":"x"}', { headers: { "content-type": "text/plain" } })],
        ["a chunked body", put('{"value":"chunked"}', { chunked: true })],
        ["an escaped key", put('{"value":"x"}', { path: "/kv/a%2Fb%20c" })],
        ["a badly escaped key", put('{"value":"x"}', { path: "/kv/a%E0%A4%A" })],
        ["a key over the longest", put('{"value":"x"}', { path: `/kv/${"k".repeat(2000)}` })],
        ["a query string", put('{"value":"x"}', { path: "/kv/k?consistency=log" })],
        ["a trailing slash", put('{"value":"x"}', { path: "/kv/k/" })],
        ["no key", put('{"value":"x"}', { path: "/kv/" })],
        ["another route under /kv", put('{"version":0,"value":"x"}', { path: "/kv/k/cas", method: "POST" })],
        ["a method the path does not take", put('{"value":"x"}', { path: "/kv/k", method: "PATCH" })]
      ]
      for (const [what, r] of cases) yield* both(apis, r, what)

      const read = (path: string, more: Partial<Request> = {}): Request => ({ method: "GET", path, ...more })
      const got = yield* both(apis, read("/kv/k"), "a read")
      assert.strictEqual(got.status, 200)
      assert.include(got.body, '"value":"x"')
      const reads: ReadonlyArray<readonly [string, Request]> = [
        ["a key that is absent", read("/kv/absent")],
        ["an escaped key", read("/kv/a%2Fb%20c")],
        ["a badly escaped key", read("/kv/a%E0%A4%A")],
        ["a key over the longest", read(`/kv/${"k".repeat(2000)}`)],
        ["a serializable read", read("/kv/k?consistency=serializable")],
        ["a read through the log", read("/kv/k?consistency=log")],
        ["an unknown consistency", read("/kv/k?consistency=eventual")],
        ["a read with a body", read("/kv/k", { headers: json, body: '{"value":"x"}' })],
        ["a read with an empty body", read("/kv/k", { headers: { "content-length": "0" } })],
        ["a read of the list", read("/kv")],
        ["HEAD", read("/kv/k", { method: "HEAD" })]
      ]
      for (const [what, r] of reads) yield* both(apis, r, what)
    })
  )

  it.live("refuses as the API does: tokens and hosts", () =>
    Effect.gen(function* () {
      const write = randomBytes(24).toString("base64url")
      const read = randomBytes(24).toString("base64url")
      const apis = yield* twoApis({
        tokens: [
          { token: write, scope: "write" },
          { token: read, scope: "read" }
        ],
        hosts: ["synod.example"]
      })
      const body = '{"value":"x"}'
      const reads: Array<number> = []
      for (const auth of [
        undefined,
        `Bearer ${read}`,
        `Bearer ${write}`,
        `Bearer ${randomBytes(24).toString("base64url")}`
      ]) {
        const headers = auth === undefined ? {} : { authorization: auth }
        reads.push(
          (yield* both(apis, { method: "GET", path: "/kv/k", headers }, `a read, ${auth ?? "no token"}`)).status
        )
      }
      const cases: ReadonlyArray<readonly [string, Record<string, string>]> = [
        ["no token", json],
        ["an unknown token", { ...json, authorization: `Bearer ${randomBytes(24).toString("base64url")}` }],
        ["a read-only token", { ...json, authorization: `Bearer ${read}` }],
        ["a write token", { ...json, authorization: `Bearer ${write}` }],
        ["a write token, another host", { ...json, authorization: `Bearer ${write}`, host: "evil.example" }],
        ["a write token, a named host", { ...json, authorization: `bearer ${write}`, host: "synod.example:8080" }]
      ]
      const statuses: Array<number> = []
      for (const [what, headers] of cases)
        statuses.push((yield* both(apis, { path: "/kv/k", headers, body }, what)).status)
      assert.deepStrictEqual(statuses, [401, 401, 403, 200, 421, 200])
      assert.deepStrictEqual(reads, [401, 404, 404, 401])
    })
  )

  it.live("answers any body as the API does (property)", () =>
    Effect.gen(function* () {
      const apis = yield* twoApis()
      const bodies = fc.oneof(
        fc.json(),
        fc.string(),
        fc.record({ value: fc.string() }).map((r) => JSON.stringify(r)),
        fc
          .record(
            { value: fc.oneof(fc.string(), fc.integer()), lease: fc.oneof(fc.integer(), fc.double(), fc.string()) },
            {
              requiredKeys: []
            }
          )
          .map((r) => JSON.stringify(r))
      )
      const samples = fc.sample(bodies, { numRuns: 150, seed: 20261202 })
      for (const body of samples) yield* both(apis, { path: "/kv/p", headers: json, body }, `body ${body}`)
    })
  )

  it.live("takes the well-formed writes and leaves everything else to the API", () =>
    Effect.gen(function* () {
      const cluster = yield* Layer.build(embedded)
      const url = `http://127.0.0.1:${yield* fastPathOnly(cluster)}`
      const status = (r: Request) => Effect.map(send(url, r), (a) => a.status)
      const body = '{"value":"x"}'
      assert.strictEqual(yield* status({ path: "/kv/k", headers: json, body }), 200)
      assert.strictEqual(yield* status({ path: "/kv/a%2Fb", headers: json, body }), 200)
      assert.strictEqual(yield* status({ path: "/kv/k", headers: json, body: "{" }), 400)
      assert.strictEqual(yield* status({ path: "/kv/k", method: "GET" }), 200)
      assert.strictEqual(yield* status({ path: "/kv/absent", method: "GET" }), 404)
      for (const r of [
        { path: "/kv/k", headers: json, body, chunked: true },
        { path: "/kv/k?x=1", headers: json, body },
        { path: "/kv/k", headers: { "content-type": "text/plain" }, body },
        { path: "/kv/k", headers: json, body: JSON.stringify({ value: "v".repeat(5000) }) },
        { path: `/kv/${"k".repeat(2000)}`, headers: json, body },
        { path: "/kv/k/cas", method: "POST", headers: json, body },
        { path: "/kv/k?consistency=serializable", method: "GET" },
        { path: "/kv/k", method: "GET", headers: json, body },
        { path: "/kv/k", method: "HEAD" },
        { path: "/kv", method: "GET" }
      ] satisfies ReadonlyArray<Request>) {
        assert.strictEqual(yield* status(r), 599, `left to the API: ${r.method ?? "PUT"} ${r.path}`)
      }
    })
  )

  it.live("answers the client's failures as the API does, through submitPromise or through submit", () =>
    Effect.gen(function* () {
      const failures: ReadonlyArray<readonly [string, () => unknown, () => unknown, number]> = [
        [
          "no answer",
          () => new Client.OutcomeUnknown({ client: "c", seq: 1, waitedMs: 10_000 }),
          () => new Client.ReadTimedOut({ client: "c", id: 1, waitedMs: 10_000 }),
          504
        ],
        [
          "refused",
          () => new Client.CommandRejected({ reason: "no" }),
          () => new Client.CommandRejected({ reason: "no" }),
          500
        ],
        [
          "too large",
          () => new Client.CommandTooLarge({ bytes: 50_000, limit: 40_000 }),
          () => new Client.CommandTooLarge({ bytes: 50_000, limit: 40_000 }),
          413
        ],
        ["a defect", () => new Error("boom"), () => new Error("boom"), 500]
      ]
      for (const promises of [true, false]) {
        for (const [what, command, read, status] of failures) {
          const apis = yield* twoApisOver(failingBackend(command, read, promises))
          const label = `${what}, ${promises ? "submitPromise" : "submit"}`
          const put = yield* both(apis, { path: "/kv/k", headers: json, body: '{"value":"x"}' }, `PUT: ${label}`)
          assert.strictEqual(put.status, status, `PUT: ${label}`)
          const get = yield* both(apis, { path: "/kv/k", method: "GET" }, `GET: ${label}`)
          assert.strictEqual(get.status, status, `GET: ${label}`)
        }
      }
    })
  )

  it.live("a client gone before its answer: nothing written or counted, and the next request answered", () =>
    Effect.gen(function* () {
      let answer: ((r: Kv.Result) => void) | undefined
      const counted: Array<number> = []
      const backend = Backend.of({
        cluster: "test",
        transport: "memory",
        submit: () => Effect.never,
        submitPromise: () =>
          answer === undefined
            ? new Promise<Kv.Result>((resolve) => {
                answer = resolve
              })
            : Promise.resolve({ _tag: "Written", version: 2 } as Kv.Result),
        servers: Effect.succeed([])
      })
      const port = yield* fastPathOnly(Context.make(Backend, backend), (ms) => {
        counted.push(ms)
      })
      // a PUT on a raw socket, closed once the server holds it
      const body = '{"value":"x"}'
      yield* Effect.callback<void>((resume) => {
        const socket = new Socket()
        socket.connect(port, "127.0.0.1", () => {
          socket.write(
            `PUT /kv/k HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`
          )
        })
        const poll = setInterval(() => {
          if (answer === undefined) return
          clearInterval(poll)
          socket.destroy()
          socket.once("close", () => resume(Effect.void))
        }, 5)
      })
      // the answer comes after the client left: the server neither writes nor counts it
      yield* Effect.sleep("50 millis")
      answer!({ _tag: "Written", version: 1 } as Kv.Result)
      yield* Effect.sleep("50 millis")
      assert.deepStrictEqual(counted, [])
      const next = yield* send(`http://127.0.0.1:${port}`, { path: "/kv/k", headers: json, body })
      assert.strictEqual(next.status, 200)
      assert.strictEqual(next.body, '{"key":"k","version":2}')
      assert.strictEqual(counted.length, 1)
    })
  )
})

/**
 * Watches against three HTTP APIs over one cluster in this process, each serving watches
 * from its own replica: every watcher's events equal the log's order of writes to its
 * keys (as the writers' answers place them: each write's revision), with the watchers'
 * server stopped mid-watch so they resume on another; the planted bug "a watch skips an
 * event after a reconnect" is caught by the same comparison; a revision older than the
 * history kept is refused as compacted, naming the oldest available.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client, Server } from "@synod/actors"
import { ClusterConfig, InMemoryBus, Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { Effect, Exit, Fiber, Layer, Scope, Stream } from "effect"
import * as ApiServer from "@synod/cluster/ApiServer"
import { Backend } from "@synod/cluster/Backend"
import * as WatchClient from "@synod/cluster/WatchClient"
import { http, run } from "./Process.ts"

const config = ClusterConfig.servers(3, {
  timeouts: { retransmitMs: 50, heartbeatMs: 50, leaderTimeoutMs: 300, clientTimeoutMs: 10_000 }
})

/** Three servers, and an HTTP API per replica in its own scope (closed to stop it). */
const cluster = (machine = Kv.machine) =>
  Effect.gen(function* () {
    const base = yield* Layer.build(Layer.merge(Storage.layerMemory(), InMemoryBus.layer()))
    const handles = yield* Effect.forEach(["s1", "s2", "s3"], (id) =>
      Server.run({ id, config, machine }).pipe(Effect.provideContext(base))
    )
    const client = yield* Client.make(machine, config, { id: "writer" }).pipe(Effect.provideContext(base))
    const apis = yield* Effect.forEach(handles, (h) =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const backend = Layer.succeed(
          Backend,
          Backend.of({
            cluster: "test",
            transport: "memory",
            submit: client.submit,
            servers: Effect.map(h.status, (s) => [s]),
            applied: h.applied!
          })
        )
        const context = yield* Layer.buildWithScope(ApiServer.layer({ port: 0 }).pipe(Layer.provide(backend)), scope)
        return { url: yield* ApiServer.url.pipe(Effect.provideContext(context)), stop: Scope.close(scope, Exit.void) }
      })
    )
    return { client, apis }
  })

type Write = { readonly revision: number; readonly key: string; readonly value: string | null }

/** The writes a command made, placed by its answer (a transaction's writes take consecutive revisions). */
const writesOf = (command: Kv.Command, result: Kv.Result): Array<Write> => {
  if (command._tag === "Put" && result._tag === "Written") {
    return [{ revision: result.version, key: command.key, value: command.value }]
  }
  if (command._tag === "Txn" && result._tag === "Transacted") {
    const branch = result.succeeded ? command.success : command.failure
    const made = branch.flatMap((op, i): Array<Omit<Write, "revision">> => {
      const r = result.results[i]!
      if (op.op === "put") return [{ key: op.key, value: op.value }]
      if (op.op === "del" && r.op === "del" && r.existed) return [{ key: op.key, value: null }]
      return []
    })
    return made.map((w, i) => ({ ...w, revision: result.revision - (made.length - 1 - i) }))
  }
  return []
}

const keys = ["a/1", "a/2", "b", "c"]
const command = (writer: number, i: number): Kv.Command => {
  const key = keys[(writer * 7 + i * 3) % keys.length]!
  const value = `w${writer}.${i}`
  if (i % 3 === 2) {
    return {
      _tag: "Txn",
      compare: [],
      success: [
        { op: "put", key: "b", value },
        { op: "del", key },
        { op: "put", key: "a/1", value: `${value}'` }
      ],
      failure: []
    }
  }
  return { _tag: "Put", key, value }
}

const filters: ReadonlyArray<{ readonly prefix?: string; readonly key?: string }> = [
  { prefix: "" },
  { prefix: "a/" },
  { key: "b" }
]
const matches = (f: (typeof filters)[number], key: string) =>
  f.key !== undefined ? key === f.key : key.startsWith(f.prefix ?? "")

/**
 * Writers write in two halves; the watchers' first server stops between them. Answers,
 * per watcher, the events it got and the writes it should have got, in revision order.
 */
const scenario = Effect.gen(function* () {
  const { client, apis } = yield* cluster()
  const urls = apis.map((a) => a.url)
  const got = filters.map(() => [] as Array<Write>)
  const fibers = yield* Effect.forEach(filters, (f, w) =>
    WatchClient.watch({ urls, ...f, fromRevision: 1 }).pipe(
      Stream.runForEach((e) =>
        Effect.sync(() => got[w]!.push({ revision: e.revision, key: e.key, value: e.type === "del" ? null : e.value! }))
      ),
      Effect.forkChild
    )
  )
  const writes: Array<Write> = []
  const half = (from: number, to: number) =>
    Effect.forEach(
      [0, 1],
      (writer) =>
        Effect.gen(function* () {
          for (let i = from; i < to; i++) {
            const c = command(writer, i)
            writes.push(...writesOf(c, yield* client.submit(c)))
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
  yield* half(0, 15)
  // every watcher has something before its server goes
  for (let i = 0; i < 2000 && got.some((g) => g.length === 0); i++) yield* Effect.sleep(10)
  yield* apis[0]!.stop
  yield* half(15, 30)
  const expected = filters.map((f) => writes.filter((w) => matches(f, w.key)).sort((a, b) => a.revision - b.revision))
  // until each watcher has reached its last write (or 30 s have passed: then it missed some)
  for (let i = 0; i < 3000; i++) {
    if (expected.every((e, w) => (got[w]!.at(-1)?.revision ?? 0) >= (e.at(-1)?.revision ?? 0))) break
    yield* Effect.sleep(10)
  }
  for (const f of fibers) yield* Fiber.interrupt(f)
  return { got, expected, writes }
})

describe("watches", () => {
  it.live(
    "each watcher sees the log's order of writes to its keys, across a server change",
    () =>
      Effect.gen(function* () {
        const { got, expected, writes } = yield* scenario
        // the answers place every write at its own revision
        assert.strictEqual(new Set(writes.map((w) => w.revision)).size, writes.length)
        assert.isAbove(writes.length, 60)
        filters.forEach((f, w) => {
          assert.isAbove(expected[w]!.length, 5, JSON.stringify(f))
          assert.deepStrictEqual(got[w], expected[w], `watcher of ${JSON.stringify(f)}`)
        })
      }),
    60_000
  )

  it.live(
    'the planted bug "a watch skips an event after a reconnect" is caught',
    () =>
      Effect.gen(function* () {
        const { got, expected } = yield* scenario.pipe(
          Effect.provideService(WatchClient.PlantedBugs, { skipAfterReconnect: true })
        )
        // the watcher of every key lost the write it was about to get when its server stopped
        const caught = filters.some((_, w) => JSON.stringify(got[w]) !== JSON.stringify(expected[w]))
        assert.isTrue(caught, "the comparison did not notice a skipped event")
        assert.notDeepEqual(got[0], expected[0])
      }),
    60_000
  )

  it.live(
    "a revision older than the history kept is refused as compacted, naming the oldest available",
    () =>
      Effect.gen(function* () {
        const { client, apis } = yield* cluster(Kv.make({ retention: { revisions: 5 } }))
        for (let i = 0; i < 12; i++) yield* client.submit({ _tag: "Put", key: "k", value: String(i) })
        const url = apis[1]!.url
        // the replica behind this API may still be applying: wait until it has all 12
        for (let i = 0; i < 200; i++) {
          const s = yield* http("GET", `${url}/status`)
          if (s.body.servers[0].replica.revision >= 12) break
          yield* Effect.sleep(10)
        }
        const r = yield* http("GET", `${url}/watch?prefix=&fromRevision=3`)
        assert.strictEqual(r.status, 410)
        assert.deepStrictEqual(
          { _tag: r.body._tag, requested: r.body.requested, oldest: r.body.oldest },
          { _tag: "Compacted", requested: 3, oldest: 8 }
        )
        assert.include(r.body.message, "oldest revision this server can watch from is 8")
        // an EventSource's Last-Event-ID says where to resume: the revision after it
        const resumed = yield* Effect.promise(() => fetch(`${url}/watch`, { headers: { "last-event-id": "6" } }))
        assert.strictEqual(resumed.status, 410)
        assert.strictEqual(((yield* Effect.promise(() => resumed.json())) as { requested: number }).requested, 7)
        // one that is not a revision is refused, as a bad fromRevision is, not taken as "now"
        for (const bad of ["abc", "-5", "1e3", "99999999999999999999"]) {
          const refused = yield* Effect.promise(() => fetch(`${url}/watch`, { headers: { "last-event-id": bad } }))
          assert.strictEqual(refused.status, 400, bad)
          assert.include(
            ((yield* Effect.promise(() => refused.json())) as { message: string }).message,
            "Last-Event-ID"
          )
        }
        const exit = yield* Effect.exit(Stream.runCollect(WatchClient.watch({ urls: [url], fromRevision: 1 })))
        assert.isTrue(Exit.isFailure(exit) && JSON.stringify(exit.cause).includes("Compacted"))
        const cli = yield* run(["kv", "watch", "--from-revision", "2", "--url", url])
        assert.strictEqual(cli.code, 1)
        assert.include(cli.stderr, "is 8")
        // from the oldest on it works: the last five writes
        const ok = yield* run(["kv", "watch", "--from-revision", "8", "--count", "5", "--url", url])
        assert.strictEqual(ok.code, 0, ok.stderr)
        assert.deepStrictEqual(
          ok.stdout
            .trim()
            .split("\n")
            .map((l) => JSON.parse(l).value),
          ["7", "8", "9", "10", "11"]
        )
      }),
    60_000
  )

  it.live(
    "a watch from a revision not reached yet reports no progress past the store's, then the writes from there",
    () =>
      Effect.gen(function* () {
        const { client, apis } = yield* cluster()
        for (let i = 0; i < 2; i++) yield* client.submit({ _tag: "Put", key: "k", value: String(i) })
        const url = apis[0]!.url
        for (let i = 0; i < 200; i++) {
          const s = yield* http("GET", `${url}/status`)
          if (s.body.servers[0].replica.revision >= 2) break
          yield* Effect.sleep(10)
        }
        const response = yield* Effect.promise(() => fetch(`${url}/watch?prefix=&fromRevision=6`))
        assert.strictEqual(response.status, 200)
        const reader = response.body!.getReader()
        let buffered = ""
        /** The next SSE event of the stream: its fields. */
        const next = Effect.promise(async () => {
          for (;;) {
            const end = buffered.indexOf("\n\n")
            if (end >= 0) {
              const text = buffered.slice(0, end)
              buffered = buffered.slice(end + 2)
              return Object.fromEntries(
                text.split("\n").map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()])
              )
            }
            const { value, done } = await reader.read()
            if (done) throw new Error("the stream ended")
            buffered += new TextDecoder().decode(value)
          }
        })
        // the stream is up: it resumes after 5, but the store is at 2
        const first = yield* next
        assert.deepStrictEqual([first.id, first.event, JSON.parse(first.data)], ["5", "progress", { revision: 2 }])
        for (let i = 2; i < 7; i++) yield* client.submit({ _tag: "Put", key: "k", value: String(i) })
        let event = yield* next
        while (event.event === "progress") {
          assert.isAtMost(JSON.parse(event.data).revision, 7)
          event = yield* next
        }
        assert.deepStrictEqual(JSON.parse(event.data), { revision: 6, type: "put", key: "k", value: "5" })
        yield* Effect.promise(() => reader.cancel())
      }),
    60_000
  )
})

/**
 * One process per node id, on a real nats-server: a second claimant is refused while the
 * first holds the id, also under the server permissions of the subject scheme; two
 * starting at once do not both get it; a running claimant answers probes, and one that
 * hears another running claimant logs and counts it.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Msg } from "@nats-io/transport-node"
import { Effect, Exit, Fiber, Logger, Metric, Option, Queue, Scope } from "effect"
import { ClusterKey, NatsConnection, Presence, Subjects } from "@synod/transport-nats"
import { NatsServer } from "@synod/testing"
import * as Kit from "./Kit.ts"

const cluster = "presence"
const fast = { probeTimeout: "300 millis", heartbeat: "100 millis" } as const

let connections = 0

/** A claim of `node` on a connection of its own, in a scope the caller may close (else the test's does). */
const claimIn = Effect.fnUntraced(function* (
  url: string,
  node: string,
  options: Partial<Presence.Options> = {},
  auth?: NatsConnection.Auth
) {
  const scope = yield* Scope.fork(yield* Effect.scope)
  const exit = yield* Effect.gen(function* () {
    const { connection } = yield* Kit.build({
      servers: url,
      name: `${node}-${++connections}`,
      cluster,
      ...(auth === undefined ? {} : { auth })
    })
    return yield* Presence.claim({ cluster, node, ...fast, ...options }).pipe(
      Effect.provideService(NatsConnection.NatsConnection, connection)
    )
  }).pipe(Scope.provide(scope), Effect.exit)
  // as a refused process would exit
  if (Exit.isFailure(exit)) yield* Scope.close(scope, exit)
  return { exit, scope }
})

const foreign = (tag: "Probe" | "Here") =>
  JSON.stringify({ _tag: tag, nonce: "someone-else", pid: 4242, host: "elsewhere", startedAt: "2025-01-01T00:00:00Z" })

describe("Presence", () => {
  it.live("a second claimant is refused while the first holds the id; another id, or the id once freed, is not", () =>
    Effect.gen(function* () {
      const server = yield* NatsServer.start()
      const first = yield* claimIn(server.url, "s1")
      assert.isTrue(Exit.isSuccess(first.exit))

      const second = yield* claimIn(server.url, "s1")
      assert.isTrue(Exit.isFailure(second.exit))
      const error = Option.getOrUndefined(Exit.findErrorOption(second.exit))
      assert.strictEqual(error?._tag, "DuplicateNode")
      assert.include(error?.message, `node id "s1"`)
      assert.include(error?.message, `pid ${process.pid}`)

      const other = yield* claimIn(server.url, "s2")
      assert.isTrue(Exit.isSuccess(other.exit))

      yield* Scope.close(first.scope, Exit.void)
      const again = yield* claimIn(server.url, "s1")
      assert.isTrue(Exit.isSuccess(again.exit))
    })
  )

  it.live("works within the server permissions of the subject scheme (no _INBOX needed)", () =>
    Effect.gen(function* () {
      const list = (subjects: ReadonlyArray<string>) => subjects.map((s) => JSON.stringify(s)).join(", ")
      const server = yield* NatsServer.start({
        config: `authorization { users = [ { user: "s1", password: "pw", permissions: {
          publish: [${list([Subjects.wildcard(cluster)])}],
          subscribe: [${list([Subjects.wildcard(cluster, { id: "s1" })])}] } } ] }`
      })
      const auth = { user: "s1", password: "pw" }
      const first = yield* claimIn(server.url, "s1", {}, auth)
      assert.isTrue(Exit.isSuccess(first.exit))
      const second = yield* claimIn(server.url, "s1", {}, auth)
      assert.strictEqual(Option.getOrUndefined(Exit.findErrorOption(second.exit))?._tag, "DuplicateNode")
    })
  )

  it.live("a server that refuses the presence subscription does not stop the start, and it is logged", () =>
    Effect.gen(function* () {
      const server = yield* NatsServer.start({
        config: `authorization { users = [ { user: "s1", password: "pw", permissions: {
          publish: ["synod.>"], subscribe: ["synod.${cluster}.acceptor.s1"] } } ] }`
      })
      const lines: Array<string> = []
      const logger = Logger.make(({ message }) => {
        lines.push(JSON.stringify(message))
      })
      const claimed = yield* claimIn(server.url, "s1", {}, { user: "s1", password: "pw" }).pipe(
        Effect.provide(Logger.layer([logger]))
      )
      assert.isTrue(Exit.isSuccess(claimed.exit))
      assert.isTrue(
        lines.some((l) => l.includes("refused the presence subscription")),
        lines.join("\n")
      )
    })
  )

  it.live("two claimants starting at once do not both get the id", () =>
    Effect.gen(function* () {
      const server = yield* NatsServer.start()
      // with a cluster key too: then only answers to a claimant's own probe refuse it
      const keyed = { clusterKey: { current: "the-presence-cluster-key-of-this-test" } }
      for (let round = 0; round < 6; round++) {
        const node = `race${round}`
        const options = round % 2 === 0 ? {} : keyed
        const claims = yield* Effect.all([claimIn(server.url, node, options), claimIn(server.url, node, options)], {
          concurrency: "unbounded"
        })
        assert.isAtMost(claims.filter((c) => Exit.isSuccess(c.exit)).length, 1, node)
      }
    })
  )

  it.live("a running claimant answers probes, and logs and counts another running claimant's announcements", () =>
    Effect.gen(function* () {
      const server = yield* NatsServer.start()
      const node = "dup"
      const subject = Option.getOrThrow(Subjects.presence(cluster, node))
      const raw = yield* Kit.rawClient(server.url)
      const heard = yield* Queue.unbounded<Msg>()
      raw.subscribe(subject, {
        callback: (_, msg) => {
          Queue.offerUnsafe(heard, msg)
        }
      })
      yield* Effect.promise(() => raw.flush())

      // no heartbeat during the test: every Here after the first one answers something
      const { exit } = yield* claimIn(server.url, node, { heartbeat: "1 hour" })
      const claim = Exit.isSuccess(exit) ? exit.value : assert.fail("claim failed")
      const counter = Metric.withAttributes(Presence.duplicates, { id: node })
      const before = (yield* Metric.value(counter)).count
      const nextHere = Queue.take(heard).pipe(
        Effect.map((m) => JSON.parse(m.string())),
        Effect.repeat({ until: (a) => a._tag === "Here" && a.nonce === claim.nonce }),
        Effect.timeout("5 seconds")
      )
      // the claimant says Here once it holds the id, and again to answer a probe
      yield* nextHere
      raw.publish(subject, foreign("Probe"))
      yield* nextHere
      assert.strictEqual(yield* claim.duplicatesHeard, 0)

      raw.publish(subject, foreign("Here"))
      yield* Kit.eventually(
        "the duplicate is counted",
        Effect.map(claim.duplicatesHeard, (n) => n === 1)
      )
      assert.strictEqual((yield* Metric.value(counter)).count - before, 1)
    })
  )

  it.live(
    "with a cluster key: claimants with the key still refuse each other; unsealed, stale and replayed announcements refuse no one",
    () =>
      Effect.gen(function* () {
        const server = yield* NatsServer.start()
        const keys = { current: "the-presence-cluster-key-of-this-test" }
        const node = "keyed"
        const subject = Option.getOrThrow(Subjects.presence(cluster, node))
        const raw = yield* Kit.rawClient(server.url)
        const captured: Array<Uint8Array> = []
        raw.subscribe(subject, {
          callback: (_, msg) => {
            captured.push(msg.data)
          }
        })
        yield* Effect.promise(() => raw.flush())
        const refusedCount = Effect.map(
          Metric.value(Metric.withAttributes(Presence.refused, { id: node })),
          (s) => s.count
        )
        const refusedBefore = yield* refusedCount

        const first = yield* claimIn(server.url, node, { clusterKey: keys })
        assert.isTrue(Exit.isSuccess(first.exit))
        // the holder's announcements are sealed
        yield* Kit.eventually(
          "an announcement captured",
          Effect.sync(() => captured.length > 0)
        )
        assert.strictEqual(captured[0]![0], ClusterKey.mark)
        const second = yield* claimIn(server.url, node, { clusterKey: keys })
        assert.strictEqual(Option.getOrUndefined(Exit.findErrorOption(second.exit))?._tag, "DuplicateNode")

        // the holder is gone: nothing anyone without the key publishes, and no replay of
        // what the holder said, keeps the id from being claimed again
        yield* Scope.close(first.scope, Exit.void)
        const replays = [...captured]
        const stale = ClusterKey.sealer(keys, "presence.stale", () => Date.now() - 2 * Presence.maxAgeMs)
        const stop = yield* Effect.forkChild(
          Effect.forever(
            Effect.andThen(
              Effect.sync(() => {
                raw.publish(subject, foreign("Here"))
                raw.publish(subject, foreign("Probe"))
                raw.publish(subject, stale.seal(subject, foreign("Probe")))
                for (const r of replays) raw.publish(subject, r)
              }),
              Effect.sleep("20 millis")
            )
          )
        )
        const again = yield* claimIn(server.url, node, { clusterKey: keys })
        yield* Fiber.interrupt(stop)
        assert.isTrue(Exit.isSuccess(again.exit), String(again.exit))
        assert.isAbove((yield* refusedCount) - refusedBefore, 3)
      }),
    30_000
  )

  it.live(
    "running: true for a node a process holds (with or without a key), false for one nobody holds",
    () => {
      const lines: Array<string> = []
      const logger = Logger.make(({ message }) => {
        lines.push(JSON.stringify(message))
      })
      return Effect.gen(function* () {
        const server = yield* NatsServer.start()
        const keys = { current: "the-presence-cluster-key-of-this-test" }
        const plain = yield* claimIn(server.url, "held")
        const keyed = yield* claimIn(server.url, "sealed", { clusterKey: keys })
        assert.isTrue(Exit.isSuccess(plain.exit) && Exit.isSuccess(keyed.exit))
        const { connection } = yield* Kit.build({ servers: server.url, name: "asker", cluster })
        const running = (node: string, clusterKey?: typeof keys) =>
          Presence.running({
            cluster,
            node,
            timeout: "300 millis",
            ...(clusterKey === undefined ? {} : { clusterKey })
          }).pipe(Effect.provideService(NatsConnection.NatsConnection, connection))
        assert.isTrue(yield* running("held"))
        assert.isTrue(yield* running("sealed", keys))
        assert.isFalse(yield* running("nobody"))
        // a keyed asker counts only sealed answers
        assert.isFalse(yield* running("held", keys))
        // asking is no claim: the holder warns of no other process
        assert.isFalse(
          lines.some((l) => l.includes("another process")),
          lines.join("\n")
        )
        yield* Scope.close(plain.scope, Exit.void)
        assert.isFalse(yield* running("held"))
      }).pipe(Effect.provide(Logger.layer([logger])))
    },
    30_000
  )
})

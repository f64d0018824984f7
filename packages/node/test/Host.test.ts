/**
 * The host refuses a second process's worth of roles: a second host on the same data
 * directory, and over NATS a second host with the same node id (on another directory),
 * fail before they start anything.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Host, HostConfig } from "@synod/node"
import { NatsServer } from "@synod/testing"
import { Kv } from "@synod/kv"
import { Effect, Result } from "effect"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "synod-host-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const config = (raw: object) =>
  Result.getOrThrow(
    HostConfig.decode({
      name: "host",
      cluster: { acceptors: ["s1"], leaders: ["s1"], replicas: ["s1"] },
      node: "s1",
      logLevel: "Warn",
      ...raw
    })
  )

const presence = { presence: { probeTimeout: "300 millis" } } as const

describe("Host.run", () => {
  it.live("refuses a second host on the same data directory, naming the pid that holds it", () =>
    Effect.gen(function* () {
      const dataDir = yield* tempDir
      const c = config({ dataDir, transport: { kind: "memory" } })
      yield* Host.run(c, Kv.machine)
      const error = yield* Host.run(c, Kv.machine).pipe(Effect.flip)
      assert.strictEqual(error._tag, "DataDirLocked")
      assert.include(error.message, `pid ${process.pid}`)
    })
  )

  it.live(
    "over NATS, refuses a second host with the same node id on another data directory",
    () =>
      Effect.gen(function* () {
        const nats = yield* NatsServer.start()
        const dir = yield* tempDir
        const on = (dataDir: string) => config({ dataDir, transport: { kind: "nats", servers: [nats.url] } })
        yield* Host.run(on(join(dir, "a")), Kv.machine, presence)
        const error = yield* Host.run(on(join(dir, "b")), Kv.machine, presence).pipe(Effect.flip)
        assert.strictEqual(error._tag, "DuplicateNode")
        assert.include(error.message, `node id "s1" on cluster "host"`)
      }),
    30_000
  )
})

/**
 * The README's example of swapping the in-memory bus for NATS in a test, verbatim, so the
 * example keeps compiling and working; and the secure server config of "Running it
 * securely", read from the README, is a valid config that `synod nats-config` takes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client, Server } from "@synod/actors"
import { ClusterConfig, Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { NatsServer } from "@synod/testing"
import { NatsTransport } from "@synod/transport-nats"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Serve from "@synod/cluster/Serve"
import { Effect, Layer, Result } from "effect"
import { run } from "./Process.ts"

const config = ClusterConfig.servers(3)

describe("README", () => {
  it.live(
    "puts and gets over NATS",
    () =>
      Effect.gen(function* () {
        const nats = yield* NatsServer.start() // a nats-server on a free port, killed with the test's scope
        const transport = NatsTransport.layer({ servers: [nats.url], name: "test", cluster: "test" }) // was: InMemoryBus.layer()
        const cluster = Server.layerCluster(config, Kv.machine).pipe(
          Layer.provideMerge(Storage.layerMemory()),
          Layer.provideMerge(transport)
        )
        const result = yield* Effect.gen(function* () {
          const client = yield* Client.make(Kv.machine, config)
          yield* client.submit({ _tag: "Put", key: "k", value: "v" })
          return yield* client.submit({ _tag: "Get", key: "k" })
        }).pipe(Effect.provide(cluster))
        assert.deepStrictEqual(result, { _tag: "Value", value: "v", version: 1 })
      }),
    30_000
  )

  it.live(
    "Running it securely: the server config is valid and synod nats-config takes it",
    () =>
      Effect.gen(function* () {
        const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8")
        const section = readme.slice(readme.indexOf("## Running it securely"))
        const json = /```json\n([\s\S]*?)```/.exec(section)![1]!
        const decoded = Serve.decode(JSON.parse(json))
        assert.isTrue(Result.isSuccess(decoded), Result.isFailure(decoded) ? decoded.failure.message : "")
        const http = Result.getOrThrow(decoded).http!
        assert.deepStrictEqual(
          [http.host, http.hosts, http.tls],
          ["0.0.0.0", ["synod1.example.com"], { certFile: "tls.crt", keyFile: "tls.key" }]
        )
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => mkdtempSync(join(tmpdir(), "synod-readme-"))),
          (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
        )
        writeFileSync(join(dir, "s1.json"), json)
        const out = yield* run(["nats-config", "--config", join(dir, "s1.json"), "--clients", "app"])
        assert.strictEqual(out.code, 0, out.stderr)
        assert.deepStrictEqual(
          [...out.stdout.matchAll(/user: "([^"]+)"/g)].map((m) => m[1]),
          ["s1", "s2", "s3", "app"]
        )
      }),
    30_000
  )
})

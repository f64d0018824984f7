/**
 * The README's example of swapping the in-memory bus for NATS in a test, verbatim, so the
 * example keeps compiling and working; the secure server config of "Running it
 * securely", read from the README, is a valid config that `synod nats-config` takes; and
 * the README's usage examples -- the key-value service's curl block and CLI block, then
 * transactions, watches, backup and restore -- run top to bottom, as written, against one
 * cluster in this process, their printed JSON compared with the README's.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client, Server } from "@synod/actors"
import { ClusterConfig, Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { NatsServer } from "@synod/testing"
import { NatsTransport } from "@synod/transport-nats"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Serve from "@synod/cluster/Serve"
import { Effect, Layer, Result } from "effect"
import { startApi } from "./InProcess.ts"
import { http, run } from "./Process.ts"

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

  it("every server config in the README is one synod serve takes", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8")
    const configs = [...readme.matchAll(/```json\n([\s\S]*?)```/g)]
      .map((m) => m[1]!.replace(/^ {2}/gm, ""))
      .filter((json) => json.includes('"cluster"'))
    assert.isAbove(configs.length, 2)
    for (const json of configs) {
      const decoded = Serve.decode(JSON.parse(json))
      assert.isTrue(Result.isSuccess(decoded), `${json}\n${Result.isFailure(decoded) ? decoded.failure.message : ""}`)
    }
    // a config that breaks a rule names the field
    const bad = Serve.decode({
      ...JSON.parse(configs[0]!),
      cluster: { ...config, snapshotBytes: 1000, snapshotMaxBytes: 10 }
    })
    assert.include(
      Result.isFailure(bad) ? bad.failure.message : "",
      "snapshotMaxBytes (10) must be at least snapshotBytes"
    )
  })

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

/**
 * A README section's `sh` block, run against a cluster in this process: `localhost:8080`
 * becomes its address, `npx -y pnpm@10.34.9 synod` the CLI (with `SYNOD_URL` set), and
 * each `# {…}` line under a command is the JSON it must print.
 */
export const runReadmeSection = (
  readme: string,
  heading: string,
  url: string,
  options: { readonly other?: string; readonly cwd?: string; readonly block?: number } = {}
) =>
  Effect.gen(function* () {
    const text = readFileSync(new URL(readme, import.meta.url), "utf8")
    const at = text.indexOf(`${heading}\n`)
    assert.isAtLeast(at, 0, `no section ${heading}`)
    // the section's first `sh` block, or its `block`-th (from 0), before the next heading
    const section = text.slice(at + heading.length + 1).split(/\n#{2,3} /)[0]!
    const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!)
    const block = blocks[options.block ?? 0]
    assert.isDefined(block, `no sh block ${options.block ?? 0} in ${heading}`)
    const lines = block!.replace(/\\\n/g, " ").replace(/'\{\n/g, "'{").split("\n")
    // a body continued over lines inside quotes: join until the quote closes
    const commands: Array<{ command: string; expect: Array<string> }> = []
    let open: string | undefined
    for (const line of lines) {
      if (open !== undefined) {
        open += ` ${line.trim()}`
        if ((open.match(/'/g) ?? []).length % 2 === 0) {
          commands.push({ command: open, expect: [] })
          open = undefined
        }
        continue
      }
      if (line.startsWith("# ")) {
        commands.at(-1)?.expect.push(line.slice(2))
        continue
      }
      if (line.trim() === "") continue
      if ((line.match(/'/g) ?? []).length % 2 === 1) open = line
      else commands.push({ command: line, expect: [] })
    }
    const cli = new URL("../src/cli.ts", import.meta.url).pathname
    for (const { command, expect } of commands) {
      const shell = command
        .replace(/localhost:8080/g, url.replace(/^http:\/\//, ""))
        .replace(/http:\/\/127\.0\.0\.1:9000/g, options.other ?? "http://127.0.0.1:9000")
        .replace(/npx -y pnpm@10\.34\.9 synod/g, `${JSON.stringify(process.execPath)} ${JSON.stringify(cli)}`)
        // `synod` on the PATH (the README's install puts it there)
        .replace(/(^|\$\(|\| )synod /g, `$1${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} `)
      const out = yield* Effect.promise(
        () =>
          new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
            execFile(
              "sh",
              ["-c", shell],
              { env: { ...process.env, SYNOD_URL: url }, ...(options.cwd === undefined ? {} : { cwd: options.cwd }) },
              (error, stdout, stderr) =>
                resolve({ code: error === null ? 0 : Number(error.code ?? -1), stdout, stderr })
            )
          )
      )
      assert.strictEqual(out.code, 0, `${command}\n${out.stderr}`)
      // a command's printed JSON, one document per line (pretty-printed output is one document)
      const trimmed = out.stdout.trim()
      const printed =
        trimmed.startsWith("{") && !trimmed.includes("\n{") ? [trimmed.replace(/\n\s*/g, "")] : trimmed.split("\n")
      expect.forEach((line, i) => {
        const json = line.split(/\s{2,}\(/)[0]!.trim()
        // "…" stands for what depends on the run (revisions, checksums): not compared
        if (json.startsWith("{") && !json.includes("…"))
          assert.deepStrictEqual(JSON.parse(printed[i]!), JSON.parse(json), command)
      })
    }
  })

describe("README examples against a cluster in this process", () => {
  it.live(
    "the key-value, CLI, transaction, watch and backup examples, top to bottom on one cluster, print what the README says",
    () =>
      Effect.gen(function* () {
        const url = yield* startApi
        // in the README's order: curl, the CLI, transactions, watches, backups
        yield* runReadmeSection("../../../README.md", "## The key-value service: `synod`", url)
        yield* runReadmeSection("../../../README.md", "## The key-value service: `synod`", url, { block: 1 })
        yield* runReadmeSection("../../../README.md", "### Reads", url)
        yield* runReadmeSection("../../../README.md", "### Transactions", url)
        assert.strictEqual((yield* http("GET", `${url}/kv/lock`)).status, 404)
        yield* runReadmeSection("../../../README.md", "### Watches", url)
        const other = yield* startApi
        const cwd = mkdtempSync(join(tmpdir(), "synod-readme-"))
        yield* runReadmeSection("../../../README.md", "### Backup and restore", url, { other, cwd })
        assert.deepStrictEqual(
          (yield* http("GET", `${other}/kv?prefix=`)).body,
          (yield* http("GET", `${url}/kv?prefix=`)).body
        )
      }),
    180_000
  )
})

describe("README lease examples against a cluster in this process", () => {
  it.live(
    "leases, ephemeral keys and a lock print what the README says",
    () =>
      Effect.gen(function* () {
        const url = yield* startApi
        const heading = "### Leases, ephemeral keys, locks and elections"
        yield* runReadmeSection("../../../README.md", heading, url)
        assert.strictEqual((yield* http("GET", `${url}/kv/services%2Fweb%2F1`)).status, 404)
        yield* runReadmeSection("../../../README.md", heading, url, { block: 1 })
      }),
    180_000
  )
})

describe("README membership example against a cluster in this process", () => {
  it.live(
    "synod member list, remove and add print what the README says, and writes go on",
    () =>
      Effect.gen(function* () {
        const url = yield* startApi
        yield* runReadmeSection("../../../README.md", "## Membership changes", url)
        const members = (yield* http("GET", `${url}/members`)).body as {
          readonly history: ReadonlyArray<{ readonly members: { readonly acceptors: ReadonlyArray<string> } }>
        }
        // the cluster config, s3 removed, s3 added again
        assert.deepStrictEqual(
          members.history.map((e) => e.members.acceptors),
          [
            ["s1", "s2", "s3"],
            ["s1", "s2"],
            ["s1", "s2", "s3"]
          ]
        )
        assert.strictEqual(((yield* http("GET", `${url}/kv/after-changes`)).body as { value: string }).value, "yes")
      }),
    180_000
  )
})

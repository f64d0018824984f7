/**
 * The OpenAPI document passes Redocly's recommended lint (`@redocly/cli lint`, the rules
 * third-party tooling expects): a summary and a description on every operation, servers,
 * a license, a description on every tag; and the request bodies carry examples.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Api from "@synod/cluster/Api"
import { Effect } from "effect"
import { OpenApi } from "effect/http-api"

const require = createRequire(import.meta.url)
const cli = join(dirname(require.resolve("@redocly/cli/package.json")), "bin/cli.js")
const document = OpenApi.fromApi(Api.Api)

describe("the OpenAPI document", () => {
  it("has a summary and a description on every operation, and examples on every request body", () => {
    let operations = 0
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, op] of Object.entries(item as Record<string, any>)) {
        operations++
        assert.isNotEmpty(op.summary, `${method} ${path}: summary`)
        assert.isNotEmpty(op.description, `${method} ${path}: description`)
        if (op.requestBody !== undefined) {
          const schema = op.requestBody.content["application/json"].schema
          assert.isNotEmpty(schema.examples, `${method} ${path}: request body examples`)
        }
      }
    }
    // kv get, put, delete, cas, list; txn; snapshot save, restore; watch; status, leader transfer, members get and post, healthz, readyz;
    // lease grant, keepalive, revoke, list
    assert.strictEqual(operations, 19)
    // the lists page: a bounded limit and a cursor
    const params = (path: string) =>
      ((document.paths as Record<string, any>)[path].get.parameters as Array<{ name: string; in: string }>)
        .filter((p) => p.in === "query")
        .map((p) => p.name)
        .sort()
    assert.deepStrictEqual(params("/kv"), ["after", "consistency", "limit", "prefix"])
    assert.deepStrictEqual(params("/lease"), ["after", "limit"])
  })

  it.live(
    "passes @redocly/cli lint with the recommended rules: no error, no warning",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "synod-openapi-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
        const file = join(dir, "openapi.json")
        writeFileSync(file, JSON.stringify(document, null, 2))
        const out = yield* Effect.callback<{ code: number; output: string }>((resume) => {
          execFile(
            process.execPath,
            [cli, "lint", "--extends=recommended", "--format=summary", file],
            { cwd: dir, env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" } },
            (error, stdout, stderr) =>
              resume(Effect.succeed({ code: error === null ? 0 : Number(error.code ?? -1), output: stdout + stderr }))
          )
        })
        assert.strictEqual(out.code, 0, out.output)
        assert.notMatch(out.output, /\b(error|warning)\s+\S+:\s+\d+/, out.output)
      }).pipe(Effect.scoped),
    60_000
  )
})

/** One version everywhere: every package.json, the CLI's `--version`, the OpenAPI document. */
import { execFileSync } from "node:child_process"
import { readFileSync, readdirSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { OpenApi } from "effect/http-api"
import * as Api from "@synod/cluster/Api"
import { version } from "@synod/cluster/Version"
import { cli } from "./Process.ts"

const root = new URL("../../../", import.meta.url).pathname

describe("version", () => {
  it("every package.json says the same", () => {
    const files = [
      "package.json",
      ...readdirSync(`${root}packages`).map((p) => `packages/${p}/package.json`),
      ...readdirSync(`${root}apps`).map((a) => `apps/${a}/package.json`)
    ]
    for (const file of files) {
      const pkg = JSON.parse(readFileSync(`${root}${file}`, "utf8")) as { version?: string }
      assert.strictEqual(pkg.version, version, file)
    }
  })

  it("the OpenAPI document and synod --version state it", () => {
    assert.strictEqual(OpenApi.fromApi(Api.Api).info.version, version)
    const out = execFileSync(process.execPath, [cli, "--version"], { encoding: "utf8" })
    assert.include(out, version)
  })
})

/**
 * The data-driven scripts of testdata/: one test per script, run by the harness its name
 * starts with (`leader_*.txt` by the leader's, ...; see datadriven/Cores.ts). A block
 * whose output differs fails the test with its file, line, expected and actual output.
 * `REWRITE=1 pnpm exec vitest run packages/actors/test/DataDriven.test.ts` writes the
 * actual outputs into the scripts instead: review the diff before committing it.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { harnesses } from "./datadriven/Cores.ts"
import { report, runScript } from "./datadriven/Driver.ts"

const dir = fileURLToPath(new URL("./testdata/", import.meta.url))
const rewrite = process.env["REWRITE"] === "1"
const scripts = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith(".txt"))
  .sort()

describe("data-driven scripts", () => {
  it("every script has a harness", () => {
    for (const file of scripts) assert.isDefined(harnesses[file.slice(0, file.indexOf("_"))], file)
  })
  for (const file of scripts) {
    const make = harnesses[file.slice(0, file.indexOf("_"))]
    if (make === undefined) continue
    it(file, () => {
      const mismatches = runScript(path.relative(process.cwd(), path.join(dir, file)), make(), rewrite)
      if (mismatches.length > 0) assert.fail(report(mismatches))
    })
  }
})

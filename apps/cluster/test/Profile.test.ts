/**
 * The benchmark's profile summary (`bench/Profile.ts`): samples by where their time went
 * and the top functions by self time, on a profile made up for the test.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Profile from "../bench/Profile.ts"

const frame = (id: number, functionName: string, url: string) => ({
  id,
  callFrame: { functionName, url, lineNumber: id }
})

// twelve samples, the rarest places first: GC, NATS and effect's runtime 1 each, a synod
// function 2, fsync 3, idle 4
const profile: Profile.CpuProfile = {
  nodes: [
    frame(1, "(idle)", ""),
    frame(2, "fdatasync", ""),
    frame(3, "step", "file:///repo/packages/actors/src/Replica.ts"),
    frame(4, "runLoop", "file:///repo/node_modules/.pnpm/effect@4.1.0/node_modules/effect/dist/internal/effect.js"),
    frame(
      5,
      "parse",
      "file:///repo/node_modules/.pnpm/@nats-io+nats-core@3.4.0/node_modules/@nats-io/nats-core/lib/parser.js"
    ),
    frame(6, "(garbage collector)", "")
  ],
  samples: [6, 5, 4, 3, 3, 2, 2, 2, 1, 1, 1, 1]
}

describe("the profile summary", () => {
  it("shares the samples by where their time went, largest first", () => {
    assert.deepStrictEqual(Profile.byPlace(profile), [
      ["idle", 4 / 12],
      ["blocked in fsync", 3 / 12],
      ["synod actors", 2 / 12],
      ["GC", 1 / 12],
      ["NATS client", 1 / 12],
      ["effect (runtime, schema)", 1 / 12]
    ])
  })

  it("prints, for each process's profile, where the time went and its top functions", () => {
    const dir = mkdtempSync(join(tmpdir(), "synod-profile-test-"))
    try {
      mkdirSync(join(dir, "s1"))
      writeFileSync(join(dir, "s1", "CPU.1.cpuprofile"), JSON.stringify(profile))
      const lines: Array<string> = []
      Profile.printTop(dir, (line) => lines.push(line), 2)
      assert.include(lines.join("\n"), "idle 33.3%, blocked in fsync 25.0%, synod actors 16.7%, GC 8.3%")
      assert.deepStrictEqual(lines.slice(-2), ["   33.3%  (idle)", "   25.0%  fdatasync"])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

/**
 * The README's example of the Promise API (`Client.submitPromise`, `readPromise`), run as
 * written: its block is copied into a module beside this test and imported, and what it
 * prints is what the README's comments say it prints.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { vi } from "vitest"

const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8")

/** The first `ts` block after `marker`. */
const blockAfter = (marker: string): string => {
  const at = readme.indexOf(marker)
  assert.isAtLeast(at, 0, `the README no longer says ${marker}`)
  const found = /```ts\n([\s\S]*?)```/.exec(readme.slice(at))
  assert.isNotNull(found, `no ts block after ${marker}`)
  return found![1]!
}

describe("README", () => {
  it.live(
    "the Promise API's example runs as written and prints what its comments say",
    () =>
      Effect.gen(function* () {
        const block = blockAfter("`client.submitPromise(command)` returns")
        // what each console.log's comment says it prints, in order
        const expected = [...block.matchAll(/console\.log\(.*\) \/\/ (.*)$/gm)].map((m) => m[1]!)
        assert.lengthOf(expected, 2)
        const file = new URL(`./.readme-promise-${process.pid}.ts`, import.meta.url)
        writeFileSync(file, block)
        const printed: Array<string> = []
        // the example's own prints are results (the cluster's log lines go through console.log too)
        const log = vi.spyOn(console, "log").mockImplementation((value: unknown) => {
          if (typeof value === "object" && value !== null && "_tag" in value) printed.push(JSON.stringify(value))
        })
        try {
          yield* Effect.promise(() => import(file.href))
        } finally {
          log.mockRestore()
          rmSync(file, { force: true })
        }
        // the comments are Node's inspection of the value: compare them as JSON
        const asJson = (inspected: string) =>
          JSON.stringify(JSON.parse(inspected.replace(/'/g, '"').replace(/(\w+):/g, '"$1":')))
        assert.deepStrictEqual(printed, expected.map(asJson))
      }),
    30_000
  )
})

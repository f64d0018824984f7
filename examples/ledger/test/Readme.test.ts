/**
 * The root README's "Embedding your own state machine" program, run as written: its code
 * block is written to a temp directory that sees this example's node_modules, and run
 * with Node; it must print the two results the README shows.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"

const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8")
const modules = new URL("../node_modules", import.meta.url).pathname

/** The first ```ts block after `heading`. */
const codeAfter = (heading: string): string => {
  const at = readme.indexOf(heading)
  assert.isAtLeast(at, 0, `README has no "${heading}"`)
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(at))
  assert.isNotNull(block)
  return block![1]!
}

describe("README", () => {
  it.live(
    "Embedding your own state machine: the ledger program runs and prints what the README says",
    () =>
      Effect.gen(function* () {
        const code = codeAfter("## Embedding your own state machine")
        const dir = mkdtempSync(join(tmpdir(), "synod-readme-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
        symlinkSync(modules, join(dir, "node_modules"))
        writeFileSync(join(dir, "ledger.ts"), code)
        const stdout = yield* Effect.callback<string, Error>((resume) => {
          execFile(process.execPath, [join(dir, "ledger.ts")], { cwd: dir, timeout: 30_000 }, (error, out, err) =>
            resume(error === null ? Effect.succeed(out) : Effect.fail(new Error(`${error.message}\n${out}\n${err}`)))
          )
        })
        const expected = code
          .split("\n")
          .filter((line) => line.startsWith("// { _tag"))
          .map((line) => line.slice(3))
        assert.strictEqual(expected.length, 2)
        assert.deepStrictEqual(stdout.trimEnd().split("\n").slice(-2), expected)
      }).pipe(Effect.scoped),
    60_000
  )
})

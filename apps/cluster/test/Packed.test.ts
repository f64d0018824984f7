/**
 * The packages as a project outside the workspace gets them: `pnpm pack` each library
 * package (built first), `npm install` the tarballs into a fresh project in a temp
 * directory, type-check a program there against the packed declarations, and run it: it
 * defines its own state machine, embeds a cluster on the in-memory bus and submits commands
 * (`packed/main.ts`). The packed `synod` command answers `--version` too.
 *
 * It needs the npm registry (for effect and the other dependencies) and takes a minute or so.
 */
import { execFile } from "node:child_process"
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { version } from "@synod/cluster/Version"
import { Effect } from "effect"

const root = new URL("../../../", import.meta.url).pathname
const packages = [
  "packages/core",
  "packages/actors",
  "packages/kv",
  "packages/transport-nats",
  "packages/node",
  "apps/cluster"
]

/** The environment of a process outside the workspace: no source condition (see vitest.shared.ts). */
const outside = (): NodeJS.ProcessEnv => {
  const { NODE_OPTIONS: _, ...env } = process.env
  return env
}

const exec = (file: string, args: ReadonlyArray<string>, cwd: string) =>
  Effect.callback<string, Error>((resume) => {
    execFile(file, args, { cwd, env: outside(), maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
      resume(
        error === null
          ? Effect.succeed(stdout)
          : Effect.fail(new Error(`${file} ${args.join(" ")} in ${cwd}: ${error.message}\n${stdout}\n${stderr}`))
      )
    )
  })

/** pnpm as this run was started with (`pnpm test` sets npm_execpath), else through npx. */
const pnpm = (args: ReadonlyArray<string>, cwd: string) => {
  const execPath = process.env.npm_execpath
  return execPath !== undefined && /pnpm/.test(execPath)
    ? exec(process.execPath, [execPath, ...args], cwd)
    : exec("npx", ["-y", "pnpm@10.34.9", ...args], cwd)
}

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")

describe("the packed packages", () => {
  it.live(
    "install outside the workspace and run a program with its own state machine",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "synod-packed-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
        const tarballs = join(dir, "tarballs")
        const project = join(dir, "project")
        mkdirSync(project)

        // pack (each package's prepack builds it; pnpm writes workspace: and catalog: versions out)
        for (const p of packages) yield* pnpm(["pack", "--pack-destination", tarballs], join(root, p))
        const files = readdirSync(tarballs)
        assert.strictEqual(files.length, packages.length, files.join(", "))

        const dependencies: Record<string, string> = { effect: "4.1.0", "@types/node": "^24" }
        for (const file of files) {
          const name = file.replace(/^synod-/, "@synod/").replace(`-${version}.tgz`, "")
          dependencies[name] = `file:../tarballs/${file}`
        }
        writeFileSync(
          join(project, "package.json"),
          JSON.stringify({ name: "outside", private: true, type: "module", dependencies }, null, 2)
        )
        copyFileSync(new URL("packed/main.ts", import.meta.url), join(project, "main.ts"))
        copyFileSync(new URL("packed/tsconfig.json", import.meta.url), join(project, "tsconfig.json"))
        yield* exec("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], project)

        yield* exec(process.execPath, [tsc, "-p", "tsconfig.json"], project)
        const out = yield* exec(process.execPath, ["main.ts"], project)
        const last = out.trim().split("\n").at(-1)!
        assert.deepStrictEqual(JSON.parse(last), [
          { _tag: "Total", counter: "apples", total: 2 },
          { _tag: "Total", counter: "apples", total: 5 },
          { _tag: "Total", counter: "pears", total: 1 },
          { _tag: "Total", counter: "apples", total: 5 }
        ])

        const bin = yield* exec(process.execPath, [join(project, "node_modules/.bin/synod"), "--version"], project)
        assert.include(bin, version)
      }).pipe(Effect.scoped),
    300_000
  )
})

/**
 * The installed `synod` command, as a user runs it after the README's install: the bin
 * pnpm links into node_modules/.bin (running the built `dist/cli.js`), `pnpm exec synod`
 * without a banner on stdout, shell completions for it, and wrong arguments answered with
 * the error and where the help is.
 */
import { execFile } from "node:child_process"
import { assert, describe, it } from "@effect/vitest"
import { version } from "@synod/cluster/Version"
import { Effect } from "effect"
import { daemon, type Output, run } from "./Process.ts"

const root = new URL("../../../", import.meta.url).pathname
const bin = `${root}node_modules/.bin/synod`

/** Runs a file as a user's shell would: the built packages, not the sources (see vitest.shared.ts). */
const exec = (file: string, args: ReadonlyArray<string>): Effect.Effect<Output> =>
  Effect.callback((resume) => {
    const { NODE_OPTIONS: _, ...env } = process.env
    execFile(file, args, { cwd: root, env, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
      resume(Effect.succeed({ code, stdout, stderr }))
    })
  })

/** pnpm as this run was started with (`pnpm test` sets npm_execpath), else through npx. */
const pnpm = (args: ReadonlyArray<string>) => {
  const execPath = process.env.npm_execpath
  return execPath !== undefined && /pnpm/.test(execPath)
    ? exec(process.execPath, [execPath, ...args])
    : exec("npx", ["-y", "pnpm@10.34.9", ...args])
}

describe("the synod command", () => {
  it.live(
    "node_modules/.bin/synod and pnpm exec synod print only what the command prints",
    () =>
      Effect.gen(function* () {
        const direct = yield* exec(bin, ["--version"])
        assert.deepStrictEqual([direct.code, direct.stdout], [0, `synod v${version}\n`], direct.stderr)
        const viaPnpm = yield* pnpm(["exec", "synod", "--version"])
        assert.deepStrictEqual([viaPnpm.code, viaPnpm.stdout], [0, `synod v${version}\n`], viaPnpm.stderr)

        const up = yield* daemon(["up", "--port", "0"])
        const url = yield* up.waitFor(/HTTP API on (http:\/\/\S+)/)
        const put = yield* exec(bin, ["kv", "put", "greeting", "hello", "--url", url])
        assert.deepStrictEqual([put.code, JSON.parse(put.stdout)], [0, { key: "greeting", version: 1 }], put.stderr)
        // the whole of stdout is one JSON document: `synod kv get greeting | jq .` works
        const get = yield* exec(bin, ["kv", "get", "greeting", "--url", url])
        assert.deepStrictEqual(JSON.parse(get.stdout), { key: "greeting", value: "hello", version: 1 })
      }).pipe(Effect.scoped),
    90_000
  )

  it.live(
    "bash completes its subcommands",
    () =>
      Effect.gen(function* () {
        const script = [
          `source <("${bin}" --completions bash)`,
          `complete -p synod`,
          `COMP_LINE="synod k"; COMP_WORDS=(synod k); COMP_CWORD=1; COMP_POINT=\${#COMP_LINE}`,
          `_synod synod k synod; echo "1: \${COMPREPLY[*]}"`,
          `COMP_LINE="synod kv c"; COMP_WORDS=(synod kv c); COMP_CWORD=2; COMP_POINT=\${#COMP_LINE}`,
          `_synod synod c kv; echo "2: \${COMPREPLY[*]}"`
        ].join("\n")
        const out = yield* exec("bash", ["-c", script])
        assert.strictEqual(out.code, 0, out.stderr)
        assert.include(out.stdout, "complete -F _synod synod")
        assert.include(out.stdout, "1: kv")
        assert.include(out.stdout, "2: cas")
      }),
    60_000
  )

  it.live(
    "a --url that is not an http(s) URL is a usage error, exit 2, not an unreachable cluster",
    () =>
      Effect.gen(function* () {
        const cases = [
          ["kv", "get", "a", "--url", "ftp://x"],
          ["kv", "get", "a", "--url", "notaurl"],
          ["kv", "watch", "--url", "http://127.0.0.1:1,mailto:x"]
        ]
        const outs = yield* Effect.forEach(cases, (args) => run(args), { concurrency: "unbounded" })
        outs.forEach((out, i) => {
          assert.strictEqual(out.code, 2, `${cases[i]!.join(" ")}: ${out.stderr}`)
          assert.include(out.stderr, "is not an http:// or https:// URL")
        })
        // a long rejected argument is cut in the message, not printed whole
        const long = yield* run(["kv", "get", "a".repeat(70_000)])
        assert.strictEqual(long.code, 2)
        assert.include(long.stderr, "(70000 characters)")
        assert.isBelow(long.stderr.length, 1_000)
      }),
    30_000
  )

  it.live(
    "wrong arguments: the error and a pointer to --help on stderr, nothing on stdout, exit 2",
    () =>
      Effect.gen(function* () {
        const cases = [
          [["kv", "put", "only-a-key"], "value", "synod kv put --help"],
          [["kv", "cas", "k", "two", "v"], "<version>", "synod kv cas --help"],
          [["frobnicate"], "frobnicate", "synod --help"],
          [["serve"], "--config", "synod serve --help"]
        ] as const
        const outs = yield* Effect.forEach(cases, ([args]) => run(args), { concurrency: "unbounded" })
        cases.forEach(([args, what, help], i) => {
          const out = outs[i]!
          assert.strictEqual(out.code, 2, `${args.join(" ")}: ${out.stderr}`)
          assert.strictEqual(out.stdout, "", args.join(" "))
          const lines = out.stderr.trimEnd().split("\n")
          assert.strictEqual(lines.length, 2, out.stderr)
          assert.include(lines[0], what)
          assert.strictEqual(lines[1], `Run "${help}" for usage.`)
        })
      }),
    60_000
  )
})

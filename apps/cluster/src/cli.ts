/**
 * `synod`: the entry point of the cluster app's command line (see `Commands.ts` for the
 * commands and exit codes). The `synod` command (`bin/synod.js`) runs its build,
 * `dist/cli.js`; from the sources: `pnpm synod …`.
 *
 * `synod --version` is answered here, before the command line's modules load (Effect, the
 * platform, NATS, the HTTP server: about half a second of a start): scripts and health
 * checks call it often. Its output is the one effect/cli prints.
 *
 * Run as this file without the `@synod/source` condition (`node apps/cluster/src/cli.ts
 * serve …`, as the yardstick in `../shared/peers` starts servers), the workspace's
 * packages already come from their builds; the command line then runs from its build too
 * (`bin/synod.js`), when that build is newer than every file here. Stripping the types of
 * some thirty modules and loading the unbundled graph cost an idle `synod serve` about
 * 25 MiB of resident memory against the bundle (see `Memory.ts` and the README's memory
 * section). With the condition (`pnpm synod`, the tests) or an older build, the sources
 * run.
 */
import { readdirSync, statSync } from "node:fs"
import { version } from "./Version.ts"

/** Whether this is the TypeScript file run without the source condition, next to a build newer than every source. */
const buildIsFresh = (): boolean => {
  if (!import.meta.url.endsWith(".ts") || import.meta.resolve("@synod/cluster/Main").endsWith(".ts")) return false
  try {
    const built = statSync(new URL("../dist/bin/cli.js", import.meta.url)).mtimeMs
    const sources = new URL("./", import.meta.url)
    return readdirSync(sources).every((file) => statSync(new URL(file, sources)).mtimeMs <= built)
  } catch {
    return false
  }
}

const args = process.argv.slice(2)
if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
  process.stdout.write(`synod v${version}\n`)
} else if (buildIsFresh()) {
  // a variable specifier: the bundler must not follow it (the built file never comes here)
  const bin = new URL("../bin/synod.js", import.meta.url).href
  await import(bin)
} else {
  const { main } = await import("./Main.ts")
  main()
}

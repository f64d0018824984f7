/**
 * `synod`: the entry point of the cluster app's command line (see `Commands.ts` for the
 * commands and exit codes). The `synod` command (`bin/synod.js`) runs its build,
 * `dist/cli.js`; from the sources: `pnpm synod …`.
 *
 * `synod --version` is answered here, before the command line's modules load (Effect, the
 * platform, NATS, the HTTP server: about half a second of a start): scripts and health
 * checks call it often. Its output is the one effect/cli prints.
 */
import { version } from "./Version.ts"

const args = process.argv.slice(2)
if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
  process.stdout.write(`synod v${version}\n`)
} else {
  const { main } = await import("./Main.ts")
  main()
}

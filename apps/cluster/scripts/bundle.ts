/**
 * Bundles the `synod` command line (`dist/cli.js`, written by tsc) with everything it
 * imports into `dist/bin/`: one module for `--version` and one for the rest, loaded on
 * demand. A start then reads two files instead of resolving and loading some six hundred
 * modules of Effect, the platform, NATS and synod: `synod serve` loads in about a fifth of
 * the CPU time (`pnpm bench startup`). The packages' `dist/` stay unbundled for libraries.
 *
 * Run by the package's `build` (after `tsc -b`) and `prepack`.
 */
import { rolldown } from "rolldown"

const dir = new URL("../dist/bin/", import.meta.url).pathname
const bundle = await rolldown({
  input: { cli: new URL("../dist/cli.js", import.meta.url).pathname },
  platform: "node",
  logLevel: "warn"
})
await bundle.write({ dir, format: "esm", entryFileNames: "[name].js", chunkFileNames: "[name].js" })
await bundle.close()

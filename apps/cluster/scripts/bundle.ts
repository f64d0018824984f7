/**
 * Bundles the `synod` command line (`dist/cli.js`, written by tsc) with everything it
 * imports into `dist/bin/`: one module for `--version` and one for the rest, loaded on
 * demand. A start then reads two files instead of resolving and loading some six hundred
 * modules of Effect, the platform, NATS and synod: `synod serve` loads in about a fifth of
 * the CPU time (`pnpm bench startup`). The packages' `dist/` stay unbundled for libraries.
 *
 * Comments are left out and non-ASCII characters escaped: V8 keeps a module's source in
 * memory for as long as the module lives (lazy compilation, `Function.prototype.toString`),
 * and one character above U+00FF (a dash in a comment) makes it keep the whole text as two
 * bytes per character. The bundle's source went from 5.5 MiB of heap to 1.7 MiB
 * (`process.memoryUsage().external` of an idle `synod serve`: 9.8 to 5.8 MiB).
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
await bundle.write({
  dir,
  format: "esm",
  entryFileNames: "[name].js",
  chunkFileNames: "[name].js",
  comments: false,
  charset: "ascii"
})
await bundle.close()

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
 * effect's command-line output module builds an `Intl.Segmenter` when it loads (for the
 * width of help text), which maps ICU's segmentation data: about 4 MiB more resident
 * memory in every process, `synod serve` included, that never prints help. The bundle
 * builds it on first use instead (`lazySegmenter`); the build fails if effect's code no
 * longer has the line, so that an upgrade cannot drop this silently.
 *
 * Run by the package's `build` (after `tsc -b`) and `prepack`.
 */
import { rolldown } from "rolldown"

const eagerSegmenter =
  /const graphemeSegmenter = \/\*#__PURE__\*\/new Intl\.Segmenter\(undefined, \{\s*granularity: "grapheme"\s*\}\);/
let segmenterMadeLazy = false
const lazySegmenter = {
  name: "lazy-grapheme-segmenter",
  transform(code: string, id: string) {
    if (!/effect[\\/]dist[\\/]cli[\\/]CliOutput\.js$/.test(id)) return null
    if (!eagerSegmenter.test(code)) {
      throw new Error(`${id} no longer builds its Intl.Segmenter as scripts/bundle.ts expects: update lazySegmenter`)
    }
    segmenterMadeLazy = true
    return code.replace(
      eagerSegmenter,
      "let graphemeSegmenterMade; const graphemeSegmenter = { segment: (text) => " +
        '(graphemeSegmenterMade ??= new Intl.Segmenter(undefined, { granularity: "grapheme" })).segment(text) };'
    )
  }
}

const dir = new URL("../dist/bin/", import.meta.url).pathname
const bundle = await rolldown({
  input: { cli: new URL("../dist/cli.js", import.meta.url).pathname },
  platform: "node",
  logLevel: "warn",
  plugins: [lazySegmenter]
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
// (the bundle is built by `write`: only now has every module been transformed)
if (!segmenterMadeLazy) throw new Error("effect/cli's CliOutput was not bundled: update lazySegmenter in scripts/bundle.ts")

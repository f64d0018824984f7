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
 * `node:http` is loaded with `require`, not `import`: Node builds an ES module's namespace
 * from every export of a built-in, and `node:http`'s `WebSocket`, `CloseEvent` and
 * `MessageEvent` are getters that load undici, Node's fetch, whose 750 KB of source and
 * what it builds stayed in every `synod serve` that never fetches anything: 13 MiB of
 * resident memory of the 88 an idle server took (measured in a bare Node 24: an `import`
 * of `node:http` 59.6 MiB, a `require` 46.5). The build fails if the bundle still imports
 * it, so that a new import cannot bring undici back silently.
 *
 * Last, the build runs `synod serve --help` once, which loads the bundle with Node's
 * compile cache on (`bin/synod.js`) and so fills the cache for it: the first `synod serve`
 * after a build then starts from the cache as every later one does, and idles at the same
 * 77-78 MiB instead of 86 (`pnpm bench memory --keys 0` right after a build, with the
 * cache emptied before it: 86.2-86.4 MiB; after this step: 77.2-77.6).
 *
 * Run by the package's `build` (after `tsc -b`) and `prepack`.
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
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

const nodeHttp = "\0synod:node-http"
const httpByRequire = {
  name: "node-http-by-require",
  resolveId(source: string) {
    return source === "node:http" || source === "http" ? nodeHttp : null
  },
  load(id: string) {
    if (id !== nodeHttp) return null
    // every export but the getters (`maxHeaderSize`, `globalAgent` and the three undici ones)
    return [
      'import { createRequire } from "node:module";',
      'const http = createRequire(import.meta.url)("node:http");',
      "export default http;",
      "export const { METHODS, STATUS_CODES, Agent, ClientRequest, IncomingMessage, OutgoingMessage, Server,",
      "  ServerResponse, createServer, validateHeaderName, validateHeaderValue, get, request, setMaxIdleHTTPParsers } = http;"
    ].join("\n")
  }
}

const dir = new URL("../dist/bin/", import.meta.url).pathname
const bundle = await rolldown({
  input: { cli: new URL("../dist/cli.js", import.meta.url).pathname },
  platform: "node",
  logLevel: "warn",
  plugins: [lazySegmenter, httpByRequire]
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
if (!segmenterMadeLazy)
  throw new Error("effect/cli's CliOutput was not bundled: update lazySegmenter in scripts/bundle.ts")
for (const chunk of ["cli.js", "Main.js", "Version.js"]) {
  if (/from "(node:)?http"/.test(readFileSync(`${dir}${chunk}`, "utf8"))) {
    throw new Error(
      `dist/bin/${chunk} imports node:http as a module (it loads undici): see httpByRequire in scripts/bundle.ts`
    )
  }
}
execFileSync(process.execPath, [new URL("../bin/synod.js", import.meta.url).pathname, "serve", "--help"], {
  stdio: "ignore"
})

#!/usr/bin/env node
// The `synod` command: the bundled command line (dist/bin/cli.js, written by `pnpm build`),
// with Node's compile cache on so that a second start skips compiling what it loads.
import { enableCompileCache } from "node:module"

enableCompileCache()
try {
  await import("../dist/bin/cli.js")
} catch (e) {
  if (e?.code !== "ERR_MODULE_NOT_FOUND" || !String(e.message).includes("dist/bin/cli.js")) throw e
  process.stderr.write("synod is not built: run `pnpm build` (or `pnpm install`) in its workspace\n")
  process.exit(1)
}

#!/usr/bin/env node
// The `synod` command: the built command line (dist/cli.js, written by `pnpm build`), with
// Node's compile cache on so that a second start skips compiling the modules it loads.
import { enableCompileCache } from "node:module"

enableCompileCache()
await import("../dist/cli.js")

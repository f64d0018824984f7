#!/usr/bin/env node
// The `synod` command: the bundled command line (dist/bin/cli.js, written by `pnpm build`),
// with Node's compile cache on so that a second start skips compiling what it loads.
import { enableCompileCache } from "node:module"

// A server (`serve`, `up`) runs with one malloc arena unless MALLOC_ARENA_MAX says
// otherwise. glibc gives each thread that allocates (V8's GC helpers, libuv's pool) an
// arena of its own, and an idle server kept 5 MiB of resident memory in them (`pnpm bench
// memory --keys 0`: 85-86 MiB, 80.3 with one arena; 256 writers over NATS saw no
// difference in throughput). The C library reads the variable only when a process starts,
// so the command replaces itself (execve: same process id, signals and output) with the
// variable set. Short commands skip it: it costs a second start of Node, about 60 ms.
const servers = new Set(["serve", "up"])
const withValue = new Set(["--log-level", "--completions"])
const subcommand = () => {
  const args = process.argv.slice(2)
  for (let i = 0; i < args.length; i++) {
    if (withValue.has(args[i])) i++
    else if (!args[i].startsWith("-")) return args[i]
  }
  return undefined
}
if (
  process.platform === "linux" &&
  process.env.MALLOC_ARENA_MAX === undefined &&
  typeof process.execve === "function" &&
  servers.has(subcommand())
) {
  try {
    process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      ...process.env,
      MALLOC_ARENA_MAX: "1"
    })
  } catch {
    // (no execve here: run as is, with glibc's default arenas)
  }
}

enableCompileCache()
try {
  await import("../dist/bin/cli.js")
} catch (e) {
  if (e?.code !== "ERR_MODULE_NOT_FOUND" || !String(e.message).includes("dist/bin/cli.js")) throw e
  process.stderr.write("synod is not built: run `pnpm build` (or `pnpm install`) in its workspace\n")
  process.exit(1)
}

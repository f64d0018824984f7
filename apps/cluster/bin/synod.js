#!/usr/bin/env node
// The `synod` command: the bundled command line (dist/bin/cli.js, written by `pnpm build`),
// with Node's compile cache on so that a second start skips compiling what it loads.
import { enableCompileCache } from "node:module"

// A server (`serve`, `up`) starts with two settings only a process's start can make,
// unless the user made them (in MALLOC_ARENA_MAX, or on Node's command line or in
// NODE_OPTIONS):
// - one malloc arena (MALLOC_ARENA_MAX=1). glibc gives each thread that allocates (V8's
//   GC helpers, libuv's pool) an arena of its own, and an idle server kept 5 MiB of
//   resident memory in them (`pnpm bench memory --keys 0`: 85-86 MiB, 80.3 with one
//   arena; 256 writers over NATS saw no difference in throughput).
// - a young generation of at most 8 MiB per semi-space (--max-semi-space-size=8). V8's
//   default lets it grow to where one scavenge copied what survived of tens of megabytes:
//   30-60 ms pauses in every server about twice a second under the yardstick's load, and
//   the p99 at 256 clients went from 80-115 ms (3.3-3.8x the p50) to 58-70 ms (2.5-2.9x)
//   with the cap, at the same throughput (and 1,138-1,268 writes/s against 968-1,200 with
//   4 KB values).
// The C library reads the variable and V8 the flag only when a process starts, so the
// command replaces itself (execve: same process id, signals and output) with them set.
// Short commands skip it: it costs a second start of Node, about 60 ms.
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
const semiSpace = "--max-semi-space-size"
const flagged = (flag) =>
  process.execArgv.some((a) => a.startsWith(flag)) || (process.env.NODE_OPTIONS ?? "").includes(flag)
if (process.platform === "linux" && typeof process.execve === "function" && servers.has(subcommand())) {
  const env = process.env.MALLOC_ARENA_MAX === undefined ? { MALLOC_ARENA_MAX: "1" } : {}
  const flags = flagged(semiSpace) ? [] : [`${semiSpace}=8`]
  if (Object.keys(env).length > 0 || flags.length > 0) {
    try {
      process.execve(process.execPath, [process.execPath, ...flags, ...process.execArgv, ...process.argv.slice(1)], {
        ...process.env,
        ...env
      })
    } catch {
      // (no execve here: run as is, with glibc's and V8's defaults)
    }
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

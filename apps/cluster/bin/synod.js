#!/usr/bin/env node
// The `synod` command: the bundled command line (dist/bin/cli.js, written by `pnpm build`),
// with Node's compile cache on so that a second start skips compiling what it loads.

// An older Node fails on what the bundle uses with errors that do not say why: say it here
// (before anything is imported: `enableCompileCache` alone is missing from Node 20's module).
const major = Number(process.versions.node.split(".")[0])
if (!(major >= 24)) {
  process.stderr.write(
    `synod needs Node 24 or later, and this is Node ${process.versions.node}. ` +
      "In synod's workspace `npx -y pnpm@10.34.9 exec synod …` runs it with the Node the workspace installs.\n"
  )
  process.exit(1)
}
const { enableCompileCache } = await import("node:module")

// A server (`serve`, `up`) starts with two settings only a process's start can make,
// unless the user made them (in MALLOC_ARENA_MAX, or on Node's command line or in
// NODE_OPTIONS):
// - one malloc arena (MALLOC_ARENA_MAX=1). glibc gives each thread that allocates (V8's
//   GC helpers, libuv's pool) an arena of its own, and an idle server kept 5 MiB of
//   resident memory in them (`pnpm bench memory --keys 0`: 85-86 MiB, 80.3 with one
//   arena; 256 writers over NATS saw no difference in throughput).
// - a young generation of at most 8 MiB per semi-space (--max-semi-space-size=8). V8's
//   default lets it grow to where one scavenge copies what survived of tens of megabytes:
//   under the yardstick's load at 256 clients (8 s, three servers) 29 scavenges took over
//   20 ms (median 31, longest 58), against 5 (longest 28) with the cap; each stops every
//   role of its process. Throughput and p99 were the same or better in six alternated
//   pairs of runs (p99 57-73 ms either way: the run-to-run spread is as large), and with
//   4 KB values 1,138-1,268 writes/s against 968-1,200.
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

/**
 * `pnpm bench [name] [flags]`: runs one benchmark with its flags, or, without a name, the
 * throughput benchmark over NATS and then the in-memory one. Each runs in its own Node
 * process (the real binary, so Ctrl-C and SIGTERM reach it; they are also forwarded).
 *
 *   pnpm bench                      nats, then inmemory
 *   pnpm bench failover [flags]     leader kills and pauses: time to the next commit
 *   pnpm bench hostile [flags]      garbage on every server subject under load: writes kept, drops counted, logs short
 *   pnpm bench load [flags]         many clients, large values: ops/s per interval, leader changes
 *   pnpm bench memory [flags]       resident memory and heap: idle, while writing 1 M keys, after
 *   pnpm bench nats [flags]         throughput over NATS, 1..256 clients
 *   pnpm bench inmemory [flags]     in-memory 3-server cluster
 *   pnpm bench apply [flags]        the key-value store's apply alone, as three replicas run it
 *   pnpm bench startup [flags]      the built synod command: --version, and a restarted synod serve until it serves
 *   pnpm bench reads [flags]        linearizable reads checked while the leader is paused and killed
 *   pnpm bench floor [flags]        a write's critical path over NATS with no protocol code: the floor under one client;
 *                                   bare NATS request/reply and node:http at 256 clients: the machine's ceilings
 *   pnpm bench log [flags]          an append and its fdatasync on this disk, 3 processes at once: growing the
 *                                   file, into zeroed space, and through the acceptor's log
 *   pnpm bench transfer [flags]     serving a peer's copy of the state: what it holds the replica's loop for
 */
import { spawn } from "node:child_process"

const root = new URL("..", import.meta.url).pathname
const benches: Record<string, string> = {
  failover: "apps/cluster/bench/failover.ts",
  hostile: "apps/cluster/bench/hostile.ts",
  load: "apps/cluster/bench/load.ts",
  memory: "apps/cluster/bench/memory.ts",
  nats: "apps/cluster/bench/nats.ts",
  reads: "apps/cluster/bench/reads.ts",
  inmemory: "packages/actors/bench/inmemory.ts",
  apply: "packages/kv/bench/apply.ts",
  startup: "apps/cluster/bench/startup.ts",
  floor: "packages/transport-nats/bench/floor.ts",
  log: "packages/node/bench/log.ts",
  transfer: "packages/actors/bench/transfer.ts"
}

const runOne = (file: string, args: ReadonlyArray<string>): Promise<number> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [root + file, ...args], { stdio: "inherit", cwd: root })
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal)
    const onInt = forward("SIGINT")
    const onTerm = forward("SIGTERM")
    process.on("SIGINT", onInt)
    process.on("SIGTERM", onTerm)
    child.once("exit", (code) => {
      process.off("SIGINT", onInt)
      process.off("SIGTERM", onTerm)
      resolve(code ?? 1)
    })
  })

const [name, ...args] = process.argv.slice(2)
if (name === undefined) {
  const code = await runOne(benches.nats!, [])
  process.exit(code === 0 ? await runOne(benches.inmemory!, []) : code)
} else if (name in benches) {
  process.exit(await runOne(benches[name]!, args))
} else {
  process.stderr.write(
    `unknown benchmark "${name}"; one of: ${Object.keys(benches).join(", ")} (none: nats, then inmemory)\n`
  )
  process.exit(2)
}

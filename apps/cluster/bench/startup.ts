/**
 * Start-up of the built `synod` command (what a user runs, and what a fail-over waits
 * for): how long `synod --version` takes, and how long a restarted `synod serve` takes from
 * its spawn to serving (`GET /healthz` answers 200) and to ready (`GET /readyz`: caught up,
 * a leader known). Builds first (`tsc -b`, incremental, and the bundle); the command and
 * the servers run the bundle, `bin/synod.js`, not the sources (NODE_OPTIONS of `pnpm bench`
 * dropped).
 *
 *   pnpm bench startup [--runs 10] [--restarts 5]
 *
 * `synod serve`: a nats-server and three servers with data directories; then `--restarts`
 * times the third is SIGKILLed and started again from its data directory. Targets:
 * `--version` median under 0.3 s, a restarted server serving within 1 s (median).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

const root = new URL("../../../", import.meta.url).pathname
const bin = join(root, "apps/cluster/bin/synod.js")
const shim = join(root, "node_modules/.bin/synod")

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`)
  const v = i > 0 ? Number(process.argv[i + 1]) : dflt
  if (!Number.isInteger(v) || v <= 0) {
    process.stderr.write(`--${name} must be a positive integer\n`)
    process.exit(2)
  }
  return v
}
const runs = arg("runs", 10)
const restarts = arg("restarts", 5)

/** The environment a user's shell gives the command: no source condition. */
const { NODE_OPTIONS: _, ...env } = process.env
const print = (line: string) => process.stdout.write(`${line}\n`)
const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!
const ms = (x: number) => `${x.toFixed(0)} ms`
const summary = (xs: ReadonlyArray<number>) =>
  `median ${ms(median(xs))}, min ${ms(Math.min(...xs))}, max ${ms(Math.max(...xs))} (${xs.length} runs)`

const timeExit = (file: string, args: ReadonlyArray<string>) =>
  new Promise<number>((resolve, reject) => {
    const start = performance.now()
    const c = spawn(file, args, { env, stdio: ["ignore", "ignore", "inherit"] })
    c.once("error", reject)
    c.once("exit", (code) =>
      code === 0 ? resolve(performance.now() - start) : reject(new Error(`${file} ${args.join(" ")}: exit ${code}`))
    )
  })

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })

const answers = async (url: string) => {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) })
    return res.status === 200
  } catch {
    return false
  }
}

/** Milliseconds from `start` until `url` answers 200 (polled every 5 ms; gives up after 30 s). */
const until = async (url: string, start: number) => {
  while (!(await answers(url))) {
    if (performance.now() - start > 30_000) throw new Error(`${url} did not answer 200 within 30 s`)
    await new Promise((r) => setTimeout(r, 5))
  }
  return performance.now() - start
}

const stop = (c: ChildProcess, signal: NodeJS.Signals) =>
  new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve()
    c.once("exit", () => resolve())
    c.kill(signal)
  })

// ---------------------------------------------------------------------------------------

print("building (tsc -b apps/cluster, then the bundle)…")
const build = (args: ReadonlyArray<string>) => execFileSync(process.execPath, args, { cwd: root, stdio: "inherit" })
build([createRequire(import.meta.url).resolve("typescript/bin/tsc"), "-b", "apps/cluster"])
build(["apps/cluster/scripts/bundle.ts"])

// synod --version: the first run fills Node's compile cache and is not counted
await timeExit(process.execPath, [bin, "--version"])
const version: Array<number> = []
for (let i = 0; i < runs; i++) version.push(await timeExit(process.execPath, [bin, "--version"]))
print(`synod --version (node bin/synod.js):       ${summary(version)}`)
const viaShim: Array<number> = []
if (existsSync(shim)) {
  for (let i = 0; i < runs; i++) viaShim.push(await timeExit(shim, ["--version"]))
  print(`synod --version (node_modules/.bin/synod): ${summary(viaShim)}  (two shell wrappers in front of Node)`)
}

// synod serve
const dir = mkdtempSync(join(tmpdir(), "synod-startup-"))
const children = new Set<ChildProcess>()
const natsBinary = existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server"
const natsPort = await freePort()
const nats = spawn(natsBinary, ["-a", "127.0.0.1", "-p", String(natsPort)], { stdio: "ignore" })
const ids = ["s1", "s2", "s3"]
const ports = new Map<string, number>()
for (const id of ids) {
  const port = await freePort()
  ports.set(id, port)
  writeFileSync(
    join(dir, `${id}.json`),
    JSON.stringify({
      name: "startup",
      node: id,
      dataDir: join(dir, id),
      cluster: { acceptors: ids, leaders: ids, replicas: ids },
      transport: { kind: "nats", servers: [`nats://127.0.0.1:${natsPort}`] },
      http: { port }
    })
  )
}
const start = (id: string) => {
  const c = spawn(process.execPath, [bin, "serve", "--config", join(dir, `${id}.json`)], {
    env,
    stdio: ["ignore", "ignore", "ignore"]
  })
  children.add(c)
  c.once("exit", () => children.delete(c))
  return c
}
const url = (id: string) => `http://127.0.0.1:${ports.get(id)}`

try {
  await new Promise((r) => setTimeout(r, 200)) // nats-server listening
  const firstStart = performance.now()
  const servers = new Map(ids.map((id) => [id, start(id)]))
  const first = await Promise.all(ids.map((id) => until(`${url(id)}/healthz`, firstStart)))
  await Promise.all(ids.map((id) => until(`${url(id)}/readyz`, firstStart)))
  print(`synod serve, first start of 3 (empty data dirs), serving: ${summary(first)}`)
  const serving: Array<number> = []
  const ready: Array<number> = []
  for (let i = 0; i < restarts; i++) {
    await stop(servers.get("s3")!, "SIGKILL")
    const t = performance.now()
    servers.set("s3", start("s3"))
    serving.push(await until(`${url("s3")}/healthz`, t))
    ready.push(await until(`${url("s3")}/readyz`, t))
    print(`  restart ${i + 1}: serving after ${ms(serving.at(-1)!)}, ready after ${ms(ready.at(-1)!)}`)
  }
  print(`synod serve, restarted from its data dir, serving: ${summary(serving)}`)
  print(`synod serve, restarted from its data dir, ready:   ${summary(ready)}`)
  const pass = (ok: boolean) => (ok ? "PASS" : "FAIL")
  print(`${pass(median(version) < 300)} synod --version median ${ms(median(version))} (target < 300 ms)`)
  print(`${pass(median(serving) < 1000)} synod serve serving median ${ms(median(serving))} (target < 1000 ms)`)
} finally {
  await Promise.all([...children].map((c) => stop(c, "SIGTERM")))
  await stop(nats, "SIGTERM")
  rmSync(dir, { recursive: true, force: true })
}

/**
 * The floor under one client's write over NATS on this machine: the critical path of a
 * Multi-Paxos write with no protocol code at all. Plain `@nats-io/transport-node`
 * processes play the parts: the client requests from the leader's process, which
 * publishes a 300-byte P2a to two acceptor processes and appends it to a file of its own;
 * each acceptor appends (write + `fdatasync`, as synod's acceptor log does) and answers;
 * the leader answers the client at the first remote answer once its own append is done.
 * Four NATS hops and an fsync, each process on its own connection to one nats-server, as
 * `synod serve` runs. Then the same without the appends, and a bare request/reply
 * between two processes, for scale. What synod takes above these is its own.
 *
 * Then the ceilings at 256 clients, for the yardstick's `native`, `http` and `embedded`
 * runs, with the machine's two cores shared by every process as they are there:
 * - NATS: 256 requests in flight from one client process to an echo process, each its own
 *   message (as a JetStream KV put is): no protocol, no disk;
 * - HTTP: 256 keep-alive connections from a `node:http` client process (what the
 *   yardstick's `synod-http` target is) to a `node:http` server that parses each PUT's JSON
 *   body and answers a small JSON object: the fewest a server can do per request.
 * Each prints ops/s and the CPU per operation of every process.
 *
 *   npx -y pnpm@10.34.9 bench floor [--writes 3000] [--seconds 5]
 *
 * It starts its own nats-server (`nats-server` on the PATH) on a free port; a script, not
 * a test.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs"
import { Agent, createServer as createHttpServer, request as httpRequest } from "node:http"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect } from "@nats-io/transport-node"
import { cpuSeconds } from "@synod/testing/ProcessCpu"

const [role, url, name, sync] = process.argv.slice(2)

/** A role's log: an append and, with `sync`, its fdatasync. */
const log = (dir: string, file: string, synced: boolean) => {
  const fd = openSync(join(dir, file), "a")
  return {
    append: (data: Uint8Array) => {
      writeSync(fd, data)
      if (synced) fdatasyncSync(fd)
    },
    close: () => closeSync(fd)
  }
}

const acceptor = async () => {
  const nc = await connect({ servers: url!, name: `floor-${name}` })
  const wal = log(process.env.FLOOR_DIR!, `${name}.log`, sync === "1")
  nc.subscribe(`floor.p2a.${name}`, {
    callback: (_err, msg) => {
      wal.append(msg.data)
      nc.publish("floor.p2b", msg.data.subarray(0, 32))
    }
  })
  await nc.flush()
  process.stdout.write("ready\n")
}

const leader = async () => {
  const nc = await connect({ servers: url!, name: "floor-leader" })
  const wal = log(process.env.FLOOR_DIR!, "leader.log", sync === "1")
  let waiting: string | undefined
  let ownDone = false
  let remoteDone = false
  const answer = () => {
    if (waiting !== undefined && ownDone && remoteDone) {
      nc.publish(waiting, new Uint8Array(16))
      waiting = undefined
    }
  }
  nc.subscribe("floor.req", {
    callback: (_err, msg) => {
      // a P2a of about the size synod's is for one 100-byte Put
      const p2a = new Uint8Array(300).fill(120)
      p2a.set(msg.data.subarray(0, Math.min(msg.data.length, 300)))
      waiting = msg.reply
      ownDone = false
      remoteDone = false
      nc.publish("floor.p2a.a2", p2a)
      nc.publish("floor.p2a.a3", p2a)
      // the P2a leaves at the end of this task (the client flushes on a microtask), then the own append
      queueMicrotask(() => {
        wal.append(p2a)
        ownDone = true
        answer()
      })
    }
  })
  nc.subscribe("floor.p2b", {
    callback: () => {
      remoteDone = true
      answer()
    }
  })
  await nc.flush()
  process.stdout.write("ready\n")
}

const echo = async () => {
  const nc = await connect({ servers: url!, name: "floor-echo" })
  nc.subscribe("floor.echo", {
    callback: (_err, msg) => {
      msg.respond(msg.data)
    }
  })
  await nc.flush()
  process.stdout.write("ready\n")
}

/** A `PUT /kv/{key}` server doing the least a key-value API can: parse the body, answer a version. */
const httpServer = async () => {
  let version = 0
  const server = createHttpServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const { value } = JSON.parse(Buffer.concat(chunks).toString()) as { value: unknown }
      const body = JSON.stringify({ key: decodeURIComponent(req.url!.slice(4)), version: ++version })
      res.writeHead(typeof value === "string" ? 200 : 400, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body)
      })
      res.end(body)
    })
  })
  await new Promise<void>((resolve) => server.listen(Number(url), "127.0.0.1", resolve))
  process.stdout.write("ready\n")
}

/** CPU seconds a process has used; NaN when that cannot be read (then the figures say so). */
const cpuOf = (pid: number | undefined): number => cpuSeconds(pid) ?? Number.NaN

/**
 * `inFlight` closed loops doing `op` for `seconds` after a second of warm-up: ops/s and the
 * CPU per operation (µs) of this process and of each of `pids`.
 */
const closedLoops = async (
  inFlight: number,
  seconds: number,
  op: (i: number) => Promise<unknown>,
  pids: Record<string, number | undefined>
): Promise<string> => {
  let measuring = false
  let done = 0
  let stop = false
  let n = 0
  const loops = Array.from({ length: inFlight }, async () => {
    while (!stop) {
      await op(n++)
      if (measuring) done++
    }
  })
  await new Promise((r) => setTimeout(r, 1000))
  measuring = true
  const self0 = process.cpuUsage()
  const others0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuOf(pid)]))
  const t0 = performance.now()
  await new Promise((r) => setTimeout(r, seconds * 1000))
  const elapsed = (performance.now() - t0) / 1000
  const ops = done
  const self = process.cpuUsage(self0)
  const others = Object.entries(pids).map(([k, pid]) => `${k} ${Math.trunc(((cpuOf(pid) - others0[k]!) * 1e6) / ops)}`)
  measuring = false
  stop = true
  await Promise.all(loops)
  const client = ((self.user + self.system) / ops) | 0
  return `${(ops / elapsed).toFixed(0).padStart(7)} ops/s   CPU µs per op: client ${client}, ${others.join(", ")}`
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const started = (child: ChildProcess, what: string): Promise<void> =>
  new Promise((resolve, reject) => {
    let out = ""
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString()
      if (out.includes("ready")) resolve()
    })
    child.once("exit", (code) => reject(new Error(`${what} exited (${code})`)))
  })

const summary = (latencies: Array<number>): string => {
  const sorted = [...latencies].sort((a, b) => a - b)
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!.toFixed(3)
  return `p50 ${at(50)} ms   p90 ${at(90)} ms   p99 ${at(99)} ms`
}

const main = async () => {
  const at = process.argv.indexOf("--writes")
  const writes = at > 0 ? Number(process.argv[at + 1]) : 3000
  if (!Number.isSafeInteger(writes) || writes < 100 || writes > 1_000_000) {
    process.stderr.write("--writes must be an integer from 100 to 1000000\n")
    process.exit(2)
  }
  const secondsAt = process.argv.indexOf("--seconds")
  const seconds = secondsAt > 0 ? Number(process.argv[secondsAt + 1]) : 5
  if (!Number.isFinite(seconds) || seconds < 1 || seconds > 600) {
    process.stderr.write("--seconds must be a number from 1 to 600\n")
    process.exit(2)
  }
  const port = await freePort()
  const server = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" })
  server.once("error", (e) => {
    process.stderr.write(`cannot start nats-server: ${e.message}\n`)
    process.exit(1)
  })
  const serverUrl = `nats://127.0.0.1:${port}`
  const dir = mkdtempSync(join(tmpdir(), "synod-floor-"))
  const children: Array<ChildProcess> = []
  const run = (args: ReadonlyArray<string>) => {
    const child = spawn(process.execPath, [new URL(import.meta.url).pathname, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, FLOOR_DIR: dir }
    })
    children.push(child)
    return started(child, args.join(" "))
  }
  try {
    let nc: Awaited<ReturnType<typeof connect>> | undefined
    for (let i = 0; i < 50 && nc === undefined; i++) {
      nc = await connect({ servers: serverUrl, name: "floor-client" }).catch(async () => {
        await new Promise((r) => setTimeout(r, 100))
        return undefined
      })
    }
    if (nc === undefined) throw new Error(`nats-server did not come up on ${serverUrl}`)
    process.stdout.write(
      `the floor of one client's write over NATS: 3 processes and a client, one nats-server, ${writes} writes each\n`
    )
    const request = new Uint8Array(200).fill(97)
    for (const synced of ["1", "0"]) {
      await Promise.all([
        run(["acceptor", serverUrl, "a2", synced]),
        run(["acceptor", serverUrl, "a3", synced]),
        run(["leader", serverUrl, "l", synced])
      ])
      const latencies: Array<number> = []
      for (let i = 0; i < writes + 300; i++) {
        const t = performance.now()
        await nc.request("floor.req", request, { timeout: 5000 })
        if (i >= 300) latencies.push(performance.now() - t)
      }
      process.stdout.write(
        `  ${synced === "1" ? "4 hops and an fsync" : "4 hops, no fsync"}:`.padEnd(40) + `${summary(latencies)}\n`
      )
      for (const child of children.splice(0)) child.kill()
    }
    await run(["echo", serverUrl, "e", "0"])
    const latencies: Array<number> = []
    for (let i = 0; i < writes + 300; i++) {
      const t = performance.now()
      await nc.request("floor.echo", request, { timeout: 5000 })
      if (i >= 300) latencies.push(performance.now() - t)
    }
    process.stdout.write(`${"  request/reply, 2 hops (for scale):".padEnd(40)}${summary(latencies)}\n`)

    process.stdout.write(
      `the ceilings at 256 clients: ${seconds} s each after 1 s of warm-up, all processes on this machine\n`
    )
    const echo = children[children.length - 1]
    const natsLine = await closedLoops(256, seconds, () => nc!.request("floor.echo", request, { timeout: 10_000 }), {
      echo: echo?.pid,
      "nats-server": server.pid
    })
    process.stdout.write(`${"  NATS request/reply, 256 in flight:".padEnd(40)}${natsLine}\n`)
    for (const child of children.splice(0)) child.kill()
    await nc.close()

    const httpPort = await freePort()
    await run(["http", String(httpPort), "h", "0"])
    const agent = new Agent({ keepAlive: true, maxSockets: 1024 })
    const body = JSON.stringify({ value: "v".repeat(100) })
    const put = (i: number) =>
      new Promise<void>((resolve, reject) => {
        const req = httpRequest(
          {
            host: "127.0.0.1",
            port: httpPort,
            method: "PUT",
            path: `/kv/k${String(i % 100_000).padStart(15, "0")}`,
            agent,
            headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
          },
          (res) => {
            res.on("data", () => {})
            res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))))
          }
        )
        req.on("error", reject)
        req.end(body)
      })
    const httpLine = await closedLoops(256, seconds, put, { server: children[children.length - 1]?.pid })
    process.stdout.write(`${"  HTTP PUT, 256 keep-alive connections:".padEnd(40)}${httpLine}\n`)
    agent.destroy()
  } finally {
    for (const child of children) child.kill()
    server.kill()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (role === "acceptor") await acceptor()
else if (role === "leader") await leader()
else if (role === "echo") await echo()
else if (role === "http") await httpServer()
else await main()

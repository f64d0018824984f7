import { spawnSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, assert, describe, it } from "@effect/vitest"
import * as Hops from "../bench/Hops.ts"

const dirs: Array<string> = []
const fresh = () => {
  const dir = mkdtempSync(join(tmpdir(), "synod-hops-test-"))
  dirs.push(dir)
  return dir
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** A log line `<µs> <event>` at `ms` milliseconds. */
const at = (ms: number, event: string) => `${Math.round(ms * 1000)} ${event}`

describe("the hop log", () => {
  it("a process started with SYNOD_HOP_LOG writes its events, in order, to <dir>/<pid>.log", () => {
    const dir = fresh()
    const script = join(dir, "marks.ts")
    const core = new URL("../../../packages/core/src/HopLog.ts", import.meta.url).pathname
    writeFileSync(
      script,
      `import { enabled, mark } from ${JSON.stringify(core)}\nif (enabled()) { mark("one"); mark("two") }\n`
    )
    const r = spawnSync(process.execPath, [script], { env: { ...process.env, SYNOD_HOP_LOG: dir }, encoding: "utf8" })
    assert.strictEqual(r.status, 0, r.stderr)
    const logs = readdirSync(dir).filter((f) => f.endsWith(".log"))
    assert.strictEqual(logs.length, 1)
    const lines = readFileSync(join(dir, logs[0]!), "utf8").trim().split("\n")
    assert.deepStrictEqual(
      lines.map((l) => l.split(" ")[1]),
      ["one", "two"]
    )
    const [a, b] = lines.map((l) => Number(l.split(" ")[0]))
    assert.isTrue(b! >= a! && Math.abs(a! / 1000 - Date.now()) < 60_000, "µs since the epoch, in order")
  })

  it("follows each command through the processes and prints each step's median", () => {
    const dir = fresh()
    // two writes through a client (pid 1), the leader's server (2) and another acceptor (3),
    // each `send` line ending with its bytes as HopLog writes it;
    // noise from other commands and roles in between must not be matched
    const write = (t: number, fsync: number) => ({
      client: [
        at(t, "C start"),
        at(t + 0.1, "send replica/s2 Request 100"),
        at(t + 3 + fsync, "recv client/b.0 Response"),
        at(t + 3.1 + fsync, "C done")
      ],
      leader: [
        at(t + 0.3, "recv replica/s2 Request"),
        at(t + 0.35, "step replica/s2 Heartbeat"),
        at(t + 0.4, "step leader/s2 Propose"),
        at(t + 0.5, "send acceptor/s3 P2a 100"),
        at(t + 1.4 + fsync, "recv leader/s2 P2b"),
        at(t + 1.6 + fsync, "step replica/s2 Decision"),
        at(t + 2.0 + fsync, "send client/b.0 Response 100")
      ],
      acceptor: [
        at(t + 0.7, "recv acceptor/s3 P2a"),
        at(t + 0.8, "persist+ acceptor/s3 1"),
        at(t + 0.8 + fsync, "persist- acceptor/s3"),
        at(t + 0.9 + fsync, "send leader/s2 P2b 100")
      ]
    })
    // then two reads: one the leader answers under its read lease, one after a
    // confirmation round (a Confirm to an acceptor and its Confirmed back)
    const read = (t: number, round: boolean) => ({
      client: [
        at(t, "C start"),
        at(t + 0.1, "send replica/s2 Read 100"),
        at(t + 1.2, "recv client/b.0 ReadResponse"),
        at(t + 1.3, "C done")
      ],
      leader: [
        at(t + 0.3, "recv replica/s2 Read"),
        at(t + 0.35, "step leader/s2 ReadIndex"),
        ...(round ? [at(t + 0.4, "send acceptor/s3 Confirm 100"), at(t + 0.8, "recv leader/s2 Confirmed")] : []),
        at(t + 0.9, "step replica/s2 ReadIndexReply"),
        at(t + 0.95, "send client/b.0 ReadResponse 100")
      ],
      acceptor: round ? [at(t + 0.6, "recv acceptor/s3 Confirm"), at(t + 0.65, "send leader/s2 Confirmed 100")] : []
    })
    const a = write(1000, 1)
    const b = write(1010, 3)
    const leased = read(1020, false)
    const confirmed = read(1030, true)
    const end = [at(1040, "C start")]
    const all = [a, b, leased, confirmed]
    writeFileSync(join(dir, "1.log"), [...all.flatMap((c) => c.client), ...end].join("\n"))
    writeFileSync(join(dir, "2.log"), all.flatMap((c) => c.leader).join("\n"))
    writeFileSync(join(dir, "3.log"), all.flatMap((c) => c.acceptor).join("\n"))
    const out: Array<string> = []
    Hops.print(dir, "1", (line) => out.push(line))
    const text = out.join("\n")
    assert.include(text, "write: 2 commands followed end to end")
    const fsync = out.find((l) => l.includes("acceptor: write + fsync"))!
    assert.match(fsync, /\s1\.10\s+3\.10$/, "the median and 90th percentile of 1.1 and 3.1 ms")
    const network = out.find((l) => l.includes("NATS: request"))!
    assert.match(network, /\s0\.20\s+0\.20$/)
    // each read on its own path: a Confirm on the way rules the lease's out
    assert.include(text, "read under the lease: 1 commands followed end to end, p50 1.30 ms")
    assert.include(text, "read with a confirmation round: 1 commands followed end to end, p50 1.30 ms")
    const answered = out.find((l) => l.includes("leader: read index → replica"))!
    assert.match(answered, /\s0\.55\s+0\.55$/)
  })
})

/**
 * Benchmark: what one append and its `fdatasync` take on this machine's disk, with
 * `--processes` (3) processes appending at once, as a cluster's acceptors do on one
 * machine. Three ways, each process its own file in `--dir` (default: the OS's temp dir):
 *
 * - `grow`: `--record-bytes` (200) appended to the file, then `fdatasync` (each sync also
 *   commits the file's new size: on ext4 a journal commit);
 * - `zeroed`: the same bytes written into space zeroed and synced beforehand, then
 *   `fdatasync` (no size changes);
 * - `wal`: the acceptor's log itself (`Wal.open` on the durable file system, as `synod
 *   serve` runs it), the tests' records (a promise and a one-command pvalue, 150-200
 *   bytes framed) appended one at a time.
 *
 * Prints each process's p50, p90 and p99 in µs and its appends per second.
 *
 *   pnpm bench log [--processes 3] [--appends 3000] [--record-bytes 200] [--dir D]
 */
import { spawn } from "node:child_process"
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodePath } from "@effect/platform-node"
import * as DurableFileSystem from "@synod/node/DurableFileSystem"
import * as Wal from "@synod/node/Wal"
import { Effect, Layer } from "effect"
import { record } from "../test/fixtures/records.ts"

const flag = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) return dflt
  const v = Number(process.argv[i + 1])
  if (!Number.isInteger(v) || v <= 0) {
    process.stderr.write(`--${name} must be a positive integer, got ${process.argv[i + 1]}\n`)
    process.exit(2)
  }
  return v
}
const text = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? undefined : process.argv[i + 1]
}

const modes = ["grow", "zeroed", "wal"] as const
type Mode = (typeof modes)[number]

/** p50, p90, p99 of `micros` in µs, and appends per second over `seconds`. */
const summary = (micros: Array<number>, seconds: number): string => {
  micros.sort((a, b) => a - b)
  const at = (p: number) => micros[Math.min(micros.length - 1, Math.floor(p * micros.length))]!.toFixed(0)
  return `p50 ${at(0.5).padStart(5)} µs   p90 ${at(0.9).padStart(5)}   p99 ${at(0.99).padStart(6)}   ${Math.round(micros.length / seconds)} appends/s`
}

/** One process's appends in `mode` to `file`: its summary line. */
const child = async (mode: Mode, file: string, appends: number, recordBytes: number): Promise<string> => {
  const micros: Array<number> = []
  const started = performance.now()
  if (mode === "wal") {
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const wal = yield* Wal.open(file)
          for (let seq = 1; seq <= appends; seq++) {
            const t = performance.now()
            yield* wal.append(record(seq))
            micros.push((performance.now() - t) * 1000)
          }
        })
      ).pipe(Effect.provide(Layer.mergeAll(DurableFileSystem.layer, NodePath.layer)))
    )
  } else {
    const bytes = Buffer.alloc(recordBytes, 0x61)
    const fd = openSync(file, mode === "grow" ? "a" : "w+")
    if (mode === "zeroed") {
      const zeros = Buffer.alloc(appends * recordBytes)
      writeSync(fd, zeros, 0, zeros.length, 0)
      fdatasyncSync(fd)
    }
    for (let i = 0; i < appends; i++) {
      const t = performance.now()
      if (mode === "grow") writeSync(fd, bytes)
      else writeSync(fd, bytes, 0, bytes.length, i * recordBytes)
      fdatasyncSync(fd)
      micros.push((performance.now() - t) * 1000)
    }
    closeSync(fd)
  }
  return summary(micros, (performance.now() - started) / 1000)
}

const run = (args: ReadonlyArray<string>): Promise<string> =>
  new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [new URL(import.meta.url).pathname, ...args], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    c.stdout.on("data", (d: Buffer) => {
      out += d.toString()
    })
    c.once("exit", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`a child exited with ${code}`))))
  })

const childAt = process.argv.indexOf("--child")
if (childAt >= 0) {
  const mode = process.argv[childAt + 1] as Mode
  process.stdout.write(`${await child(mode, text("file")!, flag("appends", 3000), flag("record-bytes", 200))}\n`)
} else {
  const processes = flag("processes", 3)
  const appends = flag("appends", 3000)
  const recordBytes = flag("record-bytes", 200)
  const dir = mkdtempSync(join(text("dir") ?? tmpdir(), "synod-log-bench-"))
  console.log(
    `the log's disk: ${processes} processes at once, each ${appends} appends of ${recordBytes} bytes, each followed by fdatasync (${dir})`
  )
  try {
    for (const mode of modes) {
      const lines = await Promise.all(
        Array.from({ length: processes }, (_, i) =>
          run([
            "--child",
            mode,
            "--file",
            join(dir, `${mode}-${i}`),
            "--appends",
            String(appends),
            "--record-bytes",
            String(recordBytes)
          ])
        )
      )
      for (const [i, line] of lines.entries()) console.log(`${mode.padEnd(7)} ${i + 1}  ${line}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

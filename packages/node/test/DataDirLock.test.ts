/**
 * One process per data directory: a live owner (this process or a child) is refused with
 * its pid named; a lock left by a SIGKILLed child, or an empty one, is taken over; closing
 * the scope releases the lock.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { NodeFileSystem, NodePath } from "@effect/platform-node"
import { AtomicFile, DataDirLock } from "@synod/node"
import { Effect, Exit, Layer, Scope } from "effect"

const fixture = new URL("./fixtures/hold-lock.ts", import.meta.url).pathname

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "synod-lock-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** The pid recorded in the lock file of `dir`. */
const ownerPid = (dir: string): number => JSON.parse(readFileSync(join(dir, DataDirLock.fileName), "utf8")).pid

/** Runs the fixture on `dir` until it has printed `locked`; SIGKILLed when the scope closes. */
const holder = (dir: string) =>
  Effect.acquireRelease(
    Effect.callback<ChildProcess>((resume) => {
      const child = spawn(process.execPath, [fixture, dir], { stdio: ["ignore", "pipe", "inherit"] })
      child.stdout.on("data", (d: Buffer) => {
        if (d.toString().includes("locked")) resume(Effect.succeed(child))
      })
      child.once("exit", (code) => resume(Effect.die(new Error(`hold-lock exited with ${code}`))))
    }),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )

const killed = (child: ChildProcess) =>
  Effect.callback<void>((resume) => {
    child.once("exit", () => resume(Effect.void))
    child.kill("SIGKILL")
  })

/** The refusal of `acquire`, or a test failure. */
const refusal = (dir: string) =>
  DataDirLock.acquire(dir).pipe(
    Effect.scoped,
    Effect.flip,
    Effect.map((e) => (e._tag === "DataDirLocked" ? e : assert.fail(`expected DataDirLocked, got ${e.reason}`)))
  )

/** Acquires the lock in a scope of its own (closed by the caller, or with the test's): the result and the scope. */
const lockIn = Effect.fnUntraced(function* (dir: string) {
  const scope = yield* Scope.fork(yield* Effect.scope)
  const exit = yield* DataDirLock.acquire(dir).pipe(Scope.provide(scope), Effect.exit)
  return { exit, scope }
})

describe("data directory lock", () => {
  it.live("refuses a second lock in this process, naming this pid, and releases on scope close", () =>
    Effect.gen(function* () {
      const dir = join(yield* tempDir, "data")
      const first = yield* lockIn(dir)
      assert.isTrue(Exit.isSuccess(first.exit))
      assert.strictEqual(ownerPid(dir), process.pid)

      const second = yield* refusal(dir)
      assert.strictEqual(second.pid, process.pid)
      assert.include(second.message, `pid ${process.pid}`)
      assert.include(second.message, dir)
      // the refused attempt left the owner's file alone
      assert.strictEqual(ownerPid(dir), process.pid)

      yield* Scope.close(first.scope, Exit.void)
      assert.isFalse(existsSync(join(dir, DataDirLock.fileName)))
      const again = yield* lockIn(dir)
      assert.isTrue(Exit.isSuccess(again.exit))
      yield* Scope.close(again.scope, Exit.void)
    })
  )

  it.live(
    "refuses while another process holds it, naming its pid; takes over once that process is SIGKILLed",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const child = yield* holder(dir)
        assert.strictEqual(ownerPid(dir), child.pid)

        const refused = yield* refusal(dir)
        assert.strictEqual(refused.pid, child.pid)
        assert.include(refused.message, `pid ${child.pid}`)

        yield* killed(child)
        // SIGKILL runs no finalizer: the file stays, naming a dead pid
        assert.strictEqual(ownerPid(dir), child.pid)
        const taken = yield* lockIn(dir)
        assert.isTrue(Exit.isSuccess(taken.exit))
        assert.strictEqual(ownerPid(dir), process.pid)
        yield* Scope.close(taken.scope, Exit.void)
        assert.isFalse(existsSync(join(dir, DataDirLock.fileName)))
      }),
    30_000
  )

  it.live("takes over an empty lock file (an owner that crashed before writing it) after a pause", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      writeFileSync(join(dir, DataDirLock.fileName), "")
      const taken = yield* lockIn(dir)
      assert.isTrue(Exit.isSuccess(taken.exit))
      assert.strictEqual(ownerPid(dir), process.pid)
      yield* Scope.close(taken.scope, Exit.void)
    })
  )

  it.live(
    "takes over a lock whose pid now belongs to another process (the owner died, its pid was reused)",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const file = join(dir, DataDirLock.fileName)
        // a live process that is not a synod: what a dead owner's pid may now be
        const other = yield* Effect.acquireRelease(
          Effect.sync(() => spawn("sleep", ["30"], { stdio: "ignore" })),
          (child) => Effect.sync(() => child.kill("SIGKILL"))
        )
        const lock = (process?: string) =>
          `${JSON.stringify({ pid: other.pid, host: "h", startedAt: "2026-01-01T00:00:00.000Z", ...(process === undefined ? {} : { process }) })}\n`

        // a lock file of an older synod names no process: a live pid is taken as its owner
        writeFileSync(file, lock())
        assert.strictEqual((yield* refusal(dir)).pid, other.pid)

        // the same pid, but the owner recorded another start: not the owner
        writeFileSync(file, lock("00000000-0000-0000-0000-000000000000/1"))
        const taken = yield* lockIn(dir)
        assert.isTrue(Exit.isSuccess(taken.exit))
        assert.strictEqual(ownerPid(dir), process.pid)
        const mine = JSON.parse(readFileSync(file, "utf8")).process
        assert.match(mine, /^[0-9a-f-]+\/\d+$/)
        yield* Scope.close(taken.scope, Exit.void)
      }),
    30_000
  )

  it.live(
    "a data directory the kernel will not create (under /proc) fails the start with the reason, where Node's recursive mkdir never returned",
    () =>
      Effect.gen(function* () {
        const error = yield* DataDirLock.acquire("/proc/synod-no-such-dir/data").pipe(Effect.scoped, Effect.flip)
        assert.strictEqual(error._tag, "StorageError")
        assert.include(error._tag === "StorageError" ? error.reason : "", "ENOENT")
        const made = yield* AtomicFile.makeDirectory("/proc/synod-no-such-dir/data").pipe(
          Effect.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer)),
          Effect.flip
        )
        assert.include(String(made), "NotFound: FileSystem.makeDirectory (/proc/synod-no-such-dir)")
      }),
    10_000
  )

  it.live(
    "takes over a lock whose owner was killed and is a zombie its parent has not collected",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        // the holder's parent is a shell that sleeps without collecting it: it stays a zombie
        const held = yield* Effect.acquireRelease(
          Effect.callback<{ readonly shell: ChildProcess; readonly pid: number }>((resume) => {
            const shell = spawn("sh", ["-c", `"${process.execPath}" "${fixture}" "${dir}" & echo $!; exec sleep 30`], {
              stdio: ["ignore", "pipe", "inherit"]
            })
            let out = ""
            shell.stdout.on("data", (d: Buffer) => {
              out += d.toString()
              const [pid, rest] = out.split("\n")
              if (rest?.includes("locked")) resume(Effect.succeed({ shell, pid: Number(pid) }))
            })
          }),
          ({ shell }) => Effect.sync(() => shell.kill("SIGKILL"))
        )
        process.kill(held.pid, "SIGKILL")
        // wait until it is a zombie
        for (let i = 0; i < 100 && !readFileSync(`/proc/${held.pid}/stat`, "utf8").includes(") Z"); i++) {
          yield* Effect.sleep("20 millis")
        }
        assert.include(readFileSync(`/proc/${held.pid}/stat`, "utf8"), ") Z")
        assert.strictEqual(ownerPid(dir), held.pid)
        const taken = yield* lockIn(dir)
        assert.isTrue(Exit.isSuccess(taken.exit))
        assert.strictEqual(ownerPid(dir), process.pid)
        yield* Scope.close(taken.scope, Exit.void)
      }),
    30_000
  )
})

/**
 * One process per data directory. Two processes on one directory would each hold an
 * acceptor's log in memory and append to it behind the other's back, so a process locks
 * its data directory before it opens any storage, and holds the lock until its scope
 * closes.
 *
 * Node has no `flock`; the lock is a PID file, as PostgreSQL's `postmaster.pid`:
 * `<dataDir>/synod.pid`, created exclusively (`wx`), holding the owner's pid, host and
 * start time. When the file exists:
 *
 * - its pid is alive and not ours: `DataDirLocked`, naming the directory and the pid;
 * - its pid is dead (a SIGKILLed or crashed process), or ours (a pid reused by a new
 *   process, as pid 1 in containers): the lock is stale; it is logged and replaced;
 * - its pid is alive but is another process than the one that wrote the file (the owner
 *   died and the kernel gave its pid to a new process, or the machine rebooted): stale
 *   too. Where the kernel says (Linux's `/proc`), the file records the owner's boot id and
 *   start time (`/proc/<pid>/stat`'s `starttime`), and a live pid whose own differ is not
 *   the owner. Without `/proc` a live pid counts as the owner;
 * - it does not decode (an owner between creating and writing it): asked again for a
 *   second, then taken as stale (an owner that crashed right after creating it).
 *
 * A second lock on the same directory inside this process is refused too. Closing the
 * scope removes the file, if it is still ours.
 *
 * @since 0.1.0
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs"
import { hostname } from "node:os"
import { dirname, join, resolve } from "node:path"
import { Storage } from "@synod/core"
import { Clock, Data, Effect, Option, Schema } from "effect"

/** The lock file's name inside the data directory. */
export const fileName = "synod.pid"

export class DataDirLocked extends Data.TaggedError("DataDirLocked")<{
  readonly dataDir: string
  /** The owner's pid. */
  readonly pid: number
  readonly message: string
}> {}

const Owner = Schema.Struct({
  pid: Schema.Int,
  host: Schema.String,
  startedAt: Schema.String,
  /** `<boot id>/<starttime>` of the owner, where `/proc` tells them (a lock file of an older synod has none). */
  process: Schema.optionalKey(Schema.String)
})
const OwnerJson = Schema.fromJsonString(Owner)
const decodeOwner = Schema.decodeUnknownOption(OwnerJson)
const encodeOwner = Schema.encodeSync(OwnerJson)

/** The files this process holds a lock in. */
const held = new Set<string>()

const errno = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e ? String(e.code) : undefined

/**
 * The fields of `/proc/<pid>/stat` from the third on (`[0]` is the state, `[19]` the start
 * time); undefined where there is no `/proc` (not Linux) or the process is gone.
 */
const statFields = (pid: number | "self"): ReadonlyArray<string> | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // the command's name (field 2) may hold spaces and parentheses: count from after the last ')'
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  } catch {
    return undefined
  }
}

/** Whether `pid` is a zombie: dead, waiting for its parent to collect it (false where `/proc` does not tell). */
const isZombie = (pid: number): boolean => statFields(pid)?.[0] === "Z"

/**
 * Whether `pid` runs. A zombie does not: a SIGKILLed owner stays one until its parent
 * collects it (up to a second under a supervisor, for ever under a container's pid 1 that
 * collects nothing), and a restart meanwhile must take its lock.
 */
const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch (e) {
    // EPERM: it exists, under another user
    if (errno(e) !== "EPERM") return false
  }
  return !isZombie(pid)
}

/**
 * Who `pid` is, as the kernel tells it: the boot's id and the process's start time in
 * clock ticks since boot, which together no other process shares. Undefined where there
 * is no `/proc` (not Linux) or the process is gone.
 */
const processIdentity = (pid: number | "self"): string | undefined => {
  let boot: string
  try {
    boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()
  } catch {
    return undefined
  }
  // field 22, starttime
  const start = statFields(pid)?.[19]
  return boot !== "" && start !== undefined && /^\d+$/.test(start) ? `${boot}/${start}` : undefined
}

/** Whether the live process `pid` is the one a lock file's owner names. */
const isOwner = (owner: typeof Owner.Type): boolean => {
  if (owner.process === undefined) return true
  const now = processIdentity(owner.pid)
  return now === undefined || now === owner.process
}

/**
 * Creates `dir` and its missing parents one level at a time: Node's `recursive` creation
 * never returns where the kernel answers ENOENT for a parent that exists (under /proc).
 */
const makeDirectories = (dir: string): void => {
  const missing: Array<string> = []
  for (let d = dir; !existsSync(d) && dirname(d) !== d; d = dirname(d)) missing.push(d)
  for (const d of missing.toReversed()) {
    try {
      mkdirSync(d)
    } catch (e) {
      if (errno(e) !== "EEXIST") throw e
    }
  }
}

/** Creates `file` with `contents` unless it exists (then `false`). */
const create = (file: string, contents: string): boolean => {
  let fd: number
  try {
    fd = openSync(file, "wx", 0o644)
  } catch (e) {
    if (errno(e) === "EEXIST") return false
    throw e
  }
  try {
    writeSync(fd, contents)
    fsyncSync(fd)
  } catch (e) {
    unlinkSync(file)
    throw e
  } finally {
    closeSync(fd)
  }
  return true
}

const read = (file: string): string | undefined => {
  try {
    return readFileSync(file, "utf8")
  } catch (e) {
    if (errno(e) === "ENOENT") return undefined
    throw e
  }
}

/** Removes `file` if it still holds `contents`; a narrow check against removing a lock someone just took. */
const removeIf = (file: string, contents: string): void => {
  if (read(file) !== contents) return
  try {
    unlinkSync(file)
  } catch (e) {
    if (errno(e) !== "ENOENT") throw e
  }
}

const io = <A>(what: string, file: string, f: () => A) =>
  Effect.try({
    try: f,
    catch: (cause) =>
      new Storage.StorageError({
        reason: `cannot ${what} ${file}: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause
      })
  })

const refuse = (dataDir: string, pid: number, by: string) =>
  new DataDirLocked({
    dataDir,
    pid,
    message: `data directory ${dataDir} is in use by ${by}: one process per data directory (stop it, or use another dataDir)`
  })

/**
 * Locks `dataDir` (created if missing) until the scope closes; fails with
 * `DataDirLocked` when a live process, this one included, holds it.
 */
export const acquire = Effect.fn("DataDirLock.acquire")(function* (dataDir: string) {
  const dir = resolve(dataDir)
  const file = join(dir, fileName)
  if (held.has(file)) return yield* refuse(dir, process.pid, `this process (pid ${process.pid})`)
  yield* io("create", dir, () => makeDirectories(dir))
  const startedAt = new Date(yield* Clock.currentTimeMillis).toISOString()
  const identity = processIdentity("self")
  const contents = `${encodeOwner({
    pid: process.pid,
    host: hostname(),
    startedAt,
    ...(identity === undefined ? {} : { process: identity })
  })}\n`
  for (let attempt = 1; attempt <= 20; attempt++) {
    if (yield* io("create", file, () => create(file, contents))) {
      held.add(file)
      return yield* Effect.acquireRelease(Effect.succeed(file), () =>
        Effect.sync(() => held.delete(file)).pipe(
          Effect.andThen(io("remove", file, () => removeIf(file, contents))),
          Effect.catch((e) => Effect.logWarning("cannot remove the data directory lock", { error: e.reason }))
        )
      )
    }
    const text = yield* io("read", file, () => read(file))
    // gone meanwhile: its owner stopped; try again
    if (text === undefined) continue
    const owner = decodeOwner(text.trim())
    if (Option.isNone(owner) && attempt <= 10) {
      yield* Effect.sleep("100 millis")
      continue
    }
    if (Option.isSome(owner) && owner.value.pid !== process.pid && isAlive(owner.value.pid) && isOwner(owner.value)) {
      const o = owner.value
      return yield* refuse(dir, o.pid, `pid ${o.pid} on host ${o.host} (started ${o.startedAt})`)
    }
    yield* Effect.logWarning("taking over a stale data directory lock", {
      file,
      owner: Option.match(owner, {
        onNone: () => "unreadable",
        onSome: (o) =>
          o.pid !== process.pid && isAlive(o.pid) ? `pid ${o.pid}, now another process` : `pid ${o.pid}, not running`
      })
    })
    yield* io("remove", file, () => removeIf(file, text))
  }
  return yield* new Storage.StorageError({ reason: `cannot lock ${dir}: ${file} keeps changing` })
})

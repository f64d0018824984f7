/**
 * Node's `FileSystem` with the small appends and their fsyncs done synchronously: what
 * the acceptor's log does once per batch, on the path of every write.
 *
 * Node runs `fs.write` and `fs.fsync` on its thread pool: each is a hand-off to a worker
 * thread and a wake-up of the event loop when it ends, two per batch. On a small virtual
 * machine those hand-offs cost more than the disk (measured on the project's 2-core VM: a
 * 300-byte append and its fsync take 0.35 ms from the event loop through the thread
 * pool, 0.22 ms done in place; under the benchmark's load the log's step took 1.25 ms).
 * Done in place, the event loop waits for the disk instead, and what arrives meanwhile
 * waits in the socket for the next batch, which group commit then writes at once.
 *
 * Only files opened for appending (`a`, `ax`, `a+`, `ax+`) or for reading and writing at
 * a cursor (`r+`, `w+`, `wx+`: the acceptor's log, which writes into space it zeroed
 * beforehand) are changed, and only while what is written between two fsyncs stays under
 * `maxSyncBytes`: writes then go where the OS puts appends, or at the cursor the file
 * keeps, so synchronous and asynchronous writes mix, and a large write (a checkpoint, a
 * snapshot) still goes through the thread pool instead of stalling the event loop for the
 * time it takes to reach the disk. The fsync is `fdatasync`: an append's data and the
 * file's size are what must survive, not its times.
 *
 * @since 0.2.0
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, FileSystem, Layer } from "effect"
import { type PlatformError, type SystemErrorTag, systemError } from "effect/PlatformError"
import * as NodeFs from "node:fs"

/** Most bytes written between two fsyncs for them to be written and synced in place. */
export const maxSyncBytes = 1024 * 1024

const reasonOf = (code: string | undefined): SystemErrorTag => {
  switch (code) {
    case "ENOENT":
      return "NotFound"
    case "EACCES":
    case "EPERM":
      return "PermissionDenied"
    case "EBADF":
    case "EISDIR":
      return "BadResource"
    case "EBUSY":
      return "Busy"
    default:
      return "Unknown"
  }
}

const failure = (method: string, fd: number, cause: unknown): PlatformError => {
  const error = cause as NodeJS.ErrnoException
  return systemError({
    _tag: reasonOf(error?.code),
    module: "FileSystem",
    method,
    pathOrDescriptor: fd,
    syscall: error?.syscall,
    description: error?.message,
    cause
  })
}

/** The descriptor of a file Node's `FileSystem` opened (its `File` keeps it as `fd`). */
const descriptorOf = (file: FileSystem.File): number | undefined => {
  const fd = (file as { readonly fd?: unknown }).fd
  return typeof fd === "number" ? fd : undefined
}

/**
 * `file` with its small writes and fsyncs done in place: appended (`cursor` false: the OS
 * puts them at the end), or at the cursor `file` keeps (`cursor` true), mirrored here so
 * that a write done in place lands where `file`'s own would and moves its cursor alike.
 */
const inPlace = (file: FileSystem.File, fd: number, cursor: boolean): FileSystem.File => {
  // bytes written since the last fsync, through either path
  let unsynced = 0
  // `file`'s cursor (cursor files only)
  let position = 0n
  const seek = (offset: bigint, from: FileSystem.SeekMode) =>
    Effect.map(file.seek(offset, from), (at) => {
      position = at
      return at
    })
  /** `effect`, then the cursor read back from `file`: its reads and writes move it. */
  const tracked = <A>(effect: Effect.Effect<A, PlatformError>): Effect.Effect<A, PlatformError> =>
    cursor
      ? Effect.flatMap(effect, (a) =>
          Effect.map(file.seek(0n, "current"), (at) => {
            position = at
            return a
          })
        )
      : effect
  return {
    [FileSystem.FileTypeId]: FileSystem.FileTypeId,
    get stat() {
      return file.stat
    },
    seek,
    get sync() {
      return Effect.suspend(() => {
        if (unsynced > maxSyncBytes) {
          return Effect.map(file.sync, () => {
            unsynced = 0
          })
        }
        return Effect.try({
          try: () => {
            NodeFs.fdatasyncSync(fd)
            unsynced = 0
          },
          catch: (cause) => failure("sync", fd, cause)
        })
      })
    },
    read: (buffer, options) => tracked(file.read(buffer, options)),
    readAlloc: (size, options) => tracked(file.readAlloc(size, options)),
    truncate: (length) => tracked(file.truncate(length)),
    write: (buffer) =>
      tracked(
        Effect.map(file.write(buffer), (n) => {
          unsynced += n
          return n
        })
      ),
    writeAll: (buffer) =>
      Effect.suspend(() => {
        unsynced += buffer.length
        if (unsynced > maxSyncBytes) return tracked(file.writeAll(buffer))
        const written = Effect.try({
          try: () => {
            const start = Number(position)
            for (let at = 0; at < buffer.length; ) {
              const n = cursor
                ? NodeFs.writeSync(fd, buffer, at, buffer.length - at, start + at)
                : NodeFs.writeSync(fd, buffer, at)
              if (n === 0) throw Object.assign(new Error("write returned 0 bytes written"), { syscall: "write" })
              at += n
            }
          },
          catch: (cause) => failure("writeAll", fd, cause)
        })
        if (!cursor) return written
        // `file`'s cursor moved as its own write would have moved it
        return Effect.andThen(written, Effect.asVoid(seek(position + BigInt(buffer.length), "start")))
      })
  }
}

/** How `open`'s `flag` writes: appending, at a cursor, or neither (left to Node's `File`). */
const writesOf = (flag: string | undefined): "append" | "cursor" | undefined => {
  if (flag?.startsWith("a") === true) return "append"
  if (flag === "r+" || flag === "w+" || flag === "wx+") return "cursor"
  return undefined
}

/** Node's `FileSystem`, with files opened for appending or at a cursor written and synced in place while small. */
export const layer: Layer.Layer<FileSystem.FileSystem> = Layer.effect(
  FileSystem.FileSystem,
  Effect.gen(function* () {
    const node = yield* FileSystem.FileSystem
    return FileSystem.FileSystem.of({
      ...node,
      open: (path, options) =>
        Effect.map(node.open(path, options), (file) => {
          const fd = descriptorOf(file)
          const writes = writesOf(options?.flag)
          return fd !== undefined && writes !== undefined ? inPlace(file, fd, writes === "cursor") : file
        })
    })
  })
).pipe(Layer.provide(NodeFileSystem.layer))

import { assert, describe, it } from "@effect/vitest"
import * as DurableFileSystem from "@synod/node/DurableFileSystem"
import { Effect, FileSystem, Path } from "effect"
import { NodePath } from "@effect/platform-node"
import { Layer } from "effect"

const TestLayer = Layer.mergeAll(DurableFileSystem.layer, NodePath.layer)

const bytes = (text: string) => new TextEncoder().encode(text)

const tempFile = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  return path.join(yield* fs.makeTempDirectoryScoped({ prefix: "synod-durable-" }), "log")
})

describe("DurableFileSystem", () => {
  it.effect("appends small and large, in place and through the thread pool, land in order", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const file = yield* tempFile
      const large = new Uint8Array(DurableFileSystem.maxSyncBytes + 10).fill(120)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const handle = yield* fs.open(file, { flag: "ax" })
          yield* handle.writeAll(bytes("one,"))
          yield* handle.sync
          yield* handle.writeAll(large)
          yield* handle.writeAll(bytes(",two"))
          yield* handle.sync
          yield* handle.writeAll(bytes(",three"))
          yield* handle.sync
        })
      )
      const text = new TextDecoder().decode(yield* fs.readFile(file))
      assert.strictEqual(text, `one,${"x".repeat(large.length)},two,three`)
      // reopened for appending, it continues at the end
      yield* Effect.scoped(
        Effect.flatMap(fs.open(file, { flag: "a+" }), (handle) =>
          Effect.andThen(handle.writeAll(bytes("!")), handle.sync)
        )
      )
      assert.isTrue(new TextDecoder().decode(yield* fs.readFile(file)).endsWith(",three!"))
    }).pipe(Effect.scoped, Effect.provide(TestLayer))
  )

  it.effect("a file opened for writing at a position keeps Node's positional writes", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const file = yield* tempFile
      yield* fs.writeFileString(file, "0123456789")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const handle = yield* fs.open(file, { flag: "r+" })
          yield* handle.seek(BigInt(4), "start")
          yield* handle.writeAll(bytes("ab"))
          yield* handle.sync
        })
      )
      assert.strictEqual(yield* fs.readFileString(file), "0123ab6789")
    }).pipe(Effect.scoped, Effect.provide(TestLayer))
  )

  it.effect("a failed write is a PlatformError naming the call", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const handle = yield* fs.open("/dev/full", { flag: "a" })
      const error = yield* Effect.flip(handle.writeAll(bytes("no space")))
      assert.strictEqual(error._tag, "PlatformError")
      assert.include(error.message, "writeAll")
      assert.include(String(error.message), "ENOSPC")
    }).pipe(Effect.scoped, Effect.provide(TestLayer))
  )
})

/**
 * `GET /snapshot` and `POST /snapshot/restore` (see `Api.SnapshotGroup`, `Backup.ts`).
 *
 * A backup is taken from this process's replica, once it has applied a read decided in
 * the log after the request came: one state, at one revision, holding every write
 * acknowledged before the request. A restore is one `Kv.Restore` command per chunk.
 *
 * @since 0.2.0
 */
import type { Replica } from "@synod/actors"
import type { Kv } from "@synod/kv"
import { Effect, Option } from "effect"
import { HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import * as Api from "./Api.ts"
import { Backend } from "./Backend.ts"
import * as Backup from "./Backup.ts"
import { submit, unexpected } from "./Submit.ts"

/** How long a backup waits for the local replica to apply what the log has decided. */
export const catchUpMs = 10_000

/** The replica's state once it has reached `revision`, or `NotReady` after `catchUpMs`. */
export const caughtUp = (applied: Replica.Applied<Kv.State>, revision: number) =>
  Effect.gen(function* () {
    let state = yield* applied.current
    while (state.revision < revision) state = yield* applied.next(state)
    return state
  }).pipe(
    Effect.timeoutOption(catchUpMs),
    Effect.flatMap(
      Option.match({
        onSome: Effect.succeed,
        onNone: () => {
          const reason = `this process's replica has not applied revision ${revision} within ${catchUpMs} ms`
          return Effect.fail(new Api.NotReady({ message: `not ready: ${reason}`, reasons: [reason] }))
        }
      })
    )
  )

/**
 * Backups one process sends at once. Each holds the state it is taken from until its
 * reader has it all: one version of the store's tree, which the store's later writes no
 * longer share with the current one. Beyond this the request is refused (503 `NotReady`),
 * so that slow readers cannot make a server hold many versions.
 */
export const maxConcurrentBackups = 4

export const noReplica = (what: string) =>
  new Api.NoReplica({
    message: `this process hosts no replica, and ${what} is served from a local one: ask a process that hosts a replica`
  })

const busy = () => {
  const reason = `${maxConcurrentBackups} backups are being sent already: retry when one is done`
  return new Api.NotReady({ message: `not ready: ${reason}`, reasons: [reason] })
}

export const layer = HttpApiBuilder.group(Api.Api, "snapshot", (handlers) => {
  let sending = 0
  return handlers.handleAll({
    save: Effect.fn(function* () {
      const backend = yield* Backend
      if (backend.applied === undefined) return yield* noReplica("a backup")
      if (sending >= maxConcurrentBackups) return yield* busy()
      // a read through the log: the backup holds every write acknowledged before it
      const command: Kv.Command = { _tag: "List", prefix: "", limit: 1 }
      const r = yield* submit(command)
      if (r._tag !== "Listed") return yield* unexpected(command, r)
      const state = yield* caughtUp(backend.applied, r.revision)
      // counted again: others may have started while this one waited for the log
      if (sending >= maxConcurrentBackups) return yield* busy()
      // the request's scope closes once the body is sent, or the reader has left
      yield* Effect.acquireRelease(
        Effect.sync(() => sending++),
        () => Effect.sync(() => sending--)
      )
      // streamed as the reader takes it
      const backup = yield* Backup.stream(state)
      return HttpServerResponse.stream(backup.body, { contentType: "application/json" })
    }),
    restore: Effect.fn(function* ({ payload }) {
      const command: Kv.Command = { _tag: "Restore", ...payload }
      const r = yield* submit(command)
      if (r._tag !== "Restored") return yield* unexpected(command, r)
      if (!r.ok) {
        const reason = r.reason ?? "refused"
        return yield* new Api.RestoreRefused({ message: `restore refused: ${reason}`, reason })
      }
      return { staged: r.staged, revision: r.revision, done: payload.done !== undefined }
    })
  })
})

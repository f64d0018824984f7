/**
 * Submitting a command through the `Backend` with the client's failures as the API's
 * errors: a timeout is a 504 `OutcomeUnknown`, a command the replicas refused a 500
 * `CommandRejected`, one too large for a message a 413 `PayloadTooLarge`.
 *
 * @since 0.2.0
 */
import { Effect } from "effect"
import type { Kv } from "@synod/kv"
import * as Api from "./Api.ts"
import { Backend } from "./Backend.ts"

export const submit = (command: Kv.Command) =>
  Effect.flatMap(Backend, (backend) =>
    backend.submit(command).pipe(
      Effect.catchTags({
        OutcomeUnknown: (e) => Effect.fail(new Api.OutcomeUnknown({ outcome: "unknown", message: e.message })),
        CommandRejected: (e) => Effect.fail(new Api.CommandRejected({ message: e.reason })),
        CommandTooLarge: (e) => Effect.fail(new Api.PayloadTooLarge({ message: e.message, limit: e.limit }))
      })
    )
  )

/** A result of the wrong kind for its command: a bug, not a user error. */
export const unexpected = (command: Kv.Command, result: Kv.Result) =>
  Effect.die(new Error(`unexpected result ${result._tag} for ${command._tag}`))

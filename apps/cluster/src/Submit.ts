/**
 * Submitting a command through the `Backend` with the client's failures as the API's
 * errors: a timeout is a 504 `OutcomeUnknown`, a command the replicas refused a 500
 * `CommandRejected`, one too large for a message a 413 `PayloadTooLarge`.
 *
 * @since 0.2.0
 */
import { Effect } from "effect"
import type { Kv, KvLease } from "@synod/kv"
import * as Api from "./Api.ts"
import { Backend } from "./Backend.ts"

const rejected = (e: { readonly reason: string }) => Effect.fail(new Api.CommandRejected({ message: e.reason }))
// too large for one message of the cluster's transport: refused before proposing
const tooLarge = (e: { readonly message: string; readonly limit: number }) =>
  Effect.fail(new Api.PayloadTooLarge({ message: e.message, limit: e.limit }))
const unknown = (e: { readonly message: string }) =>
  Effect.fail(new Api.OutcomeUnknown({ outcome: "unknown", message: e.message }))

/** A command's failures as the API's errors. */
const commandErrors = { OutcomeUnknown: unknown, CommandRejected: rejected, CommandTooLarge: tooLarge }
/** A read's: a read changes nothing, so "unknown" only says no answer came in time. */
const readErrors = { ReadTimedOut: unknown, CommandRejected: rejected, CommandTooLarge: tooLarge }

export const submit = (command: Kv.Command) =>
  Effect.flatMap(Backend, (backend) => backend.submit(command).pipe(Effect.catchTags(commandErrors)))

/** A result of the wrong kind for its command: a bug, not a user error. */
export const unexpected = (command: Kv.Command, result: Kv.Result) =>
  Effect.die(new Error(`unexpected result ${result._tag} for ${command._tag}`))

/** A refused lease command as the API's error: 404 when the lease does not exist, else 409. */
export const refused = (r: KvLease.LeaseRefused): Effect.Effect<never, Api.LeaseNotFound | Api.LeaseRefused> =>
  r.notFound
    ? Effect.fail(new Api.LeaseNotFound({ message: r.reason, id: r.id }))
    : Effect.fail(new Api.LeaseRefused({ message: r.reason }))

/**
 * `PUT /kv/{key}`: the command, submitted with `send` (the API's own, traced or not), and
 * the answer: the key's new version, or the API's error. The endpoint's handler and the
 * fast path (`KvFastPath`) both answer with this.
 */
export const put = <E, R>(
  send: (command: Kv.Command) => Effect.Effect<Kv.Result, E, R>,
  key: string,
  payload: typeof Api.PutBody.Type
): Effect.Effect<typeof Api.Written.Type, E | Api.LeaseNotFound | Api.LeaseRefused, R> =>
  Effect.flatMap(
    send({ _tag: "Put", key, value: payload.value, ...(payload.lease === undefined ? {} : { lease: payload.lease }) }),
    (r) => {
      if (r._tag === "LeaseRefused") return refused(r)
      if (r._tag !== "Written") return Effect.die(new Error(`unexpected result ${r._tag} for Put`))
      return Effect.succeed({ key, version: r.version })
    }
  )

/**
 * The backend's `submit` and linearizable `read` with the client's failures as the API's
 * errors (as `submit` above), each in a span when `traced`: what the key-value endpoints
 * and the fast path (`KvFastPath`) send their commands with.
 */
export const forApi = (backend: Backend["Service"], traced: boolean) => {
  const send = (command: Kv.Command) =>
    (traced
      ? Effect.withSpan(backend.submit(command), "synod.submit", { attributes: { "synod.command": command._tag } })
      : backend.submit(command)
    ).pipe(Effect.catchTags(commandErrors))
  /** A linearizable read: a read index (no slot) when the backend offers one, else through the log. */
  const readIndex = (query: Kv.Command) =>
    backend.read === undefined
      ? send(query)
      : (traced
          ? Effect.withSpan(backend.read(query), "synod.read", { attributes: { "synod.command": query._tag } })
          : backend.read(query)
        ).pipe(Effect.catchTags(readErrors))
  return { send, readIndex }
}

/** A `Get`'s result as `GET /kv/{key}` answers it (without the serializable read's fields). */
export const found = (key: string, r: Kv.Result): Effect.Effect<typeof Api.Found.Type, Api.KeyNotFound> => {
  if (r._tag !== "Value") return unexpected({ _tag: "Get", key }, r)
  if (r.value === null) return Effect.fail(new Api.KeyNotFound({ key }))
  return Effect.succeed({ key, value: r.value, version: r.version })
}

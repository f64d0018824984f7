/**
 * Submitting a command through the `Backend` with the client's failures as the API's
 * errors: a timeout is a 504 `OutcomeUnknown`, a command the replicas refused a 500
 * `CommandRejected`, one too large for a message a 413 `PayloadTooLarge`.
 *
 * @since 0.2.0
 */
import { Client } from "@synod/actors"
import { Effect, Result } from "effect"
import type { Kv, KvLease } from "@synod/kv"
import * as Api from "./Api.ts"
import { Backend } from "./Backend.ts"

/**
 * A failure of the client as the API's error: no answer is a 504 `OutcomeUnknown` (for a
 * command it may have happened; a read changed nothing either way), a refused command a
 * 500 `CommandRejected`, one too large for one message of the cluster's transport (refused
 * before proposing) a 413 `PayloadTooLarge`.
 */
const clientError = (
  e: Client.SubmitError | Client.ReadError
): Api.OutcomeUnknown | Api.CommandRejected | Api.PayloadTooLarge => {
  switch (e._tag) {
    case "OutcomeUnknown":
    case "ReadTimedOut":
      return new Api.OutcomeUnknown({ outcome: "unknown", message: e.message })
    case "CommandRejected":
      return new Api.CommandRejected({ message: e.reason })
    case "CommandTooLarge":
      return new Api.PayloadTooLarge({ message: e.message, limit: e.limit })
  }
}

/**
 * A failure of `Client.submitPromise` (`kind` "command") or `readPromise` ("read") as the
 * API's error, as `submit` and `forApi` map them; `undefined` for anything else (a
 * defect: the API's 500).
 */
export const apiError = (
  e: unknown,
  kind: "command" | "read"
): Api.OutcomeUnknown | Api.CommandRejected | Api.PayloadTooLarge | undefined =>
  (kind === "command" ? e instanceof Client.OutcomeUnknown : e instanceof Client.ReadTimedOut) ||
  e instanceof Client.CommandRejected ||
  e instanceof Client.CommandTooLarge
    ? clientError(e as Client.SubmitError | Client.ReadError)
    : undefined

export const submit = (command: Kv.Command) =>
  Effect.flatMap(Backend, (backend) => backend.submit(command).pipe(Effect.mapError(clientError)))

/** A result of the wrong kind for its command: a bug, not a user error. */
export const unexpected = (command: Kv.Command, result: Kv.Result) =>
  Effect.die(new Error(`unexpected result ${result._tag} for ${command._tag}`))

/** A refused lease command as the API's error: 404 when the lease does not exist, else 409. */
const refusedError = (r: KvLease.LeaseRefused): Api.LeaseNotFound | Api.LeaseRefused =>
  r.notFound ? new Api.LeaseNotFound({ message: r.reason, id: r.id }) : new Api.LeaseRefused({ message: r.reason })

/** `refusedError` as a failure. */
export const refused = (r: KvLease.LeaseRefused): Effect.Effect<never, Api.LeaseNotFound | Api.LeaseRefused> =>
  Effect.fail(refusedError(r))

/** What `PUT /kv/{key}` submits. */
export const putCommand = (key: string, payload: typeof Api.PutBody.Type): Kv.Command => ({
  _tag: "Put",
  key,
  value: payload.value,
  ...(payload.lease === undefined ? {} : { lease: payload.lease })
})

/**
 * A `Put`'s result as `PUT /kv/{key}` answers it: the key's new version, or the lease's
 * refusal; `undefined` for a result of another kind (a bug: the API's 500).
 */
export const writtenOf = (
  key: string,
  r: Kv.Result
): Result.Result<typeof Api.Written.Type, Api.LeaseNotFound | Api.LeaseRefused> | undefined => {
  if (r._tag === "LeaseRefused") return Result.fail(refusedError(r))
  if (r._tag !== "Written") return undefined
  return Result.succeed({ key, version: r.version })
}

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
  Effect.flatMap(send(putCommand(key, payload)), (r) => {
    const written = writtenOf(key, r)
    return written === undefined ? unexpected(putCommand(key, payload), r) : Effect.fromResult(written)
  })

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
    ).pipe(Effect.mapError(clientError))
  /** A linearizable read: a read index (no slot) when the backend offers one, else through the log. */
  const readIndex = (query: Kv.Command) =>
    backend.read === undefined
      ? send(query)
      : (traced
          ? Effect.withSpan(backend.read(query), "synod.read", { attributes: { "synod.command": query._tag } })
          : backend.read(query)
        ).pipe(Effect.mapError(clientError))
  return { send, readIndex }
}

/**
 * A `Get`'s result as `GET /kv/{key}` answers it (without the serializable read's fields);
 * `undefined` for a result of another kind (a bug: the API's 500).
 */
export const foundOf = (
  key: string,
  r: Kv.Result
): Result.Result<typeof Api.Found.Type, Api.KeyNotFound> | undefined => {
  if (r._tag !== "Value") return undefined
  if (r.value === null) return Result.fail(Api.KeyNotFound.of(key))
  return Result.succeed({ key, value: r.value, version: r.version })
}

/** `foundOf` as an effect. */
export const found = (key: string, r: Kv.Result): Effect.Effect<typeof Api.Found.Type, Api.KeyNotFound> => {
  const value = foundOf(key, r)
  return value === undefined ? unexpected({ _tag: "Get", key }, r) : Effect.fromResult(value)
}

/**
 * The lease endpoints (`Api.LeaseGroup`): each one command through the log. TTLs are
 * seconds in the API and milliseconds in the store (`KvLease`).
 *
 * @since 0.3.0
 */
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import type { Kv, KvLease } from "@synod/kv"
import * as Api from "./Api.ts"
import { submit, unexpected } from "./Submit.ts"

/** A keep-alive or revoke is refused only when the lease does not exist. */
const notFound = (r: KvLease.LeaseRefused) => Effect.fail(new Api.LeaseNotFound({ message: r.reason, id: r.id }))

const seconds = (ms: number) => ms / 1000

export const layer = HttpApiBuilder.group(Api.Api, "lease", (handlers) =>
  handlers.handleAll({
    grant: Effect.fn(function* ({ payload }) {
      const command: Kv.Command = { _tag: "LeaseGrant", ttlMs: Math.round(payload.ttl * 1000) }
      const r = yield* submit(command)
      if (r._tag === "LeaseRefused") return yield* new Api.LeaseRefused({ message: r.reason })
      if (r._tag !== "LeaseGranted") return yield* unexpected(command, r)
      return { id: r.id, ttl: seconds(r.ttlMs) }
    }),
    keepalive: Effect.fn(function* ({ params: { id } }) {
      const command: Kv.Command = { _tag: "LeaseKeepAlive", id }
      const r = yield* submit(command)
      if (r._tag === "LeaseRefused") return yield* notFound(r)
      if (r._tag !== "LeaseKept") return yield* unexpected(command, r)
      return { id: r.id, ttl: seconds(r.ttlMs) }
    }),
    revoke: Effect.fn(function* ({ params: { id } }) {
      const command: Kv.Command = { _tag: "LeaseRevoke", id }
      const r = yield* submit(command)
      if (r._tag === "LeaseRefused") return yield* notFound(r)
      if (r._tag !== "LeaseRevoked") return yield* unexpected(command, r)
      return { id: r.id, deleted: r.deleted, revision: r.revision }
    }),
    list: Effect.fn(function* ({ query: { limit, after } }) {
      const command: Kv.Command = {
        _tag: "LeaseList",
        ...(limit === undefined ? {} : { limit }),
        ...(after === undefined ? {} : { after })
      }
      const r = yield* submit(command)
      if (r._tag !== "LeasesListed") return yield* unexpected(command, r)
      return {
        leases: r.leases.map((l) => ({ id: l.id, ttl: seconds(l.ttlMs), keys: l.keys })),
        more: r.more ?? false
      }
    })
  })
)

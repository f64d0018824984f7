/**
 * `POST /txn`: one `Kv.Txn` command through the log (see `Api.TxnGroup`).
 *
 * @since 0.2.0
 */
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import type { Kv } from "@synod/kv"
import * as Api from "./Api.ts"
import { refused, submit, unexpected } from "./Submit.ts"

/** The `Kv.Txn` a request body stands for: absent lists are empty. */
export const toCommand = (body: Api.TxnBody): Kv.Txn => ({
  _tag: "Txn",
  compare: body.compare ?? [],
  success: body.success ?? [],
  failure: body.failure ?? []
})

export const layer = HttpApiBuilder.group(Api.Api, "txn", (handlers) =>
  handlers.handle(
    "txn",
    Effect.fn(function* ({ payload }) {
      const command = toCommand(payload)
      const r = yield* submit(command)
      if (r._tag === "LeaseRefused") return yield* refused(r)
      if (r._tag !== "Transacted") return yield* unexpected(command, r)
      return { succeeded: r.succeeded, results: r.results, revision: r.revision }
    })
  )
)

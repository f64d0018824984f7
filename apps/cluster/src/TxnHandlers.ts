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

/**
 * The first key of `command` that is not well-formed Unicode (a lone surrogate, which JSON's
 * `\ud800` can carry): no URL can name such a key afterwards, to read or delete it. Refused
 * here, at the edge, and not in `Kv.Key`: logs that already hold one must still decode.
 */
const malformedKey = (command: Kv.Txn): { readonly path: ReadonlyArray<string> } | undefined => {
  for (const [branch, items] of [
    ["compare", command.compare],
    ["success", command.success],
    ["failure", command.failure]
  ] as const) {
    const i = items.findIndex((item) => !item.key.isWellFormed())
    if (i >= 0) return { path: [branch, String(i), "key"] }
  }
  return undefined
}

export const layer = HttpApiBuilder.group(Api.Api, "txn", (handlers) =>
  handlers.handle(
    "txn",
    Effect.fn(function* ({ payload }) {
      const command = toCommand(payload)
      const bad = malformedKey(command)
      if (bad !== undefined) {
        const message = "a key is well-formed Unicode: a lone surrogate could never be named in a URL"
        return yield* new Api.BadRequest({
          message: `invalid body: ${bad.path.join(".")}: ${message}`,
          issues: [{ path: [...bad.path], message }]
        })
      }
      const r = yield* submit(command)
      if (r._tag === "LeaseRefused") return yield* refused(r)
      if (r._tag !== "Transacted") return yield* unexpected(command, r)
      return { succeeded: r.succeeded, results: r.results, revision: r.revision }
    })
  )
)

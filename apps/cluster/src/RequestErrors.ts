/**
 * A request that does not decode, as the API's 400 `BadRequest`: one message naming each
 * field at fault, the same from the endpoints (`RequestErrorsLive`, the `Api`'s request
 * middleware) and from the fast path (`KvFastPath`).
 *
 * @since 0.1.0
 */
import { Effect, Schema, SchemaIssue } from "effect"
import { HttpApiError, HttpApiMiddleware } from "effect/http-api"
import * as Api from "./Api.ts"

const unknownField = "unknown field"

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) => (issue._tag === "UnexpectedKey" ? unknownField : SchemaIssue.defaultLeafHook(issue))
})

/**
 * The issue with every failed union that carries a `message` of its own (`Kv.Compare`) as
 * that message alone. The formatter would list each member's complaint instead, and drop
 * the unknown-field ones (see `badRequest`): `{key, version, value}` was told only that
 * `exists` is missing.
 */
const collapseUnions = (issue: SchemaIssue.Issue): SchemaIssue.Issue => {
  switch (issue._tag) {
    case "AnyOf":
      return typeof issue.ast.annotations?.message === "string"
        ? new SchemaIssue.AnyOf(issue.ast, [])
        : new SchemaIssue.AnyOf(issue.ast, issue.issues.map(collapseUnions))
    case "Pointer":
      return new SchemaIssue.Pointer(issue.path, collapseUnions(issue.issue))
    case "Composite":
      return new SchemaIssue.Composite(issue.ast, [
        collapseUnions(issue.issues[0]),
        ...issue.issues.slice(1).map(collapseUnions)
      ])
    case "Filter":
      return new SchemaIssue.Filter(issue.filter, collapseUnions(issue.issue))
    case "Encoding":
      return new SchemaIssue.Encoding(issue.ast, collapseUnions(issue.issue))
    default:
      return issue
  }
}

const where: Record<HttpApiError.HttpApiSchemaError["kind"], string> = {
  Params: "path",
  Headers: "headers",
  Query: "query",
  Payload: "body",
  Body: "response body",
  ResponseHeaders: "response headers"
}

/**
 * A decoding failure as a 400 that names each field at fault. Fields the endpoint does not
 * know are named once the known ones are right: `{"valeu": "x"}` is told `value` is missing.
 */
export const badRequest = (error: HttpApiError.HttpApiSchemaError): Api.BadRequest => badRequestOf(error)

function badRequestOf(error: HttpApiError.HttpApiSchemaError): Api.BadRequest {
  const all = formatIssues(collapseUnions(error.cause.issue)).issues.map((i) => ({
    path: (i.path ?? []).map((p) => String(typeof p === "object" && p !== null && "key" in p ? p.key : p)),
    message: i.message
  }))
  const known = all.filter((i) => i.message !== unknownField)
  const issues = known.length > 0 ? known : all
  const parts = issues.map((i) => (i.path.length === 0 ? i.message : `${i.path.join(".")}: ${i.message}`))
  return new Api.BadRequest({ message: `invalid ${where[error.kind]}: ${parts.join("; ")}`, issues })
}

/**
 * A body whose bytes are not UTF-8: refused, where decoding would put U+FFFD in their
 * place and the store would keep a value the client never sent.
 */
export const notUtf8 = badRequestOf(
  new HttpApiError.HttpApiSchemaError({
    kind: "Payload",
    cause: new Schema.SchemaError(
      new SchemaIssue.InvalidValue({ message: "Expected a UTF-8 body: it holds bytes that are not UTF-8" })
    )
  })
)

export const RequestErrorsLive = HttpApiMiddleware.layerSchemaErrorTransform(Api.RequestErrors, (error) =>
  Effect.fail(badRequest(error))
)

/** The body of a 500: a defect, the router's and the fast path's alike. */
export const internalErrorBody = { _tag: "InternalError", message: "internal error" } as const

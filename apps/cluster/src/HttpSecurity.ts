/**
 * Who may use the HTTP API (issue 14): bearer tokens with a scope, and the `Host` header.
 *
 * - **Tokens.** When any is configured, every request but the probes (`/healthz`,
 *   `/readyz`) needs `Authorization: Bearer <token>`: none, or an unknown one, gets 401
 *   `Unauthorized` (with `WWW-Authenticate`); a `read` token may only read (GET, HEAD), so
 *   it gets 403 `Forbidden` on a write; a `write` token may do everything. Tokens are
 *   compared in constant time: each candidate and each configured token are hashed with
 *   SHA-256 and the digests compared with `timingSafeEqual`, every configured token every
 *   time, so neither the length nor the first differing byte shows in the timing.
 * - **Host.** A request whose `Host` is neither a loopback name nor one of `hosts` gets
 *   421 `HostNotAllowed`: a browser tricked by DNS rebinding sends the attacker's name, so
 *   a page elsewhere cannot drive the API through a victim's browser. An API listening on a
 *   non-loopback address must name its `hosts` (`Serve.decode` insists); one on loopback
 *   with none answers loopback names only (and a request with no `Host`, HTTP/1.0's).
 *
 * Both run as global router middleware, before routing, so no path (the OpenAPI document,
 * a 404) answers anything else to a request they refuse. The bodies are the `Api` errors'
 * (`Unauthorized`, `Forbidden`, `HostNotAllowed`), so the generated client decodes them.
 *
 * @since 0.1.0
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { Effect, Schema } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"

export const Scope = Schema.Literals(["read", "write"])
export type Scope = typeof Scope.Type

/** RFC 6750's token characters, 16 to 256 of them: long enough to guess never, short enough to bound. */
export const Token = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9._~+/-]{16,256}=*$/, {
    message: "a token is 16-256 characters of letters, digits and - . _ ~ + /"
  })
)

export const TokenEntry = Schema.Struct({ token: Token, scope: Scope })
export type TokenEntry = typeof TokenEntry.Type

/** A host name as a `Host` header carries it (without the port); compared without case. */
export const HostName = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]{2,45}\]$/, {
    message: "a host name is a DNS name, an IPv4 address or a bracketed IPv6 address"
  })
)

export interface Options {
  /** Accepted tokens; none: no authentication (the default). */
  readonly tokens?: ReadonlyArray<TokenEntry>
  /**
   * Names the `Host` header may carry besides the loopback ones. Absent, an API on a
   * loopback address answers loopback names only, and one elsewhere does not check `Host`.
   */
  readonly hosts?: ReadonlyArray<string>
  /** The address the API listens on (default 127.0.0.1). */
  readonly host?: string
}

/** Whether `address` (a listen address) reaches this machine only. */
export const isLoopback = (address: string): boolean =>
  address === "localhost" || address === "::1" || address === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(address)

/** The host part of a `Host` header value (`name:port`, `[v6]:port`), lower-cased. */
const hostOf = (header: string): string => {
  const h = header.trim().toLowerCase()
  if (h.startsWith("[")) {
    const end = h.indexOf("]")
    return end === -1 ? h : h.slice(0, end + 1)
  }
  const colon = h.indexOf(":")
  return colon === -1 ? h : h.slice(0, colon)
}

const digest = (s: string): Buffer => createHash("sha256").update(s, "utf8").digest()

/** The scope of `candidate`, or `undefined`: looks at every configured token whatever matches. */
export const scopeOf = (
  tokens: ReadonlyArray<{ readonly digest: Buffer; readonly scope: Scope }>,
  candidate: string
): Scope | undefined => {
  const d = digest(candidate)
  let found: Scope | undefined
  for (const t of tokens) if (timingSafeEqual(t.digest, d) && found !== "write") found = t.scope
  return found
}

const probes = new Set(["/healthz", "/readyz"])
const readMethods = new Set(["GET", "HEAD"])

/** A request `gate` refuses: its status, the `Api` error's tag and message, and headers to add. */
export interface Refusal {
  readonly status: number
  readonly _tag: "HostNotAllowed" | "Unauthorized" | "Forbidden"
  readonly message: string
  readonly headers?: Record<string, string>
}

/**
 * The decision on one request, as a pure function of its method, URL and headers: the
 * refusal, or `undefined` to let it through (everything when `options` sets neither
 * tokens nor hosts). The middleware answers with it; the fast path (`KvFastPath`) takes
 * only requests it lets through.
 */
export const gate = (
  options: Options
): ((
  method: string,
  url: string,
  headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
) => Refusal | undefined) => {
  const tokens = (options.tokens ?? []).map((t) => ({ digest: digest(t.token), scope: t.scope }))
  const allowed = new Set((options.hosts ?? []).map((h) => h.toLowerCase()))
  const isAllowed = (name: string) => isLoopback(name) || allowed.has(name)
  // without `hosts`, loopback only: a rebound name reaches a loopback API as easily as any
  const loopbackOnly = options.hosts === undefined && isLoopback(options.host ?? "127.0.0.1")
  return (method, url, headers) => {
    const host = headers.host
    const refused =
      options.hosts !== undefined
        ? typeof host !== "string" || !isAllowed(hostOf(host))
        : loopbackOnly && typeof host === "string" && !isAllowed(hostOf(host))
    if (refused) {
      return {
        status: 421,
        _tag: "HostNotAllowed",
        message: `host ${JSON.stringify(typeof host === "string" ? host : "")} is not one this API answers to (set http.hosts)`
      }
    }
    if (tokens.length === 0 || probes.has(url.split("?")[0]!)) return undefined
    const auth = headers.authorization
    const match = typeof auth !== "string" ? null : /^Bearer ([^\s]+)$/i.exec(auth.trim())
    const scope = match === null ? undefined : scopeOf(tokens, match[1]!)
    if (scope === undefined) {
      return {
        status: 401,
        _tag: "Unauthorized",
        message: auth === undefined ? "a bearer token is required" : "the bearer token is not valid",
        headers: { "www-authenticate": 'Bearer realm="synod"' }
      }
    }
    if (scope === "read" && !readMethods.has(method)) {
      return { status: 403, _tag: "Forbidden", message: `a read-only token may not ${method} ${url.split("?")[0]}` }
    }
    return undefined
  }
}

/** The global middleware enforcing `options`. */
export const middleware = (options: Options) => {
  const decide = gate(options)
  return HttpRouter.middleware<{ handles: unknown }>()(
    (app) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const refusal = decide(request.method, request.url, request.headers)
        if (refusal === undefined) return yield* app
        return HttpServerResponse.jsonUnsafe(
          { _tag: refusal._tag, message: refusal.message },
          { status: refusal.status, headers: refusal.headers ?? {} }
        )
      }),
    { global: true }
  )
}

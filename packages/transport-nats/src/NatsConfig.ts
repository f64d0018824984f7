/**
 * A nats-server `authorization` block for one cluster: a user per server node and a user
 * per client scope, each allowed only what `Subjects` says it needs (`synod nats-config`
 * prints it). Servers publish anything in the cluster and read their own subjects; a
 * client user publishes only requests of its own scope and reads only its own clients'
 * responses, so it can neither speak the protocol (a forged `Decision` or `StateChunk` is
 * refused by the NATS server) nor read or impersonate another scope's clients.
 *
 * One user per client scope, not per client: a scope's user may run any number of
 * clients at once (`Client.make(…, { scope })` gives each the id `<scope>.c<random>`),
 * and client ids must be new at every run (sequence numbers restart), which fixed
 * per-client users could not give.
 *
 * @since 0.1.0
 */
import { Result } from "effect"
import * as Subjects from "./Subjects.ts"

export interface User {
  /** The NATS user name: a server's node id, or a client scope. */
  readonly user: string
  readonly password: string
}

export interface Options {
  readonly cluster: string
  /** One user per server node (its node id). */
  readonly servers: ReadonlyArray<User>
  /** One user per client scope. */
  readonly clients: ReadonlyArray<User>
}

const token = /^[A-Za-z0-9_-]{1,64}$/
/** Passwords go in a double-quoted string of the config: no quote, backslash or control character. */
const safePassword = /^[\x21\x23-\x5b\x5d-\x7e]{8,256}$/

const list = (subjects: ReadonlyArray<string>) => `[${subjects.map((s) => JSON.stringify(s)).join(", ")}]`

const entry = (u: User, p: Subjects.Permissions, what: string) =>
  [
    `    # ${what}`,
    `    { user: ${JSON.stringify(u.user)}, password: ${JSON.stringify(u.password)},`,
    `      permissions: {`,
    `        publish: { allow: ${list(p.publish)} },`,
    `        subscribe: { allow: ${list(p.subscribe)} } } }`
  ].join("\n")

/**
 * The `authorization { users = [...] }` block, or why the options cannot make one: a
 * cluster name, user name or password that is not allowed, a name used twice, or a client
 * scope named like a server (it would read that server's API responses).
 */
export const render = (options: Options): Result.Result<string, string> => {
  if (!Subjects.isClusterName(options.cluster)) {
    return Result.fail(`cluster name ${JSON.stringify(options.cluster)}: use 1-64 letters, digits, '_' or '-'`)
  }
  if (options.servers.length === 0) return Result.fail("servers: at least one server node is required")
  const seen = new Set<string>()
  for (const u of [...options.servers, ...options.clients]) {
    if (!token.test(u.user)) return Result.fail(`user ${JSON.stringify(u.user)}: use 1-64 letters, digits, '_' or '-'`)
    if (seen.has(u.user)) {
      return Result.fail(`user ${JSON.stringify(u.user)} is named twice (a client scope may not share a server's id)`)
    }
    seen.add(u.user)
    if (!safePassword.test(u.password)) {
      return Result.fail(`password of ${u.user}: 8-256 printable ASCII characters without quote or backslash`)
    }
  }
  const c = options.cluster
  const users = [
    ...options.servers.map((u) => entry(u, Subjects.serverPermissions(c, u.user), `server node ${u.user}`)),
    ...options.clients.map((u) =>
      entry(u, Subjects.clientPermissions(c, u.user), `clients of scope ${u.user} (client ids ${u.user}.<name>)`)
    )
  ]
  return Result.succeed(
    [
      `# synod cluster ${JSON.stringify(c)}: servers speak the protocol, clients only send requests`,
      `# of their scope and read their own responses. Include it in a nats-server config or`,
      `# run it as one: nats-server -c <file> (add listen, TLS and the rest as you need).`,
      `authorization {`,
      `  users = [`,
      users.join(",\n"),
      `  ]`,
      `}`,
      ``
    ].join("\n")
  )
}

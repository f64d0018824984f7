/**
 * The one place that knows how synod names things on NATS. Every other module (and every
 * permission file, `NatsConfig`) derives its subjects from here, so the scheme can change
 * in one file. Subjects are split by trust (issue 14):
 *
 * - **protocol**: an address `role/id` of a server role (replica, leader, acceptor,
 *   learner) of cluster `c` lives on `synod.<c>.<role>.<id>`; only servers publish there;
 * - **requests**: a client's `Request` or `Read` to replica `r` goes to `synod.<c>.req.<r>.<scope>`,
 *   where `<scope>` is the first token of the client id (`alice` for `alice.c7f3`, the
 *   whole id for `c7f3`); the replica checks that each command's client id has that
 *   scope, so NATS permissions on the scope token stop a client from acting as another;
 * - **responses**: a replica's `Response` or `ReadResponse` goes to the client's address,
 *   `synod.<c>.client.<id>` (`synod.<c>.client.alice.c7f3` for a scoped id).
 *
 * A listener accepts on each subject only what belongs there (`refusal`): `Request` and
 * `Read` only on a request subject, `Response` and `ReadResponse` only on a client's
 * subject, protocol messages only on
 * protocol subjects.
 *
 * Both the cluster name and the id are single NATS tokens: a `.` would add a level and a
 * `*` or `>` would turn a listener into a wildcard subscription, so they are restricted
 * to letters, digits, `_` and `-` (the same alphabet as `Address.Id`).
 *
 * @since 0.1.0
 */
import { Address, type Message } from "@synod/core"
import { Option, Schema } from "effect"

/** The first token of every synod subject. */
export const root = "synod"

const tokenPattern = /^[A-Za-z0-9_-]{1,64}$/
// a client id may be `<scope>.<name>`: two tokens (Address.ClientId)
const addressPattern = Address.pattern

/** A cluster name: one NATS subject token, so clusters sharing a NATS account stay apart. */
export const ClusterName = Schema.String.check(
  Schema.isPattern(tokenPattern, {
    message: "a cluster name is 1-64 characters of letters, digits, '_' or '-'"
  })
)
export type ClusterName = typeof ClusterName.Type

/**
 * The subject of `address` in `cluster`, or `None` when `address` is not a well-formed
 * address (its type is a plain string, so a caller can pass anything; an id with a `.`,
 * `*` or `>` must never reach the client as a subject).
 */
export const subject = (cluster: ClusterName, address: Address.Address): Option.Option<string> => {
  if (!addressPattern.test(address)) return Option.none()
  return Option.some(`${root}.${cluster}.${Address.role(address)}.${Address.id(address)}`)
}

/**
 * The address a subject of `cluster` stands for, or `None` for any other subject (request
 * subjects included: they name a replica and a scope, not one address).
 */
export const parse = (cluster: ClusterName, subject: string): Option.Option<Address.Address> => {
  const parts = subject.split(".")
  if (parts.length < 4 || parts.length > 5 || parts[0] !== root || parts[1] !== cluster) return Option.none()
  if (parts.length === 5 && parts[2] !== "client") return Option.none()
  const address = `${parts[2]}/${parts.slice(3).join(".")}`
  return addressPattern.test(address) ? Option.some(address) : Option.none()
}

// ---------------------------------------------------------------------------------------
// client subjects (issue 14): requests and responses apart from the protocol

/** The scope of a client id: its first token (`alice` for `alice.c7f3`, `c7f3` for `c7f3`). */
export const clientScope = (clientId: string): string => {
  const dot = clientId.indexOf(".")
  return dot === -1 ? clientId : clientId.slice(0, dot)
}

/**
 * The subject of a request from client `clientId` to replica `replicaId`,
 * `synod.<c>.req.<replica>.<scope>`; `None` when either is not a well-formed id.
 */
export const requestSubject = (cluster: ClusterName, replicaId: string, clientId: string): Option.Option<string> =>
  tokenPattern.test(replicaId) && addressPattern.test(`client/${clientId}`)
    ? Option.some(`${root}.${cluster}.req.${replicaId}.${clientScope(clientId)}`)
    : Option.none()

/**
 * Where `send` publishes `message` to `to`: a `Request` to a replica on the replica's
 * request subject for the command's client, everything else on `to`'s own subject.
 */
export const sendSubject = (
  cluster: ClusterName,
  to: Address.Address,
  message: Message.Message
): Option.Option<string> =>
  message._tag === "Request" && to.startsWith("replica/")
    ? requestSubject(cluster, to.slice(8), message.command.client)
    : message._tag === "Read" && to.startsWith("replica/")
      ? requestSubject(cluster, to.slice(8), message.client)
      : subject(cluster, to)

/**
 * `sendSubject` for one cluster, remembering each subject it worked out, by address and
 * (for a request or a read) client id: a process sends to the same few addresses, and a
 * client from one id, over and over, and working a subject out (two pattern tests and a
 * few strings) for every message was a twentieth of what a client allocated under the
 * yardstick's 256 writers. At most `limit` subjects: past them it starts over.
 */
export const sendSubjects = (
  cluster: ClusterName,
  limit = 4096
): ((to: Address.Address, message: Message.Message) => Option.Option<string>) => {
  // by address alone, and by address and client for requests and reads (any string may be
  // a client id, even an empty one: no key of the first kind can stand for one of those)
  const byAddress = new Map<string, Option.Option<string>>()
  const byClient = new Map<string, Map<string, Option.Option<string>>>()
  let size = 0
  const remember = (): void => {
    if (size < limit) {
      size++
      return
    }
    byAddress.clear()
    byClient.clear()
    size = 1
  }
  return (to, message) => {
    const client =
      message._tag === "Request" ? message.command.client : message._tag === "Read" ? message.client : undefined
    if (client === undefined) {
      const hit = byAddress.get(to)
      if (hit !== undefined) return hit
      const subject = sendSubject(cluster, to, message)
      remember()
      byAddress.set(to, subject)
      return subject
    }
    const hit = byClient.get(to)?.get(client)
    if (hit !== undefined) return hit
    const subject = sendSubject(cluster, to, message)
    remember()
    let clients = byClient.get(to)
    if (clients === undefined) {
      clients = new Map()
      byClient.set(to, clients)
    }
    clients.set(client, subject)
    return subject
  }
}

/** What a subscription carries: protocol messages, clients' requests, or a client's responses. */
export type Channel = "protocol" | "request" | "response"

/**
 * The subscriptions a listener on `address` makes: its own subject, plus a replica's
 * request subject (`synod.<c>.req.<id>.*`, one per scope). `None` for a malformed address.
 */
export const listenSubjects = (
  cluster: ClusterName,
  address: Address.Address
): Option.Option<ReadonlyArray<{ readonly subject: string; readonly channel: Channel }>> =>
  Option.map(subject(cluster, address), (own) => {
    if (address.startsWith("client/")) return [{ subject: own, channel: "response" as const }]
    if (!address.startsWith("replica/")) return [{ subject: own, channel: "protocol" as const }]
    return [
      { subject: own, channel: "protocol" as const },
      { subject: `${root}.${cluster}.req.${address.slice(8)}.*`, channel: "request" as const }
    ]
  })

/**
 * Why `message`, received on `subject` of a subscription of `channel`, must be dropped, or
 * `undefined` when it belongs there. Checked for every envelope received, so it is cheap:
 * a tag comparison, and for a request the client id's scope against the subject's last token.
 */
export const refusal = (channel: Channel, subject: string, message: Message.Message): string | undefined => {
  const tag = message._tag
  switch (channel) {
    case "protocol":
      return tag === "Request" || tag === "Response" || tag === "Read" || tag === "ReadResponse"
        ? `a ${tag} on a protocol subject`
        : undefined
    case "response":
      return tag === "Response" || tag === "ReadResponse"
        ? undefined
        : `a ${tag} on a client's subject (only Response and ReadResponse go there)`
    case "request": {
      if (tag !== "Request" && tag !== "Read") return `a ${tag} on a request subject (only Request and Read go there)`
      const scope = subject.slice(subject.lastIndexOf(".") + 1)
      const client = tag === "Request" ? message.command.client : message.client
      return clientScope(client) === scope && addressPattern.test(`client/${client}`)
        ? undefined
        : `a request of client ${JSON.stringify(client)} on the subject of scope ${JSON.stringify(scope)}`
    }
  }
}

/**
 * The presence subject of node `id` in `cluster`, `synod.<c>.node.<id>`: the processes
 * claiming that node id announce themselves there (`Presence`). It is no address (`parse`
 * ignores it) and falls under `wildcard(c, { id })`, so a server allowed to subscribe to
 * its own roles may subscribe to it too. `None` when `id` is not one subject token.
 */
export const presence = (cluster: ClusterName, id: string): Option.Option<string> =>
  tokenPattern.test(id) ? Option.some(`${root}.${cluster}.node.${id}`) : Option.none()

/**
 * Wildcard subjects, for monitoring, permission files and bulk subscriptions:
 * - `wildcard(c)`: everything in cluster `c` (`synod.c.>`),
 * - `wildcard(c, { role })`: every address of one role (`synod.c.acceptor.*`),
 * - `wildcard(c, { id })`: every role one node hosts (`synod.c.*.s1`).
 */
export const wildcard = (
  cluster: ClusterName,
  select: { readonly role?: Address.Role; readonly id?: string } = {}
): string => {
  if (select.role === undefined && select.id === undefined) return `${root}.${cluster}.>`
  return `${root}.${cluster}.${select.role ?? "*"}.${select.id ?? "*"}`
}

/** Publish and subscribe permissions, as NATS subjects (wildcards allowed). */
export interface Permissions {
  readonly publish: ReadonlyArray<string>
  readonly subscribe: ReadonlyArray<string>
}

/**
 * What server node `id` needs: publish anything in the cluster (a server hosts roles and
 * the HTTP API's client); subscribe to its roles' subjects, its presence subject, its
 * replica's requests and its own clients' responses (client ids `<id>.<name>`).
 */
export const serverPermissions = (cluster: ClusterName, id: string): Permissions => ({
  publish: [wildcard(cluster)],
  subscribe: [
    ...(["replica", "leader", "acceptor", "learner", "node"] as const).map(
      (role) => `${root}.${cluster}.${role}.${id}`
    ),
    `${root}.${cluster}.req.${id}.*`,
    `${root}.${cluster}.client.${id}.*`
  ]
})

/**
 * What a client user `scope` needs, and all it gets: publish requests of its scope to any
 * replica, and subscribe to the responses of its own clients (ids `<scope>.<name>`).
 */
export const clientPermissions = (cluster: ClusterName, scope: string): Permissions => ({
  publish: [`${root}.${cluster}.req.*.${scope}`],
  subscribe: [`${root}.${cluster}.client.${scope}.*`]
})

/** Whether `name` can be used as a cluster name. */
export const isClusterName: (name: string) => name is ClusterName = Schema.is(ClusterName)

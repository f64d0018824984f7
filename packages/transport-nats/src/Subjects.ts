/**
 * The one place that knows how synod names things on NATS. An address `role/id` of
 * cluster `c` lives on the subject `synod.<c>.<role>.<id>`; every other module (and every
 * server permission file) derives its subjects from here, so the scheme can change in one
 * file.
 *
 * Both the cluster name and the id are single NATS tokens: a `.` would add a level and a
 * `*` or `>` would turn a listener into a wildcard subscription, so they are restricted
 * to letters, digits, `_` and `-` (the same alphabet as `Address.Id`).
 *
 * @since 0.1.0
 */
import type { Address } from "@synod/core"
import { Option, Schema } from "effect"

/** The first token of every synod subject. */
export const root = "synod"

const tokenPattern = /^[A-Za-z0-9_-]{1,64}$/
const addressPattern = /^(replica|leader|acceptor|learner|client)\/([A-Za-z0-9_-]{1,64})$/

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
  const m = addressPattern.exec(address)
  return m === null ? Option.none() : Option.some(`${root}.${cluster}.${m[1]}.${m[2]}`)
}

/** The address a subject of `cluster` stands for, or `None` for any other subject. */
export const parse = (cluster: ClusterName, subject: string): Option.Option<Address.Address> => {
  const parts = subject.split(".")
  if (parts.length !== 4 || parts[0] !== root || parts[1] !== cluster) return Option.none()
  const address = `${parts[2]}/${parts[3]}`
  return addressPattern.test(address) ? Option.some(address) : Option.none()
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

/** Whether `name` can be used as a cluster name. */
export const isClusterName: (name: string) => name is ClusterName = Schema.is(ClusterName)

/**
 * Addresses name the endpoints that exchange messages: `role/id`, e.g. `acceptor/a1`,
 * `leader/s2`, `replica/s3`, `client/7f3c…`. The id part names the node that hosts the
 * role, so a colocated server `s1` owns `replica/s1`, `leader/s1` and `acceptor/s1`, and
 * fault injection can cut a whole node by its id.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

export const Role = Schema.Literals(["replica", "leader", "acceptor", "learner", "client"])
export type Role = typeof Role.Type

/** Ids are used as NATS subject tokens, so they must not contain `.`, `*`, `>` or whitespace. */
export const Id = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9_-]{1,64}$/, {
    message: "an id is 1-64 characters of letters, digits, '_' or '-'"
  })
)
export type Id = typeof Id.Type

/**
 * A client id is an id, or `<scope>.<name>`: two ids. The scope is who the client acts
 * for (a NATS user may be allowed only its own scope: `synod nats-config`); a client
 * without one is its own scope.
 */
export const ClientId = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64})?$/, {
    message: "a client id is an id, or scope.name with scope and name ids (1-64 letters, digits, '_' or '-')"
  })
)
export type ClientId = typeof ClientId.Type

/** What an address looks like; the wire decoder checks addresses with this same expression. */
export const pattern =
  /^((replica|leader|acceptor|learner)\/[A-Za-z0-9_-]{1,64}|client\/[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64})?)$/

export const Address = Schema.String.check(
  Schema.isPattern(pattern, {
    message:
      "an address is role/id with role one of replica, leader, acceptor, learner, client (a client id may be scope.name)"
  })
)
export type Address = typeof Address.Type

export const make = (role: Role, id: string): Address => `${role}/${id}`

export const replica = (id: string): Address => `replica/${id}`
export const leader = (id: string): Address => `leader/${id}`
export const acceptor = (id: string): Address => `acceptor/${id}`
export const learner = (id: string): Address => `learner/${id}`
export const client = (id: string): Address => `client/${id}`

export const role = (address: Address): Role => address.slice(0, address.indexOf("/")) as Role

/** The node id: the part after the slash. */
export const id = (address: Address): string => address.slice(address.indexOf("/") + 1)

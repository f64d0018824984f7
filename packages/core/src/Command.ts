/**
 * What gets decided: client commands, batches of them, the no-op a new leader uses to
 * fill holes, and configuration changes. One slot decides one `SlotValue`: a `Batch` of
 * client commands (batching is per slot, so the window bounds batches, not commands), a
 * `Noop`, or a `Reconfigure` (never inside a batch: docs/reconfiguration.md).
 *
 * Two commands are the same command iff `(client, seq)` are equal; replicas perform each
 * at most once (docs/protocol.md#replica).
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { Ballot } from "./Ballot.ts"
import { Members } from "./Configuration.ts"

const Seq = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const Slot = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

export class Command extends Schema.Class<Command>("@synod/core/Command")({
  /** The client id; responses go to `client/<client>`. */
  client: Schema.String,
  /** Per-client sequence number, from 1; a retry reuses it. */
  seq: Seq,
  /** Every seq below this one has been answered, so replicas may forget those results. */
  acked: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  /** The state machine's command, already encoded by its schema. */
  op: Schema.Json
}) {}

export class Noop extends Schema.TaggedClass<Noop>()("Noop", {}) {}

export class Batch extends Schema.TaggedClass<Batch>()("Batch", {
  commands: Schema.Array(Command)
}) {}

/**
 * A configuration change: `members` governs the slots from this slot + window on
 * (docs/reconfiguration.md). Only a server's own API proposes one, never a client.
 */
export class Reconfigure extends Schema.TaggedClass<Reconfigure>()("Reconfigure", {
  members: Members
}) {}

export const SlotValue = Schema.Union([Batch, Noop, Reconfigure])
export type SlotValue = typeof SlotValue.Type

export const noop: Noop = new Noop({})

/** Identity of a command for de-duplication and invariant checks. */
export const commandKey = (c: { readonly client: string; readonly seq: number }): string => `${c.client}#${c.seq}`

/** Identity of a slot value: equal keys mean the same decision. */
export const valueKey = (v: SlotValue): string =>
  v._tag === "Noop"
    ? "noop"
    : v._tag === "Reconfigure"
      ? `reconfigure ${membersKey(v.members)}`
      : v.commands.map(commandKey).join(",")

/** Identity of a set of members: the same ids in the same order per kind. */
export const membersKey = (m: Members): string =>
  `a=${m.acceptors.join(",")};l=${m.leaders.join(",")};r=${m.replicas.join(",")}`

export const sameValue = (a: SlotValue, b: SlotValue): boolean => valueKey(a) === valueKey(b)

/** An accepted proposal: "value `value` in slot `slot` under ballot `ballot`". */
export class PValue extends Schema.Class<PValue>("@synod/core/PValue")({
  ballot: Ballot,
  slot: Slot,
  value: SlotValue
}) {}

export { Seq, Slot }

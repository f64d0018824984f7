/**
 * Every message the roles exchange, as `Schema` tagged classes, and the per-role inbound
 * unions. `_tag`s are wire format: short, stable, never renamed.
 *
 * Departures from the paper (PROTOCOL.md §1.2): P1b and P2b carry both the acceptor's
 * current ballot and an echo of the ballot they answer, and P2b the slot, so a leader can
 * route replies to the child that asked and a commander counts only its own (ballot, slot)
 * (B3). Decisions carry the deciding ballot and responses the slot, for debugging.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { Address } from "./Address.ts"
import { Ballot } from "./Ballot.ts"
import { Command, PValue, Slot, SlotValue } from "./Command.ts"

/**
 * Phase 1a: scout → acceptors. `from`: the leader's watermark — every replica has durably
 * applied the slots below it, so the acceptor reports only pvalues from there on.
 */
export class P1a extends Schema.TaggedClass<P1a>()("P1a", {
  ballot: Ballot,
  from: Schema.optionalKey(Slot)
}) {}

/** Phase 1b: acceptor → leader. `ballot` is the acceptor's promise after handling the P1a it answers (`request`). */
export class P1b extends Schema.TaggedClass<P1b>()("P1b", {
  ballot: Ballot,
  request: Ballot,
  accepted: Schema.Array(PValue)
}) {}

/** Phase 2a: commander → acceptors. */
export class P2a extends Schema.TaggedClass<P2a>()("P2a", {
  ballot: Ballot,
  slot: Slot,
  value: SlotValue
}) {}

/** Phase 2b: acceptor → leader. Accepted iff `ballot` equals `request`. */
export class P2b extends Schema.TaggedClass<P2b>()("P2b", {
  ballot: Ballot,
  request: Ballot,
  slot: Slot
}) {}

/** Replica → leaders: please get `value` decided in `slot`. */
export class Propose extends Schema.TaggedClass<Propose>()("Propose", {
  slot: Slot,
  value: SlotValue
}) {}

/** Commander → replicas: `value` is chosen for `slot` (under `ballot`). */
export class Decision extends Schema.TaggedClass<Decision>()("Decision", {
  slot: Slot,
  value: SlotValue,
  ballot: Ballot
}) {}

/** Client → replicas. */
export class Request extends Schema.TaggedClass<Request>()("Request", {
  command: Command
}) {}

/**
 * Replica → client: the result of performing `seq` (encoded by the state machine's result
 * schema), or `error` when the command could not be decoded by the state machine (it was
 * decided, but changed nothing).
 */
export class Response extends Schema.TaggedClass<Response>()("Response", {
  seq: Command.fields.seq,
  result: Schema.Json,
  error: Schema.optionalKey(Schema.String),
  slot: Slot
}) {}

/**
 * Active leader → other leaders and replicas, periodically. `decided` counts the slots
 * this leader's commanders got decided, so a passive leader can tell a live-but-stuck
 * leader from a working one (B14); `slot` is the highest slot it knows decided, so a
 * replica that missed decisions notices and asks for them (B10).
 */
export class Heartbeat extends Schema.TaggedClass<Heartbeat>()("Heartbeat", {
  ballot: Ballot,
  active: Schema.Boolean,
  decided: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  slot: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
}) {}

/**
 * Replica → leaders, periodically: every slot below `slotOut` is in this replica's last
 * durable snapshot, so it will never need those decisions again, even after a restart.
 */
export class Progress extends Schema.TaggedClass<Progress>()("Progress", {
  slotOut: Slot
}) {}

export const AcceptorInbound = Schema.Union([P1a, P2a])
export type AcceptorInbound = typeof AcceptorInbound.Type

export const LeaderInbound = Schema.Union([Propose, P1b, P2b, Heartbeat, Progress])
export type LeaderInbound = typeof LeaderInbound.Type

export const ReplicaInbound = Schema.Union([Request, Decision, Heartbeat])
export type ReplicaInbound = typeof ReplicaInbound.Type

export const ClientInbound = Schema.Union([Response])
export type ClientInbound = typeof ClientInbound.Type

export const Message = Schema.Union([P1a, P1b, P2a, P2b, Propose, Decision, Request, Response, Heartbeat, Progress])
export type Message = typeof Message.Type

export class Envelope extends Schema.Class<Envelope>("@synod/core/Envelope")({
  from: Address,
  to: Address,
  message: Message
}) {}

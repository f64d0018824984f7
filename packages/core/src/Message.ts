/**
 * Every message the roles exchange, as `Schema` tagged classes, and the per-role inbound
 * unions. `_tag`s are wire format: short, stable, never renamed.
 *
 * Departures from the paper (docs/protocol.md#messages): P1b and P2b carry both the acceptor's
 * current ballot and an echo of the ballot they answer, and P2b the slot, so a leader can
 * route replies to the child that asked and a commander counts only its own (ballot, slot)
 * (B3). Decisions carry the deciding ballot and responses the slot, for debugging.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { Address, Id } from "./Address.ts"
import { Ballot } from "./Ballot.ts"
import { Command, PValue, Slot, SlotValue } from "./Command.ts"
import * as Configuration from "./Configuration.ts"

/**
 * Phase 1a: scout → acceptors. `from`: report pvalues from this slot on — the leader's
 * watermark at first (every replica has durably applied the slots below it), then the
 * `next` of the previous P1b page. `before`: and only below this slot (absent: every one
 * from `from` on) — phase 1 again at the same ballot for slots below the ones it already
 * adopted, which it need not read again.
 */
export class P1a extends Schema.TaggedClass<P1a>()("P1a", {
  ballot: Ballot,
  from: Schema.optionalKey(Slot),
  before: Schema.optionalKey(Slot)
}) {}

/**
 * Phase 1b: acceptor → leader, one page of the answer to a P1a. `ballot` is the
 * acceptor's promise after handling the P1a it answers (`request`). `watermark`: the
 * acceptor's GC watermark, when above 1 — it forgot every slot below it, so "no pvalue"
 * there means "forgotten", not "free" (B11).
 *
 * Paging: the page holds the accepted pvalues of slots from `from` (the P1a's, echoed;
 * absent: 1) up to, not including, `next`; absent `next`, it holds every one from `from`
 * on (below `before`, the P1a's, echoed) and is the last page. The scout asks for the next
 * page with a P1a `from: next`, so a long accepted tail never makes one message larger
 * than the transport carries. A scout counts only a page of the range it asked for: every
 * scout of its leader hears every P1b, and a last page below `before` says nothing of the
 * slots above.
 */
export class P1b extends Schema.TaggedClass<P1b>()("P1b", {
  ballot: Ballot,
  request: Ballot,
  accepted: Schema.Array(PValue),
  watermark: Schema.optionalKey(Slot),
  from: Schema.optionalKey(Slot),
  before: Schema.optionalKey(Slot),
  next: Schema.optionalKey(Slot)
}) {}

/** Phase 2a: commander → acceptors. */
export class P2a extends Schema.TaggedClass<P2a>()("P2a", {
  ballot: Ballot,
  slot: Slot,
  value: SlotValue
}) {}

/**
 * Phase 2b: acceptor → leader. Accepted iff `ballot` equals `request` and `slot` is not
 * below `watermark`. `watermark` (the acceptor's GC watermark) is present when it moved
 * since the acceptor last told this leader, or when the P2a asked for a forgotten slot.
 */
export class P2b extends Schema.TaggedClass<P2b>()("P2b", {
  ballot: Ballot,
  request: Ballot,
  slot: Slot,
  watermark: Schema.optionalKey(Slot)
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

/**
 * Commander → the replica of a server whose acceptor voted for the decision: the value
 * that acceptor accepted for `slot` at `ballot` or above is chosen. A chosen value is what
 * every acceptor that votes for the slot at a ballot at least the deciding one holds, so
 * the replica takes it from its own acceptor and the value, which may be a megabyte,
 * crosses the network three times per slot instead of five (docs/protocol.md#replica).
 */
export class Chosen extends Schema.TaggedClass<Chosen>()("Chosen", {
  slot: Slot,
  ballot: Ballot
}) {}

/** Client → replicas. */
export class Request extends Schema.TaggedClass<Request>()("Request", {
  command: Command
}) {}

/**
 * Replica → client: the result of performing `seq` (encoded by the state machine's result
 * schema), or `error` when the command could not be decoded by the state machine (it was
 * decided, but changed nothing). `leader`: the id of the server whose leader the replica
 * follows, when that server hosts a replica too — a hint: the client's next requests go
 * to that replica, whose proposals reach the leader and whose decisions come back without
 * crossing the network (docs/protocol.md#clients).
 */
export class Response extends Schema.TaggedClass<Response>()("Response", {
  seq: Command.fields.seq,
  result: Schema.Json,
  error: Schema.optionalKey(Schema.String),
  slot: Slot,
  leader: Schema.optionalKey(Id)
}) {}

/**
 * Client → replica: a read-only query of the state machine (`op`, encoded by its command
 * schema), answered from the replica's state once it has applied every slot decided
 * before the read arrived (a read index, docs/protocol.md#reads). No slot, no client
 * table: a read changes nothing, so a retry is harmless. `id` numbers the client's reads
 * (its own counter, apart from commands' `seq`); `client` as in `Command`.
 */
export class Read extends Schema.TaggedClass<Read>()("Read", {
  client: Command.fields.client,
  id: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
  op: Schema.Json
}) {}

/**
 * Replica → client: the answer to read `id` (encoded by the state machine's result
 * schema), or `error` when the op is not a read-only query of the machine or does not
 * decode. `slot`: the replica had applied every slot below `slot + 1` when it read.
 * `leader`: as in `Response` (the read index is then asked without crossing the network).
 */
export class ReadResponse extends Schema.TaggedClass<ReadResponse>()("ReadResponse", {
  id: Read.fields.id,
  result: Schema.Json,
  error: Schema.optionalKey(Schema.String),
  slot: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  leader: Schema.optionalKey(Id)
}) {}

/**
 * Replica → leader: "what must I have applied to serve the reads waiting with `id`?" An
 * active leader answers once a majority of acceptors confirmed, after this arrived, that
 * it still leads; `id` is the replica's, fresh per incarnation, so a late answer to an
 * earlier life's question is never taken for this one's.
 */
export class ReadIndex extends Schema.TaggedClass<ReadIndex>()("ReadIndex", {
  id: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
}) {}

/**
 * Leader → replica: the reads of `id` may be served once the replica's `slotOut` reaches
 * `slot` (every slot decided when the leader's confirmation round started is below it).
 * `ballot` is the confirmed leader's, for debugging.
 */
export class ReadIndexReply extends Schema.TaggedClass<ReadIndexReply>()("ReadIndexReply", {
  id: ReadIndex.fields.id,
  slot: Slot,
  ballot: Ballot
}) {}

/**
 * Leader → acceptors: "is your promise still at most `ballot`?" — the read-index
 * confirmation, `round` numbering the leader's rounds. Nothing durable changes; an
 * acceptor whose promise is `ballot` grants that leader a read lease
 * (docs/protocol.md#read-leases).
 */
export class Confirm extends Schema.TaggedClass<Confirm>()("Confirm", {
  ballot: Ballot,
  round: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
}) {}

/**
 * Acceptor → leader: the answer to a `Confirm`: `ballot` is the acceptor's promise as it
 * answers, `request` and `round` echo the `Confirm`.
 */
export class Confirmed extends Schema.TaggedClass<Confirmed>()("Confirmed", {
  ballot: Ballot,
  request: Ballot,
  round: Confirm.fields.round
}) {}

/**
 * Active leader → other leaders and replicas, periodically. `decided` counts the slots
 * this leader's commanders got decided, so a passive leader can tell a live-but-stuck
 * leader from a working one (B14); `slot` is the highest slot it knows decided, so a
 * replica that missed decisions notices and asks for them (B10); `watermark` is the GC
 * watermark it learned from the acceptors, so a replica below it knows it must fetch a
 * snapshot from a peer (state transfer) and a passive leader forgets what lies below.
 *
 * `held`, on an active heartbeat: the highest slot up to which this leader holds a value
 * (a proposal or a decision) for every slot from the first one no replica has performed,
 * so a replica need not resend its proposals up to it (docs/protocol.md#replica-resend-back-off),
 * and a passive leader learns that work waits when it is above `slot`.
 *
 * `to`, on the inactive heartbeat of a leader that hands its leadership over (resignation,
 * `synod leader transfer [TO]`): the leader that should compete at once. Absent, the next
 * leader in the configured order is meant.
 */
export class Heartbeat extends Schema.TaggedClass<Heartbeat>()("Heartbeat", {
  ballot: Ballot,
  active: Schema.Boolean,
  decided: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  slot: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  watermark: Slot,
  held: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  to: Schema.optionalKey(Id)
}) {}

/**
 * Replica → acceptors, periodically: every slot below `slotOut` is in this replica's last
 * durable snapshot, so it will never need those decisions again, even after a restart.
 * Acceptors garbage-collect below the slot enough replicas of the configuration that
 * holds it reported (see Acceptor.ts). `history`: the replica's configuration history
 * (docs/reconfiguration.md), absent while it is the initial one.
 */
export class Progress extends Schema.TaggedClass<Progress>()("Progress", {
  slotOut: Slot,
  history: Schema.optionalKey(Configuration.History)
}) {}

/**
 * Replica → leaders of its latest configuration, periodically: its configuration history
 * after performing every slot below `slotOut` (docs/reconfiguration.md, rule 5). Every
 * replica that performed those slots holds the same history for them, so a leader that
 * hears it knows the configuration of every slot below `slotOut + window`.
 */
export class History extends Schema.TaggedClass<History>()("History", {
  history: Configuration.History,
  slotOut: Slot
}) {}

/** Identifies one encoded snapshot a replica serves for state transfer. */
export const TransferId = Schema.Struct({
  slotOut: Slot,
  /** CRC-32 of the whole encoded snapshot. */
  checksum: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
})
export type TransferId = typeof TransferId.Type

/**
 * Replica → peer replica: "I am at `slotOut`; send me state". Without `transfer` the peer
 * starts a new transfer of its current state (if it is ahead) and sends the first
 * chunks; with it, the peer resends the listed `chunks` of that transfer, if it still
 * serves it. The asker pulls chunks a few at a time, so a large state never floods the bus.
 */
export class StateRequest extends Schema.TaggedClass<StateRequest>()("StateRequest", {
  slotOut: Slot,
  transfer: Schema.optionalKey(TransferId),
  chunks: Schema.Array(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)))
}) {}

/** Peer replica → replica: chunk `index` of `count` of the encoded snapshot `transfer`. */
export class StateChunk extends Schema.TaggedClass<StateChunk>()("StateChunk", {
  transfer: TransferId,
  index: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  count: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
  data: Schema.String
}) {}

/** A state digest: the SHA-256 of a snapshot's canonical encoding, as 64 lowercase hex digits. */
export const StateDigest = Schema.String.check(
  Schema.isPattern(/^[0-9a-f]{64}$/, { message: "a state digest is 64 lowercase hex digits (SHA-256)" })
)
export type StateDigest = typeof StateDigest.Type

/**
 * Replica → peer replicas: the digest of its state, slotOut and client table at digest
 * slot `slot` (docs/protocol.md#divergence-detection). `heard`: the sender already holds
 * the receiver's digest for this slot, so the receiver need not answer with it.
 */
export class Digest extends Schema.TaggedClass<Digest>()("Digest", {
  slot: Slot,
  digest: StateDigest,
  heard: Schema.Boolean
}) {}

export const AcceptorInbound = Schema.Union([P1a, P2a, Progress, Heartbeat, Confirm])
export type AcceptorInbound = typeof AcceptorInbound.Type

export const LeaderInbound = Schema.Union([Propose, P1b, P2b, Heartbeat, ReadIndex, Confirmed, History])
export type LeaderInbound = typeof LeaderInbound.Type

export const ReplicaInbound = Schema.Union([
  Request,
  Decision,
  Chosen,
  Heartbeat,
  StateRequest,
  StateChunk,
  Read,
  ReadIndexReply,
  Digest,
  History
])
export type ReplicaInbound = typeof ReplicaInbound.Type

export const LearnerInbound = Schema.Union([Decision, Heartbeat])
export type LearnerInbound = typeof LearnerInbound.Type

export const ClientInbound = Schema.Union([Response, ReadResponse])
export type ClientInbound = typeof ClientInbound.Type

export const Message = Schema.Union([
  P1a,
  P1b,
  P2a,
  P2b,
  Propose,
  Decision,
  Chosen,
  Request,
  Response,
  Heartbeat,
  Progress,
  StateRequest,
  StateChunk,
  Read,
  ReadResponse,
  ReadIndex,
  ReadIndexReply,
  Confirm,
  Confirmed,
  Digest,
  History
])
export type Message = typeof Message.Type

export class Envelope extends Schema.Class<Envelope>("@synod/core/Envelope")({
  from: Address,
  to: Address,
  message: Message
}) {}

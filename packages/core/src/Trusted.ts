/**
 * Builders for the messages and values a process makes itself, from values that are
 * already right by construction: a slot the core computed, a ballot it holds, a batch of
 * commands that were validated when they came in. `new Message.P2a(...)` runs the whole
 * schema over its fields again (a batch's every command, a response's result as JSON),
 * which costs microseconds per message on the hot path and checks nothing the wire
 * decoder (`internal/WireDecode.ts`) has not checked where the values entered the process.
 * These builders only lay the fields out on the class's prototype.
 *
 * Safety net: wherever messages are encoded (NATS, and the in-memory bus the simulator
 * and tests use), the receiver's decoder validates every field, so a core that built a
 * malformed message still fails loudly there. Use these for what this process made;
 * anything from outside goes through the decoder.
 *
 * @since 0.3.0
 */
import type { Schema } from "effect"
import type { Address } from "./Address.ts"
import { Ballot } from "./Ballot.ts"
import { Batch, Command, PValue, Reconfigure, type SlotValue } from "./Command.ts"
import type * as Configuration from "./Configuration.ts"
import {
  Chosen,
  Confirm,
  Confirmed,
  Decision,
  Envelope,
  Heartbeat,
  History,
  type Message,
  P1a,
  P1b,
  P2a,
  P2b,
  Progress,
  Propose,
  Read,
  ReadIndex,
  ReadIndexReply,
  ReadResponse,
  Request,
  Response
} from "./Message.ts"

/** A class built by `Schema.Class` / `Schema.TaggedClass`: its prototype and its fields. */
interface SchemaClass {
  readonly prototype: object
  readonly fields: Schema.Struct.Fields
}

/**
 * An instance of a schema class from fields already right, without the constructor's
 * schema pass — what the schema decoder itself does (`makeClassTrusted`, internal to
 * effect). The constructor of `Schema.Class` ends in `Data.Class`'s, which only copies
 * the fields onto the instance; methods, equality, hashing and the type id `Schema.is`
 * looks for live on the prototype, and none of these classes declares instance fields.
 * So an object with the class's prototype and the same own fields, in the schema's order,
 * is indistinguishable from `new Class(fields)` (test/Trusted.test.ts and
 * test/WireDecode.test.ts compare prototypes, own keys and their order, `toString`,
 * `Equal`, `Hash` and `Schema.is`). Callers write the fields out in the schema's order,
 * `_tag` first, and leave absent optional keys out.
 */
export const build = <C extends SchemaClass>(Class: C, fields: Schema.Struct.Type<C["fields"]>): C["prototype"] =>
  Object.assign(Object.create(Class.prototype), fields)

export const envelope = (from: Address, to: Address, message: Message): Envelope =>
  build(Envelope, { from, to, message })

export const ballot = (round: number, leader: string): Ballot => build(Ballot, { round, leader })

export const command = (client: string, seq: number, acked: number, op: Schema.Json): Command =>
  build(Command, { client, seq, acked, op })

export const batch = (commands: ReadonlyArray<Command>): Batch => build(Batch, { _tag: "Batch", commands })

export const pvalue = (ballot: Ballot, slot: number, value: SlotValue): PValue => build(PValue, { ballot, slot, value })

export const request = (command: Command): Request => build(Request, { _tag: "Request", command })

export const response = (seq: number, result: Schema.Json, slot: number, error?: string, leader?: string): Response =>
  build(Response, {
    _tag: "Response",
    seq,
    result,
    ...(error === undefined ? {} : { error }),
    slot,
    ...(leader === undefined ? {} : { leader })
  })

export const propose = (slot: number, value: SlotValue): Propose => build(Propose, { _tag: "Propose", slot, value })

export const p1a = (ballot: Ballot, from?: number, before?: number): P1a =>
  build(P1a, {
    _tag: "P1a",
    ballot,
    ...(from === undefined ? {} : { from }),
    ...(before === undefined ? {} : { before })
  })

export const p1b = (fields: Omit<P1b, "_tag">): P1b =>
  build(P1b, {
    _tag: "P1b",
    ballot: fields.ballot,
    request: fields.request,
    accepted: fields.accepted,
    ...(fields.watermark === undefined ? {} : { watermark: fields.watermark }),
    ...(fields.from === undefined ? {} : { from: fields.from }),
    ...(fields.before === undefined ? {} : { before: fields.before }),
    ...(fields.next === undefined ? {} : { next: fields.next })
  })

export const p2a = (ballot: Ballot, slot: number, value: SlotValue): P2a =>
  build(P2a, { _tag: "P2a", ballot, slot, value })

export const p2b = (ballot: Ballot, request: Ballot, slot: number, watermark?: number): P2b =>
  build(
    P2b,
    watermark === undefined ? { _tag: "P2b", ballot, request, slot } : { _tag: "P2b", ballot, request, slot, watermark }
  )

export const decision = (slot: number, value: SlotValue, ballot: Ballot): Decision =>
  build(Decision, { _tag: "Decision", slot, value, ballot })

export const chosen = (slot: number, ballot: Ballot): Chosen => build(Chosen, { _tag: "Chosen", slot, ballot })

export const heartbeat = (fields: Omit<Heartbeat, "_tag">): Heartbeat =>
  build(Heartbeat, {
    _tag: "Heartbeat",
    ballot: fields.ballot,
    active: fields.active,
    decided: fields.decided,
    slot: fields.slot,
    watermark: fields.watermark,
    ...(fields.held === undefined ? {} : { held: fields.held }),
    ...(fields.to === undefined ? {} : { to: fields.to })
  })

export const progress = (slotOut: number, history?: Configuration.History): Progress =>
  build(Progress, history === undefined ? { _tag: "Progress", slotOut } : { _tag: "Progress", slotOut, history })

export const history = (history: Configuration.History, slotOut: number): History =>
  build(History, { _tag: "History", history, slotOut })

export const reconfigure = (members: Configuration.Members): Reconfigure =>
  build(Reconfigure, { _tag: "Reconfigure", members })

export const read = (client: string, id: number, op: Schema.Json): Read => build(Read, { _tag: "Read", client, id, op })

export const readResponse = (
  id: number,
  result: Schema.Json,
  slot: number,
  error?: string,
  leader?: string
): ReadResponse =>
  build(ReadResponse, {
    _tag: "ReadResponse",
    id,
    result,
    ...(error === undefined ? {} : { error }),
    slot,
    ...(leader === undefined ? {} : { leader })
  })

export const readIndex = (id: number): ReadIndex => build(ReadIndex, { _tag: "ReadIndex", id })

export const readIndexReply = (id: number, slot: number, ballot: Ballot): ReadIndexReply =>
  build(ReadIndexReply, { _tag: "ReadIndexReply", id, slot, ballot })

export const confirm = (ballot: Ballot, round: number): Confirm => build(Confirm, { _tag: "Confirm", ballot, round })

export const confirmed = (ballot: Ballot, request: Ballot, round: number): Confirmed =>
  build(Confirmed, { _tag: "Confirmed", ballot, request, round })

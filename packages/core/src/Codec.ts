/**
 * The one wire codec every transport uses: envelopes to JSON text and back, derived from
 * the message schemas. `Schema.toCodecJson` makes every field JSON-safe (STYLE.md §1.6).
 * The hot paths are hand-written (`JSON.stringify` out, `internal/WireDecode.ts` in) and
 * held by property tests to the schema codec they replace, which stays here as the
 * reference (`encodeWithSchema`, `decodeWithSchema`). Decoding never throws: bad bytes,
 * bad JSON and wrong shapes become a `DecodeError` carrying the reason.
 *
 * @since 0.1.0
 */
import { Effect, Result, Schema, SchemaIssue } from "effect"
import * as Ballot from "./Ballot.ts"
import * as WireDecode from "./internal/WireDecode.ts"
import type * as Command from "./Command.ts"
import { Envelope, type Message, type P1b } from "./Message.ts"

export class DecodeError extends Schema.TaggedError<DecodeError>()("DecodeError", {
  reason: Schema.String
}) {}

export const Wire = Schema.fromJsonString(Schema.toCodecJson(Envelope))

const encodeWire = Schema.encodeSync(Wire)
const decodeWire = Schema.decodeUnknownResult(Wire)
const utf8Decoder = new TextDecoder("utf-8", { fatal: true })
const utf8Encoder = new TextEncoder()
const formatter = SchemaIssue.makeFormatterDefault()

/** Encodes through the schemas: the reference `encode` must agree with. */
export const encodeWithSchema = (envelope: Envelope): string => encodeWire(envelope)

/** Each message's JSON, once: a P2a goes to every acceptor, a decision to every replica. */
const messageJson = new WeakMap<object, string>()

/** Each slot value's JSON, once (`valueJson`). */
const slotValueJson = new WeakMap<object, string>()

/**
 * The JSON of a slot's value, stringified once per value: a commander's P2a to every
 * acceptor, its Decision to every replica and its own acceptor's log record carry the
 * same batch, up to a megabyte, and each stringified it again (with 4 KB values, JSON
 * encoding was the largest share of the servers' CPU).
 */
export const valueJson = (value: Command.SlotValue): string => {
  let json = slotValueJson.get(value)
  if (json === undefined) {
    json = value._tag === "Batch" ? batchJson(value) : JSON.stringify(value)
    slotValueJson.set(value, json)
  }
  return json
}

/** The JSON of commands measured exactly (`commandJson`), until their batch's is made of it. */
const measuredCommandJson = new WeakMap<object, string>()

/**
 * A command's JSON, kept until a batch holding it is encoded (`valueJson`), which then
 * copies it instead of stringifying the command again: a replica measures a large
 * command's bytes exactly (4 KB values: a 17–20 µs `JSON.stringify` each, for their escapes).
 */
export const commandJson = (command: Command.Command): string => {
  let json = measuredCommandJson.get(command)
  if (json === undefined) {
    json = JSON.stringify(command)
    measuredCommandJson.set(command, json)
  }
  return json
}

/**
 * `JSON.stringify(batch)`, with the text of its commands measured already reused (and then
 * dropped: the batch's text is kept instead). A batch is `{ _tag, commands }` in that order
 * (`Trusted.batch`, the decoder), and `JSON.stringify` of an object is its properties' in
 * order, so the two are the same text (a property test holds them to it).
 */
const batchJson = (batch: Command.Batch): string => {
  const commands = batch.commands
  let measured = false
  for (const c of commands) {
    if (measuredCommandJson.has(c)) {
      measured = true
      break
    }
  }
  if (!measured) return JSON.stringify(batch)
  const parts = new Array<string>(commands.length)
  for (let i = 0; i < commands.length; i++) {
    const c = commands[i]!
    parts[i] = measuredCommandJson.get(c) ?? JSON.stringify(c)
    measuredCommandJson.delete(c)
  }
  return `{"_tag":"Batch","commands":[${parts.join(",")}]}`
}

/**
 * A pvalue's JSON, as `JSON.stringify` writes it (`{ ballot, slot, value }`), reusing its
 * value's text when this process made it already (`valueJson`: a leader's own proposals)
 * and keeping none: an acceptor sizes each P1b page by its pvalues' JSON, and holds
 * thousands of values it would otherwise keep twice.
 */
export const pvalueJson = (pv: Command.PValue): string => {
  const value = slotValueJson.get(pv.value)
  return value === undefined
    ? JSON.stringify(pv)
    : `{"ballot":${JSON.stringify(pv.ballot)},"slot":${pv.slot},"value":${value}}`
}

/**
 * `message`, with its JSON made of `accepted`, its pvalues' (`pvalueJson`, in order), and
 * kept for its encoding: an acceptor stringified every pvalue of a page to measure it,
 * then the page again to send it (a restarted replica's tail, read again by the leader,
 * is thousands of slots, pages of up to a megabyte). The text is what `JSON.stringify`
 * writes: the message's own properties in order, `accepted` spliced in.
 */
export const p1bWithJson = (message: P1b, accepted: ReadonlyArray<string>): P1b => {
  let json = ""
  for (const key of Object.keys(message)) {
    const field = (message as unknown as Record<string, unknown>)[key]
    if (field === undefined) continue
    const text = key === "accepted" ? `[${accepted.join(",")}]` : JSON.stringify(field)
    json += `${json === "" ? "{" : ","}${JSON.stringify(key)}:${text}`
  }
  messageJson.set(message, `${json}}`)
  return message
}

/** Each slot value's UTF-8 bytes, once (`valueBytes`). */
const slotValueBytes = new WeakMap<object, Uint8Array>()

/**
 * The UTF-8 bytes of `valueJson(value)`, encoded once per value: a leader's P2a and
 * Decision, and its own acceptor's log record, each encoded the same batch again (with
 * 4 KB values, UTF-8 encoding was 16% of the leader's CPU).
 */
export const valueBytes = (value: Command.SlotValue): Uint8Array => {
  let bytes = slotValueBytes.get(value)
  if (bytes === undefined) {
    bytes = utf8Encoder.encode(valueJson(value))
    slotValueBytes.set(value, bytes)
  }
  return bytes
}

/** The messages that carry a slot value. */
type Carrier = Extract<Message, { readonly _tag: "P2a" | "Decision" | "Propose" }>

const isCarrier = (m: Message): m is Carrier => m._tag === "P2a" || m._tag === "Decision" || m._tag === "Propose"

/** A carrier's JSON before and after its value, in `JSON.stringify`'s field order. */
const around = (m: Carrier): readonly [string, string] => {
  switch (m._tag) {
    case "P2a":
      return [`{"_tag":"P2a","ballot":${JSON.stringify(m.ballot)},"slot":${m.slot},"value":`, "}"]
    case "Decision":
      return [`{"_tag":"Decision","slot":${m.slot},"value":`, `,"ballot":${JSON.stringify(m.ballot)}}`]
    case "Propose":
      return [`{"_tag":"Propose","slot":${m.slot},"value":`, "}"]
  }
}

/** A message's JSON, as `JSON.stringify` writes it; the messages that carry a slot value share its text. */
const messageText = (m: Message): string => {
  if (!isCarrier(m)) return JSON.stringify(m)
  const [before, after] = around(m)
  return `${before}${valueJson(m.value)}${after}`
}

/** `parts` concatenated into one buffer (the part itself when there is one). */
export const concatBytes = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  if (parts.length === 1) return parts[0]!
  let length = 0
  for (const part of parts) length += part.length
  const out = new Uint8Array(length)
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

/** A message's UTF-8 bytes; a slot value's are shared (`valueBytes`). */
const messageUtf8 = (m: Message): Uint8Array => {
  if (!isCarrier(m)) return utf8Encoder.encode(messageJsonOf(m))
  const [before, after] = around(m)
  return concatBytes([utf8Encoder.encode(before), valueBytes(m.value), utf8Encoder.encode(after)])
}
/** Messages sent to one receiver only (a resend builds a new envelope but reuses the message: rare). */
const sentOnce: ReadonlySet<string> = new Set(["Chosen", "Read", "ReadResponse", "Request", "Response"])

/**
 * Encodes an envelope to JSON text. Every field of every message is JSON-native (no
 * bytes, bigints or dates), so an envelope's encoded form is exactly its JSON, and
 * `JSON.stringify` produces it several times faster than walking the schemas; a property
 * test holds the two to the same output. Messages are immutable, so a message sent to
 * several receivers is stringified once and only the addresses around it are new.
 * Envelopes hold only JSON-native values (Trusted builders and the decoder both keep to
 * the schemas), so this cannot fail.
 */
export const encode = (envelope: Envelope): string => `${head(envelope)}${messageJsonOf(envelope.message)}}`

/** An envelope's JSON up to its message. */
const head = (envelope: Envelope): string =>
  `{"from":${JSON.stringify(envelope.from)},"to":${JSON.stringify(envelope.to)},"message":`

/** The message's JSON, kept for the next receiver unless it has only one. */
const messageJsonOf = (message: Message): string => {
  // a client's request and a replica's answer each go to one receiver: nothing to reuse
  const once = sentOnce.has(message._tag)
  let json = once ? undefined : messageJson.get(message)
  if (json === undefined) {
    json = messageText(message)
    if (!once) messageJson.set(message, json)
  }
  return json
}

/** Each message's UTF-8 bytes, once (`encodeBytes`). */
const messageBytes = new WeakMap<object, Uint8Array>()

/**
 * `encode` as UTF-8 bytes. The message's bytes are encoded once and copied behind each
 * receiver's addresses: a P2a of a megabyte to two other acceptors was measured, then
 * encoded, once per receiver.
 */
export const encodeBytes = (envelope: Envelope): Uint8Array => {
  const message = envelope.message
  const once = sentOnce.has(message._tag)
  let body = once ? undefined : messageBytes.get(message)
  if (body === undefined) {
    body = messageUtf8(message)
    if (!once) messageBytes.set(message, body)
  }
  const prefix = utf8Encoder.encode(head(envelope))
  const bytes = new Uint8Array(prefix.length + body.length + 1)
  bytes.set(prefix, 0)
  bytes.set(body, prefix.length)
  bytes[bytes.length - 1] = 0x7d // "}"
  return bytes
}

/** The payload as text, or why it is not UTF-8. */
const toText = (input: string | Uint8Array): string | DecodeError => {
  if (typeof input === "string") return input
  try {
    return utf8Decoder.decode(input)
  } catch {
    return new DecodeError({ reason: "payload is not valid UTF-8" })
  }
}

/** The payload's JSON value, or why it is not JSON. */
const parse = (text: string): { readonly value: unknown } | DecodeError => {
  try {
    return { value: JSON.parse(text) }
  } catch (e) {
    return new DecodeError({ reason: `payload is not JSON: ${e instanceof Error ? e.message : String(e)}` })
  }
}

/** One parsed envelope, through the hand-written decoder. */
const decodeValue = (value: unknown): Result.Result<Envelope, DecodeError> => {
  const decoded = WireDecode.decode(value)
  return decoded instanceof WireDecode.Invalid
    ? Result.fail(new DecodeError({ reason: decoded.reason }))
    : Result.succeed(decoded)
}

/**
 * Decodes one envelope from JSON text or its UTF-8 bytes, validating every field as the
 * message schemas state (`internal/WireDecode.ts`: it accepts exactly what
 * `decodeWithSchema` accepts, a property test holds them to it) and building the message
 * classes without running their schemas a second time.
 */
export const decode = (input: string | Uint8Array): Result.Result<Envelope, DecodeError> => {
  const text = toText(input)
  if (typeof text !== "string") return Result.fail(text)
  const parsed = parse(text)
  return parsed instanceof DecodeError ? Result.fail(parsed) : decodeValue(parsed.value)
}

/** Decodes through the schemas: the reference `decode` must agree with. */
export const decodeWithSchema = (input: string | Uint8Array): Result.Result<Envelope, DecodeError> => {
  const text = toText(input)
  if (typeof text !== "string") return Result.fail(text)
  return Result.mapError(decodeWire(text), (e) => new DecodeError({ reason: formatter(e.issue) }))
}

const decodeValueWithSchema = Schema.decodeUnknownResult(Schema.toCodecJson(Envelope))

const openBracket = 0x5b // "["

const decodeManyWith =
  (
    decodeOne: (input: string) => Result.Result<Envelope, DecodeError>,
    decodeItem: (value: unknown) => Result.Result<Envelope, DecodeError>
  ) =>
  (input: string | Uint8Array): Result.Result<ReadonlyArray<Result.Result<Envelope, DecodeError>>, DecodeError> => {
    // one envelope: not an array (checked on the first byte, before any UTF-8 decoding)
    if (typeof input !== "string" && (input.length === 0 || input[0] !== openBracket)) {
      const text = toText(input)
      if (typeof text !== "string") return Result.fail(text)
      return Result.map(decodeOne(text), (e) => [Result.succeed(e)])
    }
    const text = toText(input)
    if (typeof text !== "string") return Result.fail(text)
    if (!text.startsWith("[")) return Result.map(decodeOne(text), (e) => [Result.succeed(e)])
    const parsed = parse(text)
    if (parsed instanceof DecodeError) return Result.fail(parsed)
    if (!Array.isArray(parsed.value))
      return Result.fail(new DecodeError({ reason: "expected an envelope or an array of them" }))
    return Result.succeed(parsed.value.map(decodeItem))
  }

const decodeManyFast = decodeManyWith(decode, decodeValue)

/**
 * Decodes a payload that holds one envelope or a JSON array of them (a transport that
 * coalesces what it sends to one receiver). The payload as a whole fails only when it is
 * not JSON or neither shape; each element of an array succeeds or fails on its own, so
 * one bad envelope does not hide the others. The payloads of the P2as among them are
 * kept for their acceptor's log (`receivedP2a`).
 */
export const decodeMany = (
  input: string | Uint8Array
): Result.Result<ReadonlyArray<Result.Result<Envelope, DecodeError>>, DecodeError> => {
  const decoded = decodeManyFast(input)
  if (Result.isSuccess(decoded)) keepP2as(input, decoded.success)
  return decoded
}

// -----------------------------------------------------------------------------------------
// Received P2as, logged as they came

/**
 * A P2a as it was received: the payload it came in, and its place there when the payload
 * is an array of envelopes (`decodeMany`). Decoding `payload` again (`receivedP2aJson`)
 * gives back exactly the P2a accepted: the same text through the same decoder, so the
 * value a duplicate key in a forged message leaves (JSON.parse keeps the last) is the same
 * both times, which a substring of the text cut around the value could not promise.
 */
export interface ReceivedP2a {
  readonly ballot: Ballot.Ballot
  readonly slot: number
  /** The whole payload: UTF-8 without a byte-order mark, or its text. */
  readonly payload: Uint8Array | string
  /** The P2a's index when `payload` is an array of envelopes. */
  readonly index: number | undefined
}

/** Received P2as by their value: what an acceptor keeps of a P2a it accepts is the value. */
const receivedP2as = new WeakMap<object, ReceivedP2a>()

/**
 * Payloads smaller than this are not kept: a small batch's JSON costs little to write
 * again, and less than the envelope around it to store.
 */
export const receivedMinBytes = 1024

const keepP2as = (input: string | Uint8Array, items: ReadonlyArray<Result.Result<Envelope, DecodeError>>): void => {
  if (input.length < receivedMinBytes) return
  // a byte-order mark, which the UTF-8 decoder drops, is no JSON: logged, it would not parse
  if (typeof input !== "string" && input[0] === 0xef) return
  const array = typeof input === "string" ? input.startsWith("[") : input[0] === openBracket
  let payload: Uint8Array | string | undefined
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!
    if (Result.isFailure(item) || item.success.message._tag !== "P2a") continue
    const p2a = item.success.message
    // a copy: the transport's buffer is reused for what it reads next
    payload ??= typeof input === "string" ? input : input.slice()
    receivedP2as.set(p2a.value, { ballot: p2a.ballot, slot: p2a.slot, payload, index: array ? i : undefined })
  }
}

/**
 * The received P2a that carried `pvalue`'s value at its ballot and slot, if this process
 * decoded one (`decodeMany`) and still holds the value.
 */
export const receivedP2a = (pvalue: {
  readonly ballot: Ballot.Ballot
  readonly slot: number
  readonly value: Command.SlotValue
}): ReceivedP2a | undefined => {
  const received = receivedP2as.get(pvalue.value)
  return received !== undefined && received.slot === pvalue.slot && Ballot.equals(received.ballot, pvalue.ballot)
    ? received
    : undefined
}

/**
 * The pvalue a received P2a carried, as JSON (`{ ballot, slot, value }`, the encoded form
 * of a `PValue`), from its parsed payload and index (`ReceivedP2a`), or why it holds none.
 * The envelope is checked by the decoder that accepted it on receipt.
 */
export const receivedP2aJson = (payload: unknown, index: number | undefined): unknown | DecodeError => {
  let element = payload
  if (index !== undefined) {
    if (!Array.isArray(payload) || !Number.isSafeInteger(index) || index < 0 || index >= payload.length) {
      return new DecodeError({ reason: `no envelope at index ${index} of the received payload` })
    }
    element = payload[index]
  }
  const decoded = WireDecode.decode(element)
  if (decoded instanceof WireDecode.Invalid) return new DecodeError({ reason: decoded.reason })
  if (decoded.message._tag !== "P2a") {
    return new DecodeError({ reason: `the received envelope holds a ${decoded.message._tag}, not a P2a` })
  }
  const message = (
    element as { readonly message: { readonly ballot: unknown; readonly slot: unknown; readonly value: unknown } }
  ).message
  return { ballot: message.ballot, slot: message.slot, value: message.value }
}

/** `decodeMany` through the schemas: the reference `decodeMany` must agree with. */
export const decodeManyWithSchema: (
  input: string | Uint8Array
) => Result.Result<ReadonlyArray<Result.Result<Envelope, DecodeError>>, DecodeError> = decodeManyWith(
  decodeWithSchema,
  (value) => Result.mapError(decodeValueWithSchema(value), (e) => new DecodeError({ reason: formatter(e.issue) }))
)

export const decodeEffect = (input: string | Uint8Array): Effect.Effect<Envelope, DecodeError> =>
  Effect.fromResult(decode(input))

/**
 * The one wire codec every transport uses: envelopes to JSON text and back, derived from
 * the message schemas. `Schema.toCodecJson` makes every field JSON-safe (STYLE.md §1.6).
 * Decoding never throws: bad bytes, bad JSON and wrong shapes become a `DecodeError`
 * carrying the reason.
 *
 * @since 0.1.0
 */
import { Effect, Result, Schema, SchemaIssue } from "effect"
import { Envelope } from "./Message.ts"

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

/**
 * Encodes an envelope to JSON text. Every field of every message is JSON-native (no
 * bytes, bigints or dates), so an envelope's encoded form is exactly its JSON, and
 * `JSON.stringify` produces it several times faster than walking the schemas; a property
 * test holds the two to the same output. Messages are immutable, so a message sent to
 * several receivers is stringified once and only the addresses around it are new.
 * Envelopes are validated when built, so this cannot fail.
 */
export const encode = (envelope: Envelope): string => {
  let message = messageJson.get(envelope.message)
  if (message === undefined) {
    message = JSON.stringify(envelope.message)
    messageJson.set(envelope.message, message)
  }
  return `{"from":${JSON.stringify(envelope.from)},"to":${JSON.stringify(envelope.to)},"message":${message}}`
}

export const encodeBytes = (envelope: Envelope): Uint8Array => utf8Encoder.encode(encode(envelope))

export const decode = (input: string | Uint8Array): Result.Result<Envelope, DecodeError> => {
  let text: string
  if (typeof input === "string") {
    text = input
  } else {
    try {
      text = utf8Decoder.decode(input)
    } catch {
      return Result.fail(new DecodeError({ reason: "payload is not valid UTF-8" }))
    }
  }
  return Result.mapError(decodeWire(text), (e) => new DecodeError({ reason: formatter(e.issue) }))
}

const decodeValue = Schema.decodeUnknownResult(Schema.toCodecJson(Envelope))

/**
 * Decodes a payload that holds one envelope or a JSON array of them (a transport that
 * coalesces what it sends to one receiver). The payload as a whole fails only when it is
 * not JSON or neither shape; each element of an array succeeds or fails on its own, so
 * one bad envelope does not hide the others.
 */
export const decodeMany = (
  input: string | Uint8Array
): Result.Result<ReadonlyArray<Result.Result<Envelope, DecodeError>>, DecodeError> => {
  let text: string
  if (typeof input === "string") {
    text = input
  } else {
    if (input.length === 0 || input[0] !== 0x5b /* [ */) return Result.map(decode(input), (e) => [Result.succeed(e)])
    try {
      text = utf8Decoder.decode(input)
    } catch {
      return Result.fail(new DecodeError({ reason: "payload is not valid UTF-8" }))
    }
  }
  if (!text.startsWith("[")) return Result.map(decode(text), (e) => [Result.succeed(e)])
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (e) {
    return Result.fail(
      new DecodeError({ reason: `payload is not JSON: ${e instanceof Error ? e.message : String(e)}` })
    )
  }
  if (!Array.isArray(parsed))
    return Result.fail(new DecodeError({ reason: "expected an envelope or an array of them" }))
  return Result.succeed(
    parsed.map((value) => Result.mapError(decodeValue(value), (e) => new DecodeError({ reason: formatter(e.issue) })))
  )
}

export const decodeEffect = (input: string | Uint8Array): Effect.Effect<Envelope, DecodeError> =>
  Effect.fromResult(decode(input))

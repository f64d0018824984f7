/**
 * How big a message may be, and what that leaves for the values inside it. Every message
 * a role sends fits the transport's limit (`Transport.maxMessageBytes`: NATS's
 * `max_payload`, or the in-memory bus's setting), because a transport drops what exceeds
 * it, and a message dropped at every retransmission is an outage, not a delay:
 *
 * - a client command larger than `commandBytes` is refused before it is sent;
 * - a replica closes a batch before its commands pass `batchBytes`, so a Propose, a P2a
 *   and a Decision, each carrying one batch, fit;
 * - an acceptor pages its P1b by slot range, each page under `pageBytes`;
 * - state transfer chunks and client responses are sized the same way.
 *
 * Sizes are UTF-8 bytes of the JSON encoding, as the wire codec writes it.
 *
 * @since 0.2.0
 */
import { Buffer } from "node:buffer"

/** NATS's default `max_payload`: the limit when nothing else says. */
export const defaultMaxMessageBytes = 1024 * 1024

/** The smallest limit synod runs with: below it, ordinary commands would not fit. */
export const minMaxMessageBytes = 8 * 1024

/**
 * Bytes kept in every message for everything around its payload: the envelope and its
 * two addresses, tags, ballot, slot, watermark, and the transport's headers. Addresses
 * are at most 73 characters and numbers 16 digits, so this is several times what they take.
 */
export const envelopeBytes = 2048

export interface Limits {
  /** The transport's limit for one encoded message. */
  readonly messageBytes: number
  /** The encoded commands of one batch, commas included: a Propose, P2a or Decision carries one. */
  readonly batchBytes: number
  /** One encoded client command (`Command`: client, seq, acked and op). */
  readonly commandBytes: number
  /** The pvalues of one P1b page, commas included. */
  readonly pageBytes: number
}

/** The limits that follow from a transport's message limit. */
export const fromMessageBytes = (messageBytes: number): Limits => {
  const m = Math.max(minMaxMessageBytes, Math.floor(messageBytes))
  const payload = m - envelopeBytes
  return {
    messageBytes: m,
    batchBytes: payload,
    // a batch of one command must fit: the brackets and the batch's tag come out of it
    commandBytes: payload - 64,
    // one pvalue adds its ballot and slot (under 128 bytes) to the batch it carries
    pageBytes: payload + 128
  }
}

/** UTF-8 bytes of `text`. */
export const utf8Bytes = (text: string): number => Buffer.byteLength(text, "utf8")

/** UTF-8 bytes of the JSON encoding of `value` (as the wire codec encodes it). */
export const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), "utf8")

/** Whether `JSON.stringify` writes `value` as its own enumerable properties: no `toJSON`, not a boxed primitive. */
const encodesOwnProperties = (value: object): boolean =>
  typeof (value as { readonly toJSON?: unknown }).toJSON !== "function" &&
  !(value instanceof Number || value instanceof String || value instanceof Boolean || value instanceof BigInt)

/**
 * An upper bound on `jsonBytes(value)` for JSON data (strings, numbers, booleans, null,
 * arrays, and objects), without encoding it: each UTF-16 unit of a string takes at most 6
 * bytes (an escape such as `\u001f`, or 3 bytes of UTF-8 for one unit), a number at most 25
 * characters (`-0.0000012345678901234567`: a sign, `0.`, five zeros and 17 digits; in
 * exponent form, from 1e-7 down, at most 24). An object is bounded by its own enumerable
 * properties, which is what `JSON.stringify` writes of any object without a `toJSON` (a
 * schema class's instance such as a `Command` too); `Infinity` for one with a `toJSON` or
 * a boxed primitive, which encode as something else, and for anything else (a bigint, which does not encode).
 */
const jsonBytesBound = (value: unknown): number => {
  switch (typeof value) {
    case "string":
      return 6 * value.length + 2
    case "number":
      return 25
    case "boolean":
      return 5
    case "object": {
      if (value === null) return 4
      if (Array.isArray(value)) {
        let n = 2 + value.length
        for (const v of value) n += jsonBytesBound(v)
        return n
      }
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null && !encodesOwnProperties(value)) return Number.POSITIVE_INFINITY
      let n = 2
      // `for in` with `hasOwn` walks what `Object.keys` lists without building its array:
      // a client bounds every command it sends, a replica every result it answers
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue
        const v = (value as Record<string, unknown>)[key]
        if (v === undefined) continue
        n += 6 * key.length + 4 + jsonBytesBound(v)
      }
      return n
    }
    default:
      return typeof value === "undefined" ? 0 : Number.POSITIVE_INFINITY
  }
}

/**
 * `jsonBytes(value)`, or the upper bound on it when that bound is at most `small`: for a
 * caller packing values into a message by count and by bytes, where values bounded that
 * small can never fill the message before the count does, so overcounting them changes
 * nothing and encoding each one only to count it is wasted. `stringify` (by default
 * `JSON.stringify`) makes the text measured otherwise: one that keeps it for later use.
 */
export const jsonBytesOrBound = <A>(
  value: A,
  small: number,
  stringify: (value: A) => string = JSON.stringify
): number => {
  const bound = jsonBytesBound(value)
  return bound <= small ? bound : utf8Bytes(stringify(value))
}

/**
 * Whether `jsonBytes(value) <= limit`, without encoding `value` when a bound already
 * says so (plain data far below the limit: a command's result, a read's answer).
 */
export const jsonFits = (value: unknown, limit: number): boolean =>
  jsonBytesBound(value) <= limit || jsonBytes(value) <= limit

/**
 * About the length of `JSON.stringify(value)`, without building it: strings count their
 * characters and quotes (not their escapes), numbers 8, and objects and arrays their
 * keys, brackets and separators. A replica counts every command it performs with it to
 * space its digest slots (`snapshotBytes`), so it must be deterministic, which it is: a
 * function of the value alone. Cheap for large strings, whose length is known.
 */
export const jsonLength = (value: unknown): number => {
  switch (typeof value) {
    case "string":
      return value.length + 2
    case "number":
      return 8
    case "boolean":
      return value ? 4 : 5
    case "object": {
      if (value === null) return 4
      // brackets, and a comma before every element but the first
      if (Array.isArray(value)) {
        let n = value.length === 0 ? 2 : 1 + value.length
        for (const v of value) n += jsonLength(v)
        return n
      }
      let n = 1
      let first = true
      for (const key in value) {
        const v = (value as Record<string, unknown>)[key]
        if (v === undefined) continue
        // quotes, colon and comma (the first one's stands for the closing brace)
        n += key.length + 4 + jsonLength(v)
        first = false
      }
      return first ? 2 : n
    }
    default:
      return 0
  }
}

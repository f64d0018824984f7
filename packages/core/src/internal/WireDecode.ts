/**
 * The hand-written wire decoder: checks a parsed JSON value against the envelope schemas
 * field by field and builds the message classes directly, several times faster than
 * walking the schemas (`Codec.decodeWithSchema`, the reference it must agree with; a
 * property test holds the two to the same answers, on valid envelopes and on mutated ones).
 *
 * It accepts exactly what the schemas accept, as `Schema.toCodecJson(Envelope)` decodes
 * with the default options:
 * - integers are safe integers (`Schema.Int`) with the field's lower bound, never strings;
 * - addresses match `Address`'s pattern; strings and booleans are the JSON types;
 * - an optional key may be absent, but when present it must hold a valid value (JSON has
 *   no `undefined`, so "present" and "not undefined" are the same here);
 * - keys the schema does not name are ignored and left out of the result;
 * - `Schema.Json` values (a command's `op`, a response's `result`) are kept as parsed, and
 *   rejected if they hold a non-finite number (`1e999` parses to `Infinity`);
 * - `_tag`s pick the message, slot value or nothing: an unknown or missing tag is an error.
 *
 * The input is what `JSON.parse` returns: plain objects, arrays, strings, numbers,
 * booleans, null. Because no field the schemas name is a property of `Object.prototype`,
 * reading `o.key` finds exactly the keys the schema parser finds with `key in o`.
 *
 * @internal
 */
import type { Schema } from "effect"
import * as Address from "../Address.ts"
import { Ballot } from "../Ballot.ts"
import { Batch, Command, Noop, PValue, Reconfigure, type SlotValue } from "../Command.ts"
import * as Configuration from "../Configuration.ts"
import { build } from "../Trusted.ts"
import {
  Confirm,
  Confirmed,
  Chosen,
  Decision,
  Digest,
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
  Response,
  StateChunk,
  StateRequest,
  type TransferId
} from "../Message.ts"

type Obj = { readonly [key: string]: unknown }

/**
 * Instances are laid out on their class's prototype without the constructor's schema pass
 * (see `Trusted.build`): safe because every field was checked here by the rules the
 * schema states. `fields` never holds `__proto__`: its keys are the schema's field
 * names, written out below.
 */
const trusted = build

// ---------------------------------------------------------------------------------------
// Failures: the path from the envelope down to the bad value, and what is wrong with it
// ---------------------------------------------------------------------------------------

/** Thrown on the first bad value and caught by `decode`; decoding is synchronous. */
export class Invalid {
  readonly reason: string
  constructor(reason: string) {
    this.reason = reason
  }
}

/** The keys from the envelope down to the object being checked. Reset by `decode`. */
const path: Array<string | number> = []

const formatPath = (): string => {
  let out = ""
  for (const key of path) out += typeof key === "number" ? `[${key}]` : out === "" ? key : `.${key}`
  return out === "" ? "envelope" : out
}

const show = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  switch (typeof value) {
    case "object":
      return "an object"
    case "string":
      return value.length > 40 ? `${JSON.stringify(value.slice(0, 40))}…` : JSON.stringify(value)
    default:
      return String(value)
  }
}

/** Fails at `key` of the current object (or at the current object itself). */
const invalid = (key: string | number | undefined, expected: string, actual: unknown): never => {
  if (key !== undefined) path.push(key)
  throw new Invalid(
    actual === undefined
      ? `${formatPath()}: missing, expected ${expected}`
      : `${formatPath()}: expected ${expected}, got ${show(actual)}`
  )
}

// ---------------------------------------------------------------------------------------
// Leaves
// ---------------------------------------------------------------------------------------

const isObject = (u: unknown): u is Obj => typeof u === "object" && u !== null && !Array.isArray(u)

const object = (o: Obj, key: string): Obj => {
  const v = o[key]
  return isObject(v) ? v : invalid(key, "an object", v)
}

const array = (o: Obj, key: string): ReadonlyArray<unknown> => {
  const v = o[key]
  return Array.isArray(v) ? v : invalid(key, "an array", v)
}

const string = (o: Obj, key: string): string => {
  const v = o[key]
  return typeof v === "string" ? v : invalid(key, "a string", v)
}

const boolean = (o: Obj, key: string): boolean => {
  const v = o[key]
  return typeof v === "boolean" ? v : invalid(key, "a boolean", v)
}

/** `Schema.Int` (a safe integer) checked `>= 0`. */
const natural = (o: Obj, key: string | number): number => {
  const v = o[key]
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : invalid(key, "an integer >= 0", v)
}

/** `Schema.Int` checked `>= 1`: slots, seqs, counts. */
const positive = (o: Obj, key: string): number => {
  const v = o[key]
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 1 ? v : invalid(key, "an integer >= 1", v)
}

/** An optional slot: absent, or an integer >= 1. */
const optionalPositive = (o: Obj, key: string): number | undefined =>
  o[key] === undefined ? undefined : positive(o, key)

/** `Address`'s pattern, the same expression. */
const addressPattern = Address.pattern

const address = (o: Obj, key: string): string => {
  const v = o[key]
  return typeof v === "string" && addressPattern.test(v)
    ? v
    : invalid(
        key,
        "an address (role/id, role one of replica, leader, acceptor, learner, client; a client id may be scope.name)",
        v
      )
}

/** `Message.StateDigest`'s pattern, the same expression. */
const digestPattern = /^[0-9a-f]{64}$/

const stateDigest = (o: Obj, key: string): string => {
  const v = o[key]
  return typeof v === "string" && digestPattern.test(v)
    ? v
    : invalid(key, "a state digest (64 lowercase hex digits)", v)
}

/** A node id (`Address.Id`'s pattern). */
const idPattern = /^[A-Za-z0-9_-]{1,64}$/

const id = (o: Obj, key: string | number): string => {
  const v = o[key]
  return typeof v === "string" && idPattern.test(v)
    ? v
    : invalid(key, "an id (1-64 characters of letters, digits, '_' or '-')", v)
}
/** `id`, under a name a case that has an `id` field of its own can use. */
const serverId = id

/**
 * `Schema.Json`: a tree of null, strings, booleans, finite numbers, arrays and plain
 * objects. Walked with a stack rather than recursion, so a deeply nested value is an
 * answer, not a stack overflow. The value is kept as parsed, as the schema keeps it.
 */
const isJson = (root: unknown): boolean => {
  const stack: Array<unknown> = [root]
  while (stack.length > 0) {
    const u = stack.pop()
    switch (typeof u) {
      case "string":
      case "boolean":
        break
      case "number":
        if (!Number.isFinite(u)) return false
        break
      case "object":
        if (u === null) break
        if (Array.isArray(u)) {
          for (let i = 0; i < u.length; i++) stack.push(u[i])
        } else {
          const proto = Object.getPrototypeOf(u)
          if (proto !== null && proto !== Object.prototype && Object.getPrototypeOf(proto) !== null) return false
          const o = u as Obj
          for (const key of Object.keys(o)) stack.push(o[key])
        }
        break
      default:
        return false
    }
  }
  return true
}

const json = (o: Obj, key: string): Schema.Json => {
  const v = o[key]
  return v !== undefined && isJson(v) ? (v as Schema.Json) : invalid(key, "a JSON value (numbers finite)", v)
}

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

const ballot = (o: Obj, key: string): Ballot => {
  const b = object(o, key)
  path.push(key)
  const out = trusted(Ballot, { round: natural(b, "round"), leader: string(b, "leader") })
  path.pop()
  return out
}

const command = (c: Obj): Command =>
  trusted(Command, {
    client: string(c, "client"),
    seq: positive(c, "seq"),
    acked: natural(c, "acked"),
    op: json(c, "op")
  })

/** A `Command` at `key` (a Request's). */
const commandAt = (o: Obj, key: string): Command => {
  const c = object(o, key)
  path.push(key)
  const out = command(c)
  path.pop()
  return out
}

const commands = (o: Obj, key: string): ReadonlyArray<Command> => {
  const items = array(o, key)
  path.push(key)
  const out = new Array<Command>(items.length)
  for (let i = 0; i < items.length; i++) {
    const c = items[i]
    if (!isObject(c)) invalid(i, "a command (an object)", c)
    path.push(i)
    out[i] = command(c as Obj)
    path.pop()
  }
  path.pop()
  return out
}

/** `Configuration.Members`' ids of one kind: 1 to `maxMembers` distinct ids. */
const memberIds = (o: Obj, key: string, what: string): ReadonlyArray<string> => {
  const items = array(o, key)
  if (items.length < 1) invalid(key, `at least one ${what}`, items)
  if (items.length > Configuration.maxMembers) invalid(key, `at most ${Configuration.maxMembers} ${what}s`, items)
  path.push(key)
  const out = new Array<string>(items.length)
  const seen = new Set<string>()
  for (let i = 0; i < items.length; i++) {
    const v = id(items as unknown as Obj, i)
    if (seen.has(v)) invalid(i, `no duplicate ${what} id`, v)
    seen.add(v)
    out[i] = v
  }
  path.pop()
  return out
}

const members = (o: Obj, key: string): Configuration.Members => {
  const m = object(o, key)
  path.push(key)
  const out = {
    acceptors: memberIds(m, "acceptors", "acceptor"),
    leaders: memberIds(m, "leaders", "leader"),
    replicas: memberIds(m, "replicas", "replica")
  }
  path.pop()
  return out
}

/** `Configuration.History`: 1 to `maxEntries` entries, `from` and `decidedAt` increasing. */
const history = (o: Obj, key: string): Configuration.History => {
  const items = array(o, key)
  if (items.length < 1) invalid(key, "a configuration history of at least one entry", items)
  if (items.length > Configuration.maxEntries) {
    invalid(key, `a configuration history of at most ${Configuration.maxEntries} entries`, items)
  }
  path.push(key)
  const out = new Array<Configuration.Entry>(items.length)
  for (let i = 0; i < items.length; i++) {
    const e = items[i]
    if (!isObject(e)) invalid(i, "a configuration entry (an object)", e)
    path.push(i)
    const entry = {
      from: positive(e as Obj, "from"),
      decidedAt: natural(e as Obj, "decidedAt"),
      members: members(e as Obj, "members")
    }
    path.pop()
    const before = out[i - 1]
    if (before !== undefined && (entry.from <= before.from || entry.decidedAt <= before.decidedAt)) {
      invalid(i, "an entry after the previous one (from and decidedAt increasing)", e)
    }
    out[i] = entry
  }
  path.pop()
  return out
}

const slotValue = (o: Obj, key: string): SlotValue => {
  const v = object(o, key)
  path.push(key)
  let out: SlotValue
  switch (v._tag) {
    case "Batch":
      out = trusted(Batch, { _tag: "Batch", commands: commands(v, "commands") })
      break
    case "Noop":
      out = trusted(Noop, { _tag: "Noop" })
      break
    case "Reconfigure":
      out = trusted(Reconfigure, { _tag: "Reconfigure", members: members(v, "members") })
      break
    default:
      return invalid("_tag", `"Batch", "Noop" or "Reconfigure"`, v._tag)
  }
  path.pop()
  return out
}

const pvalues = (o: Obj, key: string): ReadonlyArray<PValue> => {
  const items = array(o, key)
  path.push(key)
  const out = new Array<PValue>(items.length)
  for (let i = 0; i < items.length; i++) {
    const p = items[i]
    if (!isObject(p)) invalid(i, "a pvalue (an object)", p)
    path.push(i)
    out[i] = trusted(PValue, {
      ballot: ballot(p as Obj, "ballot"),
      slot: positive(p as Obj, "slot"),
      value: slotValue(p as Obj, "value")
    })
    path.pop()
  }
  path.pop()
  return out
}

const transferId = (o: Obj, key: string): TransferId => {
  const t = object(o, key)
  path.push(key)
  const out = { slotOut: positive(t, "slotOut"), checksum: natural(t, "checksum") }
  path.pop()
  return out
}

const naturals = (o: Obj, key: string): ReadonlyArray<number> => {
  const items = array(o, key)
  path.push(key)
  const out = new Array<number>(items.length)
  for (let i = 0; i < items.length; i++) out[i] = natural(items as unknown as Obj, i)
  path.pop()
  return out
}

// ---------------------------------------------------------------------------------------
// Messages, fields in the order the schemas declare them (which is the order of the keys
// of the instance, so `toString` and the encoder see what a decoded message always had)
// ---------------------------------------------------------------------------------------

const message = (m: Obj): Message => {
  switch (m._tag) {
    case "P1a": {
      const ballot_ = ballot(m, "ballot")
      const from = optionalPositive(m, "from")
      const before = optionalPositive(m, "before")
      return trusted(P1a, {
        _tag: "P1a",
        ballot: ballot_,
        ...(from === undefined ? undefined : { from }),
        ...(before === undefined ? undefined : { before })
      })
    }
    case "P1b": {
      const ballot_ = ballot(m, "ballot")
      const request = ballot(m, "request")
      const accepted = pvalues(m, "accepted")
      const watermark = optionalPositive(m, "watermark")
      const from = optionalPositive(m, "from")
      const before = optionalPositive(m, "before")
      const next = optionalPositive(m, "next")
      return trusted(P1b, {
        _tag: "P1b",
        ballot: ballot_,
        request,
        accepted,
        ...(watermark === undefined ? undefined : { watermark }),
        ...(from === undefined ? undefined : { from }),
        ...(before === undefined ? undefined : { before }),
        ...(next === undefined ? undefined : { next })
      })
    }
    case "P2a":
      return trusted(P2a, {
        _tag: "P2a",
        ballot: ballot(m, "ballot"),
        slot: positive(m, "slot"),
        value: slotValue(m, "value")
      })
    case "P2b": {
      const ballot_ = ballot(m, "ballot")
      const request = ballot(m, "request")
      const slot = positive(m, "slot")
      const watermark = optionalPositive(m, "watermark")
      return trusted(
        P2b,
        watermark === undefined
          ? { _tag: "P2b", ballot: ballot_, request, slot }
          : { _tag: "P2b", ballot: ballot_, request, slot, watermark }
      )
    }
    case "Propose":
      return trusted(Propose, { _tag: "Propose", slot: positive(m, "slot"), value: slotValue(m, "value") })
    case "Decision":
      return trusted(Decision, {
        _tag: "Decision",
        slot: positive(m, "slot"),
        value: slotValue(m, "value"),
        ballot: ballot(m, "ballot")
      })
    case "Chosen":
      return trusted(Chosen, { _tag: "Chosen", slot: positive(m, "slot"), ballot: ballot(m, "ballot") })
    case "Request":
      return trusted(Request, { _tag: "Request", command: commandAt(m, "command") })
    case "Response": {
      const seq = positive(m, "seq")
      const result = json(m, "result")
      const error = m.error === undefined ? undefined : string(m, "error")
      const slot = positive(m, "slot")
      const leader = m.leader === undefined ? undefined : serverId(m, "leader")
      return trusted(Response, {
        _tag: "Response",
        seq,
        result,
        ...(error === undefined ? {} : { error }),
        slot,
        ...(leader === undefined ? {} : { leader })
      })
    }
    case "Heartbeat": {
      const fields = {
        _tag: "Heartbeat",
        ballot: ballot(m, "ballot"),
        active: boolean(m, "active"),
        decided: natural(m, "decided"),
        slot: natural(m, "slot"),
        watermark: positive(m, "watermark")
      } as const
      return trusted(Heartbeat, m.to === undefined ? fields : { ...fields, to: id(m, "to") })
    }
    case "Progress": {
      const slotOut = positive(m, "slotOut")
      return trusted(
        Progress,
        m.history === undefined
          ? { _tag: "Progress", slotOut }
          : { _tag: "Progress", slotOut, history: history(m, "history") }
      )
    }
    case "History": {
      const history_ = history(m, "history")
      return trusted(History, { _tag: "History", history: history_, slotOut: positive(m, "slotOut") })
    }
    case "StateRequest": {
      const slotOut = positive(m, "slotOut")
      const transfer = m.transfer === undefined ? undefined : transferId(m, "transfer")
      const chunks = naturals(m, "chunks")
      return trusted(
        StateRequest,
        transfer === undefined
          ? { _tag: "StateRequest", slotOut, chunks }
          : { _tag: "StateRequest", slotOut, transfer, chunks }
      )
    }
    case "StateChunk":
      return trusted(StateChunk, {
        _tag: "StateChunk",
        transfer: transferId(m, "transfer"),
        index: natural(m, "index"),
        count: positive(m, "count"),
        data: string(m, "data")
      })
    case "Read":
      return trusted(Read, { _tag: "Read", client: string(m, "client"), id: positive(m, "id"), op: json(m, "op") })
    case "ReadResponse": {
      const id = positive(m, "id")
      const result = json(m, "result")
      const error = m.error === undefined ? undefined : string(m, "error")
      const slot = natural(m, "slot")
      const leader = m.leader === undefined ? undefined : serverId(m, "leader")
      return trusted(ReadResponse, {
        _tag: "ReadResponse",
        id,
        result,
        ...(error === undefined ? {} : { error }),
        slot,
        ...(leader === undefined ? {} : { leader })
      })
    }
    case "ReadIndex":
      return trusted(ReadIndex, { _tag: "ReadIndex", id: positive(m, "id") })
    case "ReadIndexReply":
      return trusted(ReadIndexReply, {
        _tag: "ReadIndexReply",
        id: positive(m, "id"),
        slot: positive(m, "slot"),
        ballot: ballot(m, "ballot")
      })
    case "Confirm":
      return trusted(Confirm, { _tag: "Confirm", ballot: ballot(m, "ballot"), round: positive(m, "round") })
    case "Confirmed":
      return trusted(Confirmed, {
        _tag: "Confirmed",
        ballot: ballot(m, "ballot"),
        request: ballot(m, "request"),
        round: positive(m, "round")
      })
    case "Digest":
      return trusted(Digest, {
        _tag: "Digest",
        slot: positive(m, "slot"),
        digest: stateDigest(m, "digest"),
        heard: boolean(m, "heard")
      })
    default:
      return invalid("_tag", "a message tag", m._tag)
  }
}

const envelope = (u: unknown): Envelope => {
  if (!isObject(u)) return invalid(undefined, "an envelope (an object)", u)
  const from = address(u, "from")
  const to = address(u, "to")
  const m = object(u, "message")
  path.push("message")
  const out = trusted(Envelope, { from, to, message: message(m) })
  path.pop()
  return out
}

/**
 * Decodes one parsed envelope: the envelope, or the reason it is not one (the path to
 * the first bad value and what is wrong with it).
 */
export const decode = (value: unknown): Envelope | Invalid => {
  path.length = 0
  try {
    return envelope(value)
  } catch (e) {
    if (e instanceof Invalid) return e
    throw e
  }
}

/**
 * Hand-written codecs for what every write and read carries (`Get`, `Put`, `Del`, `Cas`
 * and their results `Value`, `Written`, `Deleted`, `Swapped`), tried before the schemas
 * (`StateMachine.fast`). Each answers only for a value its schema accepts, with what the
 * schema's codec gives, fields in the schema's order (a replica's snapshot holds encoded
 * results, and replicas on two versions during an upgrade must encode them alike); for
 * anything else it answers `undefined` and the schema decides, and words the error. A
 * property test holds each to its schema (`test/FastCodecs.test.ts`).
 *
 * @since 0.3.0
 */
import type { Schema } from "effect"
// read only when a codec runs, after both modules have loaded
import { type Command, maxKeyLength, maxValueLength, type Result } from "./Kv.ts"

type Fields = Record<string, unknown>

const isRecord = (u: unknown): u is Fields => typeof u === "object" && u !== null && !Array.isArray(u)
const own = (u: Fields, key: string): unknown => (Object.hasOwn(u, key) ? u[key] : undefined)

const isKey = (k: unknown): k is string =>
  typeof k === "string" && k.length >= 1 && k.length <= maxKeyLength && k !== "." && k !== ".."
const isValue = (v: unknown): v is string => typeof v === "string" && v.length <= maxValueLength
const isVersion = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0
const isLeaseId = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 1

/** A `Get`, `Put`, `Del` or `Cas` the schema accepts, as it decodes (or encodes) it. */
const command = (u: unknown): Command | undefined => {
  if (!isRecord(u)) return undefined
  switch (own(u, "_tag")) {
    case "Get": {
      const key = own(u, "key")
      return isKey(key) ? { _tag: "Get", key } : undefined
    }
    case "Del": {
      const key = own(u, "key")
      return isKey(key) ? { _tag: "Del", key } : undefined
    }
    case "Put": {
      const key = own(u, "key")
      const value = own(u, "value")
      if (!isKey(key) || !isValue(value)) return undefined
      if (!Object.hasOwn(u, "lease")) return { _tag: "Put", key, value }
      const lease = u.lease
      return isLeaseId(lease) ? { _tag: "Put", key, value, lease } : undefined
    }
    case "Cas": {
      const key = own(u, "key")
      const version = own(u, "version")
      const value = own(u, "value")
      return isKey(key) && isVersion(version) && isValue(value) ? { _tag: "Cas", key, version, value } : undefined
    }
    default:
      return undefined
  }
}

const isNullableString = (v: unknown): v is string | null => v === null || typeof v === "string"

/** A `Value`, `Written`, `Deleted` or `Swapped` the schema accepts, as it decodes (or encodes) it. */
const result = (u: unknown): Result | undefined => {
  if (!isRecord(u)) return undefined
  switch (own(u, "_tag")) {
    case "Written": {
      const version = own(u, "version")
      return isVersion(version) ? { _tag: "Written", version } : undefined
    }
    case "Value": {
      const value = own(u, "value")
      const version = own(u, "version")
      return isNullableString(value) && isVersion(version) ? { _tag: "Value", value, version } : undefined
    }
    case "Deleted": {
      const existed = own(u, "existed")
      return typeof existed === "boolean" ? { _tag: "Deleted", existed } : undefined
    }
    case "Swapped": {
      const ok = own(u, "ok")
      const version = own(u, "version")
      const value = own(u, "value")
      return typeof ok === "boolean" && isVersion(version) && isNullableString(value)
        ? { _tag: "Swapped", ok, version, value }
        : undefined
    }
    default:
      return undefined
  }
}

export const encodeCommand = (c: Command): Schema.Json | undefined => command(c) as Schema.Json | undefined
export const decodeCommand = command
export const encodeResult = (r: Result): Schema.Json | undefined => result(r) as Schema.Json | undefined
export const decodeResult = result

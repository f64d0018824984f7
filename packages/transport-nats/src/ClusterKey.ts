/**
 * Authenticated envelopes (issue 14), for clusters whose NATS does not enforce permissions:
 * with a cluster key configured, every NATS message a transport publishes starts with a
 * line carrying an HMAC-SHA-256 (`node:crypto`) over the subject, the sender's id, a
 * per-sender counter and the exact bytes of the body that follows:
 *
 * ```
 * ~m1 <key id> <sender> <counter> <mac, base64url>\n<body: an envelope or a JSON array of them>
 * ```
 *
 * - **Who may speak.** A receiver with keys drops a message on a protocol subject that has
 *   no MAC, a MAC by a key it does not hold, or a wrong one. Requests of clients that hold
 *   no key need none (giving clients the key would let them forge protocol messages); a
 *   MAC on them is checked all the same, and stripped by a receiver without keys. The
 *   servers' own clients (the HTTP API's, in the scope of their node id) are another
 *   matter: their requests and the answers to them are sealed like protocol messages, and
 *   the transport requires the MAC on them (`NatsTransport`), so no one without the key can
 *   act as such a client or answer it.
 * - **Replays.** The counter of each sender only grows: the sender's wall clock in
 *   microseconds, or one more than its last, whichever is larger, so it keeps growing
 *   across restarts too. A receiver drops a message whose counter is not above the last it
 *   accepted from that sender (NATS delivers one publisher's messages in order, so a
 *   genuine message is never dropped for it). Each listener keeps its own window, so
 *   two listeners on one address both get every message. A receiver that restarted accepts each
 *   sender's first message whatever its counter: Paxos tolerates a genuine message
 *   delivered late or twice, so a replay slipping through then costs no safety.
 * - **Rotation.** A receiver accepts the `current` key and the `previous` one; a sender
 *   uses `current`. Roll out `{current: new, previous: old}` everywhere, then drop `old`.
 *   The key id in the line (8 hex digits of SHA-256 of the key) picks the key to check.
 *
 * Off by default; off, no byte is added and the only cost is one comparison of the first
 * byte of a received message.
 *
 * @since 0.1.0
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto"

/** The current key, and the previous one during a rotation. Keys are secrets of at least 32 characters. */
export interface Keys {
  readonly current: string
  readonly previous?: string
}

/** The first byte of an authenticated message (`~`; an envelope starts with `{` or `[`). */
export const mark = 0x7e
const tag = "~m1"
/** The most bytes the line before the body takes (sender ids are at most 128 characters). */
export const overheadBytes = 256
const senderPattern = /^[A-Za-z0-9_.-]{1,128}$/

const keyId = (key: string): string => createHash("sha256").update(key, "utf8").digest("hex").slice(0, 8)

const mac = (key: string, subject: string, sender: string, counter: number, body: string | Uint8Array): Buffer =>
  createHmac("sha256", key).update(`${subject}\n${sender}\n${counter}\n`).update(body).digest()

export interface Sealer {
  /** `body` with the MAC line in front, for `subject` (text for text, bytes for bytes). */
  seal(subject: string, body: string): string
  seal(subject: string, body: string | Uint8Array): string | Uint8Array
}

/** A sealer for the transport of sender `sender`; `now` gives the wall clock in ms. */
export const sealer = (keys: Keys, sender: string, now: () => number = Date.now): Sealer => {
  if (!senderPattern.test(sender)) throw new Error(`sender id ${JSON.stringify(sender)}: 1-128 of [A-Za-z0-9_.-]`)
  const id = keyId(keys.current)
  let counter = 0
  return {
    seal: ((subject: string, body: string | Uint8Array) => {
      counter = Math.max(counter + 1, now() * 1000)
      const m = mac(keys.current, subject, sender, counter, body).toString("base64url")
      const line = `${tag} ${id} ${sender} ${counter} ${m}\n`
      if (typeof body === "string") return `${line}${body}`
      const head = new TextEncoder().encode(line)
      const bytes = new Uint8Array(head.length + body.length)
      bytes.set(head, 0)
      bytes.set(body, head.length)
      return bytes
    }) as Sealer["seal"]
  }
}

/** Why a message was dropped: no MAC, a bad one, or a replay. */
export interface Refusal {
  readonly kind: "unauthenticated" | "replayed"
  readonly reason: string
}

export interface Opener {
  /**
   * The body of `data` received on `subject`, its MAC checked; or why it must be dropped.
   * `required`: a message without a MAC is refused (protocol subjects).
   */
  open(subject: string, data: Uint8Array, required: boolean): Uint8Array | Refusal
  /** Whether a message with a valid MAC by `sender` was opened here (it is a server's). */
  knows(sender: string): boolean
}

const decoder = new TextDecoder()

/** The end of the MAC line (index of its `\n`), or -1. */
const lineEnd = (data: Uint8Array): number => {
  const end = Math.min(data.length, overheadBytes)
  for (let i = 0; i < end; i++) if (data[i] === 0x0a) return i
  return -1
}

/** Strips the MAC line without checking it: for a receiver that holds no key. */
export const strip = (data: Uint8Array): Uint8Array | Refusal => {
  if (data[0] !== mark) return data
  const nl = lineEnd(data)
  return nl === -1 ? { kind: "unauthenticated", reason: "a malformed MAC line" } : data.subarray(nl + 1)
}

/** An opener holding `keys`; it remembers the last counter of up to `maxSenders` senders. */
export const opener = (keys: Keys, maxSenders = 4096): Opener => {
  const byId = new Map<string, string>([[keyId(keys.current), keys.current]])
  if (keys.previous !== undefined) byId.set(keyId(keys.previous), keys.previous)
  const last = new Map<string, number>()
  return {
    open: (subject, data, required) => {
      if (data[0] !== mark) {
        return required ? { kind: "unauthenticated", reason: "no MAC on a protocol message" } : data
      }
      const nl = lineEnd(data)
      const parts = nl === -1 ? [] : decoder.decode(data.subarray(0, nl)).split(" ")
      if (parts.length !== 5 || parts[0] !== tag) return { kind: "unauthenticated", reason: "a malformed MAC line" }
      const [, id, sender, count, given] = parts as [string, string, string, string, string]
      const key = byId.get(id)
      if (key === undefined)
        return { kind: "unauthenticated", reason: `a MAC by key ${id}, which this server does not hold` }
      const counter = Number(count)
      if (!Number.isSafeInteger(counter) || counter < 1 || !senderPattern.test(sender)) {
        return { kind: "unauthenticated", reason: "a malformed MAC line" }
      }
      const body = data.subarray(nl + 1)
      const expected = mac(key, subject, sender, counter, body)
      const actual = Buffer.from(given, "base64url")
      if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
        return { kind: "unauthenticated", reason: `a wrong MAC (sender ${sender})` }
      }
      const previous = last.get(sender)
      if (previous !== undefined && counter <= previous) {
        return { kind: "replayed", reason: `counter ${counter} of sender ${sender} is not above its last, ${previous}` }
      }
      // insertion order is the eviction order: a sender seen again moves to the end
      last.delete(sender)
      last.set(sender, counter)
      if (last.size > maxSenders) last.delete(last.keys().next().value!)
      return body
    },
    knows: (sender) => last.has(sender)
  }
}

/**
 * When a sealed message was sealed, by its sender's clock in ms (its counter is that clock
 * in µs, or just above the last one): for a receiver that drops stale messages. `undefined`
 * when `data` has no well-formed MAC line. Read it only from a message `open` accepted.
 */
export const sealedAt = (data: Uint8Array): number | undefined => {
  if (data[0] !== mark) return undefined
  const nl = lineEnd(data)
  const parts = nl === -1 ? [] : decoder.decode(data.subarray(0, nl)).split(" ")
  const counter = Number(parts[3])
  return parts.length === 5 && Number.isSafeInteger(counter) && counter > 0 ? counter / 1000 : undefined
}

/** Whether `sender` can be a sender id: 1-128 of letters, digits, `_`, `.` and `-`. */
export const isSender = (sender: string): boolean => senderPattern.test(sender)

/** Whether `key` can be a cluster key: 32 to 1024 characters. */
export const isKey = (key: string): boolean => key.length >= 32 && key.length <= 1024

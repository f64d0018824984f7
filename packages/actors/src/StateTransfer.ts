/**
 * State transfer between replicas (docs/protocol.md#state-transfer): a replica whose slotOut is below the
 * GC watermark, or that lost its disk, can no longer learn the decisions it misses (the
 * acceptors forgot them), so it copies a snapshot from a peer replica that is ahead.
 *
 * The asker (`Sink`) pulls: it names what it has, the peer (`Source`) has its host encode
 * its state, slotOut and client table once, off its loop (`encodeForTransfer`), and serves
 * that encoding in chunks of `transferChunkBytes` characters, `PULL` at a time as the asker
 * asks for them. The asker
 * re-asks for chunks that do not arrive, moves to another peer when one stays silent, and
 * installs the snapshot only when every chunk arrived and the CRC-32 of the whole encoding
 * matches, and it decodes as a `ReplicaSnapshot`. A peer's state is a valid snapshot
 * whether or not the peer has saved it: it reflects the decided slots below its slotOut.
 *
 * Both sides are plain classes without I/O; the replica feeds them messages, the clock and
 * the encodings its host made.
 *
 * @since 0.1.0
 */
import { crc32 } from "node:zlib"
import { type Address, JsonText, Message, Storage } from "@synod/core"
import { Result, Schema } from "effect"

/** Chunks requested at a time: enough to keep the link busy, few enough never to flood it. */
export const PULL = 8
/** Ticks without a new chunk before the asker re-asks, and before it tries another peer. */
const RETRY_TICKS = 1
const SWITCH_TICKS = 5
/** A served encoding is dropped after this long unused. */
const IDLE_MS = 10_000

const decodeSnapshot = Schema.decodeUnknownResult(Storage.ParsedReplicaSnapshot)

/** What the serving replica knows of itself. */
export interface Own {
  readonly slotOut: number
  /** The lowest slotOut worth serving: the GC watermark as this replica knows it. */
  readonly floor: number
  readonly now: number
}

/**
 * How long an encoding asked of the host (`Served.encode`) is waited for before a request
 * asks for another: a job the host's worker dropped (it keeps a few) is asked again.
 */
const PREPARE_MS = 10_000

/** Askers waiting for one encoding, at most: a request past them waits for its next ask. */
const MAX_WAITING = 64

/** What a request got: chunks to send back, and whether the host must encode the state (`Own.slotOut`) first. */
export interface Served {
  readonly chunks: ReadonlyArray<Message.StateChunk>
  /**
   * No encoding of a state ahead of the asker is at hand: the host encodes the replica's
   * state at `Own.slotOut` off the loop (`encodeForTransfer`) and hands it to `prepared`,
   * which answers every asker that waited. Encoded here, on the serving replica's loop, the
   * 14 MB of 100,000 keys held every role of its process for 65-90 ms.
   */
  readonly encode: boolean
}

const nothing: Served = { chunks: [], encode: false }

/** The peer side: serves one encoding of its snapshot at a time. */
export class Source {
  private served:
    | { readonly id: Message.TransferId; readonly chunks: ReadonlyArray<string>; usedAt: number }
    | undefined
  /** The encoding asked of the host and not back yet: of the state at `slotOut`, and who waits for it. */
  private preparing:
    | { readonly slotOut: number; readonly since: number; readonly askers: Map<Address.Address, number> }
    | undefined
  readonly chunkChars: number

  constructor(chunkChars: number) {
    this.chunkChars = chunkChars
  }

  /** Answers `request` from `from` with chunks of `own` state, or asks for its encoding. */
  serve(from: Address.Address, request: Message.StateRequest, own: Own): Served {
    const served = this.served
    if (request.transfer !== undefined) {
      // a transfer in progress: resend what it asks for, if this is still the one served
      if (
        served === undefined ||
        served.id.slotOut !== request.transfer.slotOut ||
        served.id.checksum !== request.transfer.checksum
      ) {
        return own.slotOut > request.slotOut ? this.begin(from, request.slotOut, own) : nothing
      }
      served.usedAt = own.now
      return { chunks: request.chunks.filter((i) => i < served.chunks.length).map((i) => this.chunk(i)), encode: false }
    }
    if (own.slotOut <= request.slotOut) return nothing
    return this.begin(from, request.slotOut, own)
  }

  /**
   * The encoding of the state at `slotOut` (`encodeForTransfer`): served from now on, unless
   * one of a later state is; answers the askers that waited for it with the first chunks of
   * what is served.
   */
  prepared(
    slotOut: number,
    encoding: { readonly chunks: ReadonlyArray<string>; readonly checksum: number },
    now: number
  ): Array<{ readonly to: Address.Address; readonly message: Message.StateChunk }> {
    if (this.served === undefined || this.served.id.slotOut < slotOut) {
      this.served = {
        id: { slotOut, checksum: encoding.checksum },
        chunks: encoding.chunks.length === 0 ? [""] : encoding.chunks,
        usedAt: now
      }
    }
    const p = this.preparing
    if (p?.slotOut !== slotOut) return []
    this.preparing = undefined
    const served = this.served
    served.usedAt = now
    const count = Math.min(PULL, served.chunks.length)
    const out: Array<{ readonly to: Address.Address; readonly message: Message.StateChunk }> = []
    for (const [to, askerAt] of p.askers) {
      if (askerAt >= served.id.slotOut) continue
      for (let i = 0; i < count; i++) out.push({ to, message: this.chunk(i) })
    }
    return out
  }

  /** Forgets the encoding asked of the host and who waited for it (its server may not serve now). */
  abandon(): void {
    this.preparing = undefined
  }

  /** Drops an encoding nobody asked for in a while, and forgets one asked of the host that is overdue. */
  tick(now: number): void {
    if (this.served !== undefined && now - this.served.usedAt > IDLE_MS) this.served = undefined
    if (this.preparing !== undefined && now - this.preparing.since > PREPARE_MS) this.preparing = undefined
  }

  private begin(from: Address.Address, askerAt: number, own: Own): Served {
    const { slotOut, floor, now } = own
    const served = this.served
    // reuse the encoding another asker got, unless it is no longer ahead of this one or of the watermark
    if (served !== undefined && served.id.slotOut > askerAt && served.id.slotOut >= Math.min(floor, slotOut)) {
      served.usedAt = now
      const count = Math.min(PULL, served.chunks.length)
      return { chunks: Array.from({ length: count }, (_, i) => this.chunk(i)), encode: false }
    }
    // one is being made: wait for it with the others, if it will be ahead of this asker
    const p = this.preparing
    if (
      p !== undefined &&
      p.slotOut > askerAt &&
      p.slotOut >= Math.min(floor, slotOut) &&
      now - p.since <= PREPARE_MS
    ) {
      if (p.askers.has(from) || p.askers.size < MAX_WAITING) p.askers.set(from, askerAt)
      return nothing
    }
    this.preparing = { slotOut, since: now, askers: new Map([[from, askerAt]]) }
    return { chunks: [], encode: true }
  }

  private chunk(index: number): Message.StateChunk {
    const served = this.served!
    return new Message.StateChunk({
      transfer: served.id,
      index,
      count: served.chunks.length,
      data: served.chunks[index]!
    })
  }
}

/**
 * A snapshot's text as state transfer serves it: its JSON (`JsonText.stringifyChunks`, a
 * slice per step) cut into chunks of `chunkChars` characters, and the CRC-32 of the whole
 * text. Run off the replica's loop, a slice per turn (`JsonText.runGradually`).
 */
export function* encodeForTransfer(
  snapshot: Storage.ReplicaSnapshot,
  chunkChars: number
): Generator<void, { readonly chunks: ReadonlyArray<string>; readonly checksum: number }, void> {
  const text = yield* JsonText.stringifyChunks(snapshot as unknown as Schema.Json)
  const chunks: Array<string> = []
  let checksum = 0
  let carry = ""
  let since = 0
  for (const piece of text) {
    // the text's pieces end between JSON values, never inside a character's UTF-8
    // bytes, so their CRC-32s chain into the whole text's
    checksum = crc32(piece, checksum)
    carry += piece
    while (carry.length >= chunkChars) {
      chunks.push(carry.slice(0, chunkChars))
      carry = carry.slice(chunkChars)
    }
    since += piece.length
    if (since >= JsonText.sliceChars) {
      since = 0
      yield
    }
  }
  if (carry.length > 0 || chunks.length === 0) chunks.push(carry)
  return { chunks, checksum }
}

export type Received =
  /** `encoded`: the snapshot's text as the peer encoded it (what a state digest hashes). */
  | { readonly _tag: "Snapshot"; readonly snapshot: Storage.ReplicaSnapshot; readonly encoded: string }
  | { readonly _tag: "Rejected"; readonly reason: string }

/** The asker side: fetches one snapshot, from one peer at a time. */
export class Sink {
  private readonly peers: Array<Address.Address>
  private next = 0
  private chunksTaken = 0
  private transfer:
    | {
        readonly peer: Address.Address
        id: Message.TransferId | undefined
        chunks: Array<string | undefined>
        received: number
        /** Indices asked for and not yet received. */
        readonly asked: Set<number>
        /** Ticks since the last new chunk. */
        idle: number
      }
    | undefined

  constructor(peers: ReadonlyArray<Address.Address>, start = 0) {
    this.peers = [...peers]
    this.next = peers.length === 0 ? 0 : start % peers.length
  }

  /**
   * A replica it did not know of that showed itself (its digests): one more peer to ask.
   * A replica restarted empty knows only the cluster config's replicas, which a
   * configuration change may have replaced (docs/reconfiguration.md).
   */
  addPeer(peer: Address.Address): void {
    if (!this.peers.includes(peer) && this.peers.length < 256) this.peers.push(peer)
  }

  get active(): boolean {
    return this.transfer !== undefined
  }

  /** Chunks taken so far, over every transfer: it moves only when a transfer makes progress. */
  get taken(): number {
    return this.chunksTaken
  }

  /** Stops fetching (caught up by other means). */
  stop(): void {
    this.transfer = undefined
  }

  /**
   * Timer, while behind: start, re-ask or move to another peer. What to send. A transfer
   * begins with another peer than `busy` when there is one (the replica beside the active
   * leader, whose process serving megabytes of chunks would slow every write), and moves on
   * to it in turn.
   */
  tick(
    slotOut: number,
    busy?: Address.Address
  ): Array<{ readonly to: Address.Address; readonly message: Message.StateRequest }> {
    if (this.peers.length === 0) return []
    const t = this.transfer
    if (t !== undefined && t.idle < SWITCH_TICKS) {
      t.idle++
      if (t.idle <= RETRY_TICKS) return []
      return [{ to: t.peer, message: this.ask(slotOut) }]
    }
    // a first ask only: moving on from a peer that sent nothing, the busy one is next in turn
    if (t === undefined && this.peers[this.next] === busy && this.peers.length > 1)
      this.next = (this.next + 1) % this.peers.length
    const peer = this.peers[this.next]!
    this.next = (this.next + 1) % this.peers.length
    this.transfer = begun(peer)
    return [{ to: peer, message: new Message.StateRequest({ slotOut, chunks: [] }) }]
  }

  /**
   * A chunk from `from`. Returns the verified snapshot once the transfer is complete, a
   * rejection if it is complete but damaged, and otherwise what to ask for next.
   */
  chunk(
    from: Address.Address,
    chunk: Message.StateChunk,
    slotOut: number
  ): {
    readonly received?: Received
    readonly send: Array<{ readonly to: Address.Address; readonly message: Message.StateRequest }>
  } {
    let t = this.transfer
    if (t === undefined) return { send: [] }
    if (t.peer !== from) {
      // a peer asked before answers late: while the current one sent nothing, follow it. A
      // busy peer's first chunk came after the switch to the next peer (five ticks), and a
      // dead next peer sent nothing, so under load a copy never completed
      if (t.received > 0 || !this.peers.includes(from)) return { send: [] }
      t = begun(from)
      this.transfer = t
    }
    if (t.id === undefined || t.id.slotOut !== chunk.transfer.slotOut || t.id.checksum !== chunk.transfer.checksum) {
      // the peer serves another encoding than the one begun: a newer one replaces it
      if (t.id !== undefined && chunk.transfer.slotOut <= t.id.slotOut) return { send: [] }
      t.id = chunk.transfer
      t.chunks = new Array(chunk.count).fill(undefined)
      t.received = 0
      t.asked.clear()
      for (let i = 0; i < Math.min(PULL, chunk.count); i++) t.asked.add(i)
    }
    if (chunk.count !== t.chunks.length || chunk.index >= t.chunks.length) return { send: [] }
    t.asked.delete(chunk.index)
    if (t.chunks[chunk.index] !== undefined) return { send: [] }
    t.chunks[chunk.index] = chunk.data
    t.received++
    this.chunksTaken++
    t.idle = 0
    if (t.received === t.chunks.length) {
      this.transfer = undefined
      return { received: verify(t.chunks as Array<string>, t.id), send: [] }
    }
    return t.asked.size === 0 ? { send: [{ to: t.peer, message: this.ask(slotOut) }] } : { send: [] }
  }

  /** The next request of the current transfer: the first `PULL` chunks still missing. */
  private ask(slotOut: number): Message.StateRequest {
    const t = this.transfer!
    if (t.id === undefined) return new Message.StateRequest({ slotOut, chunks: [] })
    t.asked.clear()
    for (let i = 0; i < t.chunks.length && t.asked.size < PULL; i++) if (t.chunks[i] === undefined) t.asked.add(i)
    return new Message.StateRequest({ slotOut, transfer: t.id, chunks: [...t.asked] })
  }
}

/** A transfer from `peer` that has received nothing yet. */
const begun = (peer: Address.Address) => ({
  peer,
  id: undefined as Message.TransferId | undefined,
  chunks: [] as Array<string | undefined>,
  received: 0,
  asked: new Set<number>(),
  idle: 0
})

/** The snapshot the chunks spell, if its checksum matches and it decodes. */
const verify = (chunks: ReadonlyArray<string>, id: Message.TransferId): Received => {
  const encoded = chunks.join("")
  if (crc32(encoded) !== id.checksum) return { _tag: "Rejected", reason: "checksum mismatch" }
  let json: unknown
  try {
    json = JSON.parse(encoded)
  } catch (e) {
    return { _tag: "Rejected", reason: `not JSON: ${String(e)}` }
  }
  const decoded = decodeSnapshot(json)
  if (Result.isFailure(decoded)) return { _tag: "Rejected", reason: `not a snapshot: ${decoded.failure.message}` }
  if (decoded.success.slotOut !== id.slotOut) return { _tag: "Rejected", reason: "slotOut does not match the transfer" }
  return { _tag: "Snapshot", snapshot: decoded.success, encoded }
}

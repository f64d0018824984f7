/**
 * The on-disk frame every synod file is made of, and the scan that decides, after a crash,
 * which frames to trust.
 *
 * A frame is `[u32 length][u32 crc32][payload]`, both integers little endian, the CRC-32
 * (zlib's, as `zlib.crc32`) taken over the payload only. A write-ahead log is frames back to
 * back; a single-value file (leader round, replica snapshot) is exactly one frame.
 *
 * Recovery rule (`scan`). Frames are read from offset 0 until the first one that is not
 * *valid*: at least 8 header bytes, a length in `1..MaxPayloadBytes`, the whole payload
 * inside the file, and a matching checksum. Call its offset `o`. Then:
 *
 * - if the bytes from `o` to the end of the file are all zero, they are space a log zeroed
 *   ahead of its appends (`Wal`): no damage, and the log ends at `o`;
 * - else, if no valid frame starts at any byte offset after `o`, the bytes from `o` to the end
 *   of the file are a **torn tail**: the remains of a write that a crash interrupted before
 *   its fsync completed, so no caller was ever told it was durable. They are cut off.
 * - otherwise a valid frame *follows* the damage, so the damage is in the **middle** of the
 *   log: records after it may have been acknowledged, and dropping them (or skipping the
 *   bad one) could make an acceptor forget a promise or a vote. That is `Corrupt`, and the
 *   caller must stop.
 *
 * Why searching every byte offset rather than just following the damaged frame's length:
 * a damaged length field (a flipped bit turning 120 into 8 388 728) would otherwise make
 * the rest of the log look like one frame that "runs past the end", i.e. a torn tail, and
 * silently drop acknowledged records. The search is cheap in practice: payloads are JSON
 * text, which contains no NUL bytes, so almost every offset fails the length test at once.
 *
 * The rule assumes the disk returns what was fsynced (no bit rot in synced data). Under
 * that assumption a bad *last* frame can only be an interrupted write, so cutting it is
 * safe. Damage to a synced last frame is indistinguishable from a torn write with this
 * format; see the package README.
 *
 * @since 0.1.0
 */
import { JsonText } from "@synod/core"
import * as Zlib from "node:zlib"

/** Bytes before the payload: length and checksum. */
export const HeaderBytes = 8

/**
 * The largest payload a frame may carry (256 MiB). Larger lengths are "absurd": the writer
 * refuses to produce them, so reading one means the length field is damaged.
 */
export const MaxPayloadBytes = 256 * 1024 * 1024

/** `payload` framed: header, then the payload bytes. */
export const encode = (payload: Uint8Array): Uint8Array => encodeParts([payload])

/** `encode` of the payload whose parts, in order, are `parts`: one copy of each into the frame. */
export const encodeParts = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  let length = 0
  for (const part of parts) length += part.length
  const frame = new Uint8Array(HeaderBytes + length)
  let crc = 0
  let at = HeaderBytes
  for (const part of parts) {
    crc = Zlib.crc32(part, crc)
    frame.set(part, at)
    at += part.length
  }
  const view = new DataView(frame.buffer)
  view.setUint32(0, length, true)
  view.setUint32(4, crc, true)
  return frame
}

/** The most a frame's length field can say: larger payloads cannot be framed. */
export const MaxFrameBytes = 0xffff_ffff

/**
 * `encode` of the UTF-8 encoding of `text` (a string, or chunks to concatenate), in parts
 * (the header, then the payload a slice of `sliceChars` characters at a time), as a
 * generator that yields between slices: a large store's snapshot is tens of megabytes, and
 * encoding and checksumming it at once stalled every role of the process. The parts,
 * written in order, are `encode`'s bytes.
 */
export function* encodeTextGradually(
  text: string | ReadonlyArray<string>,
  sliceChars = 1 << 20
): Generator<void, Array<Uint8Array>, void> {
  const header = new Uint8Array(HeaderBytes)
  const parts: Array<Uint8Array> = [header]
  let crc = 0
  let length = 0
  // a text in chunks (`JsonText.stringifyChunks`) is encoded a piece of chunks at a time,
  // into one buffer per piece, without joining them into one string first
  for (const piece of JsonText.pieces(typeof text === "string" ? [text] : text, sliceChars)) {
    if (parts.length > 1) yield
    const part = encodePiece(piece)
    crc = Zlib.crc32(part, crc)
    length += part.length
    parts.push(part)
  }
  if (length > MaxFrameBytes)
    throw new RangeError(`a payload of ${length} bytes cannot be framed (at most ${MaxFrameBytes})`)
  const view = new DataView(header.buffer)
  view.setUint32(0, length, true)
  view.setUint32(4, crc, true)
  return parts
}

/**
 * The UTF-8 bytes of a piece of chunks, in one buffer of exactly their size. It was sized
 * at three bytes per character and zeroed: a snapshot of 14 MB allocated and cleared
 * 42 MB in the turns of its slices.
 */
const encodePiece = (piece: ReadonlyArray<string>): Uint8Array => {
  let size = 0
  for (const chunk of piece) size += Buffer.byteLength(chunk, "utf8")
  const out = Buffer.allocUnsafe(size)
  let at = 0
  for (const chunk of piece) at += out.write(chunk, at, "utf8")
  return out
}

/** A valid frame found by `scan`. */
export interface Frame {
  /** Offset of the frame's header in the file. */
  readonly offset: number
  readonly payload: Uint8Array
}

/** What is wrong with the first invalid frame. */
export interface Damage {
  readonly _tag: "TornTail" | "Corrupt"
  /** Offset of the first invalid frame: everything before it is valid. */
  readonly offset: number
  readonly reason: string
}

export interface Scan {
  /** The valid frames before the first invalid one, in file order. */
  readonly frames: ReadonlyArray<Frame>
  /** Where the valid prefix ends: the file's length when there is no damage and no zeros after it. */
  readonly end: number
  readonly damage: Damage | undefined
}

/**
 * Why the frame at `offset` is not valid, or `undefined` when it is. The length of a valid
 * frame's payload is then `view.getUint32(offset, true)`.
 */
const invalidity = (bytes: Uint8Array, view: DataView, offset: number): string | undefined => {
  const left = bytes.length - offset
  if (left < HeaderBytes) return `incomplete header (${left} of ${HeaderBytes} bytes)`
  const length = view.getUint32(offset, true)
  if (length === 0) return "zero length"
  if (length > MaxPayloadBytes) return `length ${length} exceeds the maximum ${MaxPayloadBytes}`
  if (length > left - HeaderBytes) {
    return `frame of ${length} payload bytes runs past the end of the file (${left - HeaderBytes} present)`
  }
  const start = offset + HeaderBytes
  if (Zlib.crc32(bytes.subarray(start, start + length)) !== view.getUint32(offset + 4, true)) {
    return "checksum mismatch"
  }
  return undefined
}

/** The first offset at or after `from` where a valid frame starts. */
const nextValid = (bytes: Uint8Array, view: DataView, from: number): number | undefined => {
  for (let at = from; at + HeaderBytes <= bytes.length; at++) {
    if (invalidity(bytes, view, at) === undefined) return at
  }
  return undefined
}

/** Are all of `bytes` from `from` on zero? */
const allZero = (bytes: Uint8Array, from: number): boolean => {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false
  return true
}

/** Splits `bytes` into valid frames and classifies the damage after them (see the module header). */
export const scan = (bytes: Uint8Array): Scan => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const frames: Array<Frame> = []
  let offset = 0
  while (offset < bytes.length) {
    const reason = invalidity(bytes, view, offset)
    if (reason !== undefined) {
      if (allZero(bytes, offset)) return { frames, end: offset, damage: undefined }
      const follower = nextValid(bytes, view, offset + 1)
      const damage: Damage =
        follower === undefined
          ? { _tag: "TornTail", offset, reason }
          : { _tag: "Corrupt", offset, reason: `${reason}; a valid frame follows at offset ${follower}` }
      return { frames, end: offset, damage }
    }
    const length = view.getUint32(offset, true)
    frames.push({ offset, payload: bytes.subarray(offset + HeaderBytes, offset + HeaderBytes + length) })
    offset += HeaderBytes + length
  }
  return { frames, end: offset, damage: undefined }
}

/**
 * The payload of a file that must be exactly one valid frame, or why it is not. Such files
 * are only ever renamed into place after an fsync, so unlike a log they have no torn tail:
 * any damage is corruption.
 */
export const single = (bytes: Uint8Array): { readonly payload: Uint8Array } | { readonly reason: string } => {
  // One frame filling the file is valid whatever its length: `MaxPayloadBytes` guards a
  // log's scan against a damaged length, and a snapshot of a large store may pass it (it
  // was written, then refused when read back).
  if (bytes.length > HeaderBytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const payload = bytes.subarray(HeaderBytes)
    if (view.getUint32(0, true) === payload.length && Zlib.crc32(payload) === view.getUint32(4, true)) {
      return { payload }
    }
  }
  const result = scan(bytes)
  if (result.damage !== undefined) return { reason: `${result.damage.reason} at offset ${result.damage.offset}` }
  // written whole and renamed into place: nothing may follow its frame
  if (result.end < bytes.length) return { reason: `zeros after the frame, from offset ${result.end}` }
  if (result.frames.length !== 1) return { reason: `expected exactly one frame, found ${result.frames.length}` }
  return { payload: result.frames[0]!.payload }
}

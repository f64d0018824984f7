/**
 * The store's recent writes, for watches: one event per revision, oldest first, bounded
 * by a number of revisions and by bytes of keys and values. Older events are dropped
 * ("compacted"): a watch from a revision at or below `compacted` cannot be served.
 *
 * Persistent, like the rest of the state: `append` answers a new history and leaves the
 * old one as it was. The events live in an array shared by successive histories, each
 * seeing its own `[start, end)` window; appending to the newest one pushes in place (O(1)),
 * appending to an older one (a fork, as a test may do) copies its window first. Dropped
 * events are sliced away once they are most of the array.
 *
 * @since 0.2.0
 */
import { Limits } from "@synod/core"

/** A write: `value` is the new value, `null` for a delete. The key's version after a put is `revision`. */
export interface Event {
  readonly revision: number
  readonly key: string
  readonly value: string | null
}

export interface Retention {
  /** Most events kept. */
  readonly revisions: number
  /** Most bytes (UTF-8 keys and values, plus 16 per event) kept; the newest event is always kept. */
  readonly bytes: number
}

export const defaultRetention: Retention = { revisions: 10_000, bytes: 4 * 1024 * 1024 }

/** What an event counts against `Retention.bytes`. */
export const eventBytes = (e: Event): number =>
  16 + Limits.utf8Bytes(e.key) + (e.value === null ? 0 : Limits.utf8Bytes(e.value))

export class History {
  /** Every event with a revision at or below this one is gone. */
  readonly compacted: number
  readonly bytes: number
  private readonly buffer: Array<Event>
  private readonly start: number
  private readonly end: number
  private constructor(buffer: Array<Event>, start: number, end: number, compacted: number, bytes: number) {
    this.buffer = buffer
    this.start = start
    this.end = end
    this.compacted = compacted
    this.bytes = bytes
  }

  /** No events; everything at or below `compacted` is gone. */
  static empty(compacted: number): History {
    return new History([], 0, 0, compacted, 0)
  }

  /** From events in revision order (a snapshot's), trimmed to `retention`. */
  static from(events: ReadonlyArray<Event>, compacted: number, retention: Retention): History {
    let h = History.empty(compacted)
    for (const e of events) h = h.append(e, retention)
    return h
  }

  get size(): number {
    return this.end - this.start
  }

  /** The oldest revision a watch can start from. */
  get oldest(): number {
    return this.compacted + 1
  }

  /** The events, oldest first. */
  events(): ReadonlyArray<Event> {
    return this.buffer.slice(this.start, this.end)
  }

  /** Events with a revision of at least `from`, oldest first (without copying the rest). */
  *since(from: number): Generator<Event> {
    // revisions are consecutive from the first kept one: jump to `from`
    const first = this.buffer[this.start]?.revision ?? 0
    for (let i = Math.max(this.start, this.start + (from - first)); i < this.end; i++) yield this.buffer[i]!
  }

  append(event: Event, retention: Retention): History {
    let buffer = this.buffer
    let start = this.start
    if (this.end !== buffer.length) {
      // someone appended to this history before: copy this one's window
      buffer = buffer.slice(start, this.end)
      start = 0
    }
    buffer.push(event)
    const end = buffer.length
    let bytes = this.bytes + eventBytes(event)
    let compacted = this.compacted
    while (end - start > 1 && (end - start > retention.revisions || bytes > retention.bytes)) {
      const dropped = buffer[start]!
      bytes -= eventBytes(dropped)
      compacted = dropped.revision
      start++
    }
    if (start > 1024 && start * 2 > end) {
      buffer = buffer.slice(start)
      return new History(buffer, 0, buffer.length, compacted, bytes)
    }
    return new History(buffer, start, end, compacted, bytes)
  }
}

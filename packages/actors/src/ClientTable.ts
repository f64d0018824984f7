/**
 * The replica's client table: per client, which commands have been performed and with
 * what result, so a retried command is answered from here and never performed twice
 * (docs/protocol.md#replica, B9). Deterministic: every replica builds the same table from the
 * same decisions, and it is saved in snapshots together with the state (B17).
 *
 * A client may have several commands in flight. Each command carries `acked`: every seq
 * below it has been answered, so their results can be forgotten. A seq below a client's
 * `acked` counts as performed (the client saw its response, so it was).
 *
 * @since 0.1.0
 */
import type { Schema } from "effect"
import type { Storage } from "@synod/core"

export interface Outcome {
  readonly slot: number
  readonly result: Schema.Json
  readonly error?: string
}

interface Entry {
  acked: number
  readonly results: Map<number, Outcome>
}

export class ClientTable {
  private readonly entries = new Map<string, Entry>()

  /** The recorded outcome of (client, seq); `"acked"` if performed and already answered; undefined if never performed. */
  lookup(client: string, seq: number): Outcome | "acked" | undefined {
    const e = this.entries.get(client)
    if (e === undefined) return undefined
    if (seq < e.acked) return "acked"
    return e.results.get(seq)
  }

  isPerformed(client: string, seq: number): boolean {
    return this.lookup(client, seq) !== undefined
  }

  record(client: string, seq: number, acked: number, outcome: Outcome): void {
    let e = this.entries.get(client)
    if (e === undefined) this.entries.set(client, (e = { acked: 0, results: new Map() }))
    // an outcome below `acked` would never be looked up (`lookup` says "acked" there)
    if (seq >= Math.max(e.acked, acked)) e.results.set(seq, outcome)
    if (acked > e.acked) {
      // forget the outcomes below the new `acked`: by seq when it moved by fewer seqs than
      // are kept (a client with many commands in flight moves it by one or two with every
      // command, and scanning all it keeps each time would cost that many per command)
      if (acked - e.acked <= e.results.size) {
        for (let s = e.acked; s < acked; s++) e.results.delete(s)
      } else {
        for (const s of e.results.keys()) if (s < acked) e.results.delete(s)
      }
      e.acked = acked
    }
  }

  get size(): number {
    return this.entries.size
  }

  toSnapshot(): Array<Storage.ClientEntry> {
    const out: Array<Storage.ClientEntry> = []
    for (const [client, e] of this.entries) {
      out.push({
        client,
        acked: e.acked,
        results: [...e.results].map(([seq, o]) => ({
          seq,
          slot: o.slot,
          result: o.result,
          ...(o.error === undefined ? {} : { error: o.error })
        }))
      })
    }
    return out
  }

  static fromSnapshot(entries: ReadonlyArray<Storage.ClientEntry>): ClientTable {
    const table = new ClientTable()
    for (const e of entries) {
      const results = new Map<number, Outcome>()
      for (const r of e.results) {
        results.set(
          r.seq,
          r.error === undefined
            ? { slot: r.slot, result: r.result }
            : { slot: r.slot, result: r.result, error: r.error }
        )
      }
      table.entries.set(e.client, { acked: e.acked, results })
    }
    return table
  }
}

/**
 * The simulator's check of what watches are served from: a replica's history of writes
 * (`@synod/kv`'s `History`, carried through snapshots, restarts and state transfers) must
 * be the log's writes, one per revision, as the clients saw them placed. Every
 * acknowledged write whose answer gives its revision (a put, a successful compare-and-set,
 * a transaction's writes) must be the event at that revision, unless compacted; the events
 * must be consecutive revisions ending at the store's revision.
 *
 * @since 0.2.0
 */
import type { Kv } from "@synod/kv"
import type { Operation } from "./Linearizability.ts"

export interface Write {
  readonly revision: number
  readonly key: string
  readonly value: string | null
}

/** The writes an answered command made, placed by its answer; a delete's revision is not told, so none. */
export const placedWrites = (input: Kv.Command, output: Kv.Result): Array<Write> => {
  if (input._tag === "Put" && output._tag === "Written") {
    return [{ revision: output.version, key: input.key, value: input.value }]
  }
  if (input._tag === "Cas" && output._tag === "Swapped" && output.ok) {
    return [{ revision: output.version, key: input.key, value: input.value }]
  }
  if (input._tag === "Txn" && output._tag === "Transacted") {
    const branch = output.succeeded ? input.success : input.failure
    const made = branch.flatMap((op, i): Array<Omit<Write, "revision">> => {
      const r = output.results[i]
      if (op.op === "put") return [{ key: op.key, value: op.value }]
      if (op.op === "del" && r?.op === "del" && r.existed) return [{ key: op.key, value: null }]
      return []
    })
    // a transaction's writes take consecutive revisions, ending at its answer's
    return made.map((w, i) => ({ ...w, revision: output.revision - (made.length - 1 - i) }))
  }
  return []
}

/** A value as a violation names it: long ones cut, with their length. */
const show = (value: string | null): string =>
  value === null
    ? "null (deleted)"
    : value.length <= 40
      ? JSON.stringify(value)
      : `${JSON.stringify(value.slice(0, 40))}… (${value.length} characters)`

/** The encoded state's history (`Kv.encodeSnapshot`'s shape); a violation, or undefined. */
export const check = (state: unknown, history: ReadonlyArray<Operation<Kv.Command, Kv.Result>>): string | undefined => {
  const s = state as {
    readonly revision: number
    readonly history?: {
      readonly compacted: number
      readonly events: ReadonlyArray<readonly [number, string, string | null]>
    }
  }
  if (s.history === undefined) return "W: the replica's state has no history"
  const { compacted, events } = s.history
  const byRevision = new Map<number, readonly [number, string, string | null]>()
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!
    if (e[0] !== compacted + 1 + i) {
      return `W: history event ${i} has revision ${e[0]}, expected ${compacted + 1 + i} (events must follow the compaction point with no gap)`
    }
    byRevision.set(e[0], e)
  }
  if (compacted + events.length !== s.revision) {
    return `W: history ends at revision ${compacted + events.length}, the store is at ${s.revision}`
  }
  for (const op of history) {
    if (op.output === undefined) continue
    for (const w of placedWrites(op.input, op.output)) {
      if (w.revision <= compacted) continue
      const e = byRevision.get(w.revision)
      if (e === undefined || e[1] !== w.key || e[2] !== w.value) {
        const there = e === undefined ? "nothing" : `${JSON.stringify(e[1])} = ${show(e[2])}`
        return `W: ${op.client}'s write of ${JSON.stringify(w.key)} = ${show(w.value)} was answered revision ${w.revision}, but the history has ${there} there`
      }
    }
  }
  return undefined
}

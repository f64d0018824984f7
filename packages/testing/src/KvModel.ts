/**
 * The sequential specification of the key-value store (`@synod/kv`) for the
 * linearizability checker (`Linearizability.ts`): the inputs are its commands, the
 * outputs its results, as the simulator's clients and the HTTP API's users see them.
 *
 * Keys are independent objects, so a history is partitioned by key; the state of a part
 * is the key's value and version. Versions are global write counts, so across keys they
 * are not checked, but per key they are: a read or a failed compare-and-set reports
 * exactly the version of the write it sees, a successful write gets a version above the
 * one it replaced, and compare-and-set succeeds iff the version matches. After a write
 * whose outcome is unknown the version is unknown too (`undefined`) until the next
 * acknowledged write, but above the last one known (`above`): answers are then checked on
 * the value and that bound (so a compare-and-set on version 0 cannot succeed).
 *
 * A list is checked as one read per key it covers, each at the list's interval: every key
 * the history names (or the list returned) under its prefix, after its cursor and, when it
 * says there is more, not past its last entry; a key it did not return reads as absent.
 * So its per-key values are checked, not that it was one atomic snapshot, nor its order.
 *
 * @since 0.1.0
 */
import type { Kv } from "@synod/kv"
import { type Model, type Operation, partitionByKey } from "./Linearizability.ts"

export type Input = Kv.Command
export type Output = Kv.Result

/** The commands about one key: everything but `List`. */
type KeyInput = Exclude<Input, { readonly _tag: "List" }>

export interface State {
  readonly value: string | null
  /** 0 when absent; `undefined` when the last write's outcome was unknown. */
  readonly version: number | undefined
  /** With an unknown version: a version it is known to be above. */
  readonly above: number
}

const absent: State = { value: null, version: 0, above: 0 }

/** The state after a write of `value` whose version is not known. */
const unknownWrite = (state: State, value: string): State => ({
  value,
  version: undefined,
  above: state.version ?? state.above
})
/** Is `version` possibly the state's? */
const couldBe = (state: State, version: number): boolean =>
  state.version === undefined ? version > state.above : version === state.version

const step = (state: State, input: Input, output: Output | undefined): { ok: boolean; state: State } => {
  switch (input._tag) {
    case "Get":
      return {
        ok:
          output === undefined ||
          (output._tag === "Value" && output.value === state.value && couldBe(state, output.version)),
        state
      }
    case "Put": {
      if (output === undefined) return { ok: true, state: unknownWrite(state, input.value) }
      const ok = output._tag === "Written" && output.version > (state.version ?? state.above)
      return {
        ok,
        state: ok && output._tag === "Written" ? { value: input.value, version: output.version, above: 0 } : state
      }
    }
    case "Del":
      return {
        ok: output === undefined || (output._tag === "Deleted" && output.existed === (state.value !== null)),
        state: absent
      }
    case "Cas": {
      // an unknown version could be the expected one if that is above the last one known
      // (the checker also tries "not applied")
      const matches = couldBe(state, input.version)
      if (output === undefined) return { ok: true, state: matches ? unknownWrite(state, input.value) : state }
      if (output._tag !== "Swapped") return { ok: false, state }
      if (output.ok) {
        const ok = matches && output.version > input.version
        return { ok, state: ok ? { value: input.value, version: output.version, above: 0 } : state }
      }
      return {
        ok: output.value === state.value && output.version !== input.version && couldBe(state, output.version),
        state
      }
    }
    case "List":
      // `partition` turns every answered list into reads: one left here was answered
      // with something else than a list
      return { ok: false, state }
  }
}

/** The reads an answered list stands for (see the header); other operations as they are. */
const listsAsReads = (ops: ReadonlyArray<Operation<Input, Output>>): Array<Operation<Input, Output>> => {
  const keys = new Set<string>()
  for (const op of ops) {
    if (op.input._tag !== "List") keys.add(op.input.key)
    else if (op.output?._tag === "Listed") for (const e of op.output.entries) keys.add(e.key)
  }
  // the store's order: UTF-16 code units, as `sort` and `<` compare strings
  const sorted = [...keys].sort()
  return ops.flatMap((op): Array<Operation<Input, Output>> => {
    const { input, output } = op
    if (input._tag !== "List" || output?._tag !== "Listed") return [op]
    const listed = new Map(output.entries.map((e) => [e.key, e]))
    const last = output.entries.at(-1)?.key
    const covered = (key: string) =>
      key.startsWith(input.prefix) &&
      (input.after === undefined || key > input.after) &&
      (!output.more || last === undefined || key <= last)
    return sorted
      .filter((key) => listed.has(key) || covered(key))
      .map((key) => {
        const e = listed.get(key)
        return {
          ...op,
          input: { _tag: "Get", key },
          output: { _tag: "Value", value: e?.value ?? null, version: e?.version ?? 0 }
        }
      })
  })
}

const partition = (ops: ReadonlyArray<Operation<Input, Output>>): Array<ReadonlyArray<Operation<Input, Output>>> => {
  const reads = listsAsReads(ops)
  // a list with an unknown outcome reads nothing; one answered wrongly fails on its own
  const lists = reads.filter((op) => op.input._tag === "List" && op.output !== undefined)
  const parts = partitionByKey(reads.filter((op): op is Operation<KeyInput, Output> => op.input._tag !== "List"))
  return lists.length === 0 ? parts : [...parts, lists]
}

const show = (value: string | null) => (value === null ? "null" : JSON.stringify(value))

const describe = (input: Input, output: Output | undefined): string => {
  const what =
    input._tag === "Get"
      ? `get ${input.key}`
      : input._tag === "Put"
        ? `put ${input.key} ${show(input.value)}`
        : input._tag === "Del"
          ? `del ${input.key}`
          : input._tag === "Cas"
            ? `cas ${input.key} v${input.version} -> ${show(input.value)}`
            : `list ${JSON.stringify(input.prefix)}${input.after === undefined ? "" : ` after ${input.after}`} limit ${input.limit}`
  if (output === undefined) return `${what} => ?`
  switch (output._tag) {
    case "Value":
      return `${what} => ${show(output.value)} v${output.version}`
    case "Written":
      return `${what} => v${output.version}`
    case "Deleted":
      return `${what} => ${output.existed ? "deleted" : "absent"}`
    case "Swapped":
      return `${what} => ${output.ok ? "swapped" : `conflict (${show(output.value)} v${output.version})`}`
    case "Listed":
      return `${what} => ${output.entries.map((e) => `${e.key}=${show(e.value)} v${e.version}`).join(", ")}${output.more ? " ..." : ""}`
  }
}

export const KvModel: Model<State, Input, Output> = {
  init: absent,
  step,
  key: (s) => `${s.version ?? `>${s.above}`}${s.value === null ? "-" : `=${s.value}`}`,
  partition,
  readOnly: (input, output) => {
    switch (input._tag) {
      case "Get":
      case "List":
        return true
      case "Put":
        return false
      case "Del":
        return output?._tag === "Deleted" && !output.existed
      case "Cas":
        return output?._tag === "Swapped" && !output.ok
    }
  },
  // a write's version is its place among the writes
  order: (_input, output) =>
    output?._tag === "Written" || (output?._tag === "Swapped" && output.ok) ? output.version : undefined,
  describe
}

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
 * A transaction is one operation on several keys: the keys it names are one object, and
 * so are keys that transactions connect, transitively (a part is a connected component
 * of keys; its state maps each key to its own). It is checked atomically: its comparisons
 * against the state (a comparison on an unknown version may go either way), the branch
 * its answer says ran, and each of that branch's results as a lone get, put or delete
 * would be. A transaction whose outcome is unknown runs the success branch unless a
 * comparison certainly fails (when that is uncertain and its failure branch writes, the
 * model may reject a correct history: the simulator's failure branches only read).
 *
 * @since 0.1.0
 */
import type { Kv, KvLease } from "@synod/kv"
import type { Model, Operation } from "./Linearizability.ts"

/** The store's commands but the lease ones (the simulator checks leases on their own: `LeaseCheck`). */
export type Input = Exclude<Kv.Command, KvLease.Command>
export type Output = Kv.Result

/** The commands about one key: everything but `List`, `Txn` and `Restore` (which the model does not cover). */
export type KeyInput = Exclude<Input, { readonly _tag: "List" | "Txn" | "Restore" }>

/** One key's state. */
export interface KeyState {
  readonly value: string | null
  /** 0 when absent; `undefined` when the last write's outcome was unknown. */
  readonly version: number | undefined
  /** With an unknown version: a version it is known to be above. */
  readonly above: number
}

/** The state of a part: each key it has seen (the others are absent). */
export type State = ReadonlyMap<string, KeyState>

const absent: KeyState = { value: null, version: 0, above: 0 }

/** The state after a write of `value` whose version is not known. */
const unknownWrite = (state: KeyState, value: string): KeyState => ({
  value,
  version: undefined,
  above: state.version ?? state.above
})
/** Is `version` possibly the state's? */
const couldBe = (state: KeyState, version: number): boolean =>
  state.version === undefined ? version > state.above : version === state.version

/** One key's operation on its state. */
export const stepKey = (
  state: KeyState,
  input: KeyInput,
  output: Output | undefined
): { ok: boolean; state: KeyState } => {
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
  }
}

/** Does the comparison hold on the key's state: true, false, or either (`undefined`, an unknown version)? */
const holds = (state: KeyState, c: Kv.Compare): boolean | undefined => {
  if ("exists" in c) return (state.value !== null) === c.exists
  const op = c.op ?? "="
  if ("value" in c) {
    if (state.value === null) return op === "!="
    return relate(state.value, op, c.value)
  }
  if (state.version !== undefined) return relate(state.version, op, c.version)
  // the version is above `above`: at least above + 1
  const least = state.above + 1
  switch (op) {
    case "=":
      return c.version >= least ? undefined : false
    case "!=":
      return c.version >= least ? undefined : true
    case "<":
      return c.version <= least ? false : undefined
    case ">":
      return c.version < least ? true : undefined
  }
}

const relate = <A extends number | string>(actual: A, op: Kv.CompareOp, expected: A): boolean =>
  op === "="
    ? actual === expected
    : op === "!="
      ? actual !== expected
      : op === "<"
        ? actual < expected
        : actual > expected

const lookup = (state: State, key: string): KeyState => state.get(key) ?? absent

const txnStep = (state: State, input: Kv.Txn, output: Output | undefined): { ok: boolean; state: State } => {
  const verdicts = input.compare.map((c) => holds(lookup(state, c.key), c))
  const certainlyFails = verdicts.some((v) => v === false)
  if (output === undefined) {
    const next = new Map(state)
    for (const op of certainlyFails ? input.failure : input.success) {
      if (op.op === "put") next.set(op.key, unknownWrite(lookup(next, op.key), op.value))
      else if (op.op === "del") next.set(op.key, absent)
    }
    return { ok: true, state: next }
  }
  if (output._tag !== "Transacted") return { ok: false, state }
  const possible = output.succeeded ? !certainlyFails : !verdicts.every((v) => v === true)
  const branch = output.succeeded ? input.success : input.failure
  if (!possible || branch.length !== output.results.length) return { ok: false, state }
  const next = new Map(state)
  for (let i = 0; i < branch.length; i++) {
    const op = branch[i]!
    const r = output.results[i]!
    if (r.op !== op.op || r.key !== op.key) return { ok: false, state }
    const single: [KeyInput, Output] =
      op.op === "get" && r.op === "get"
        ? [
            { _tag: "Get", key: op.key },
            { _tag: "Value", value: r.value, version: r.version }
          ]
        : op.op === "put" && r.op === "put"
          ? [
              { _tag: "Put", key: op.key, value: op.value },
              { _tag: "Written", version: r.version }
            ]
          : [
              { _tag: "Del", key: op.key },
              { _tag: "Deleted", existed: r.op === "del" && r.existed }
            ]
    const stepped = stepKey(lookup(next, op.key), single[0], single[1])
    if (!stepped.ok) return { ok: false, state }
    next.set(op.key, stepped.state)
  }
  return { ok: true, state: next }
}

const step = (state: State, input: Input, output: Output | undefined): { ok: boolean; state: State } => {
  switch (input._tag) {
    case "Txn":
      return txnStep(state, input, output)
    case "List":
      // `partition` turns every answered list into reads: one left here was answered
      // with something else than a list
      return { ok: false, state }
    case "Restore":
      // seeds a new store out of band: not part of the histories checked
      return { ok: false, state }
    default: {
      const r = stepKey(lookup(state, input.key), input, output)
      return { ok: r.ok, state: r.ok ? new Map(state).set(input.key, r.state) : state }
    }
  }
}

/** The keys a transaction names. */
const txnKeys = (input: Kv.Txn): Array<string> => [
  ...input.compare.map((c) => c.key),
  ...input.success.map((o) => o.key),
  ...input.failure.map((o) => o.key)
]

/** The reads an answered list stands for (see the header); other operations as they are. */
const listsAsReads = (ops: ReadonlyArray<Operation<Input, Output>>): Array<Operation<Input, Output>> => {
  const keys = new Set<string>()
  for (const op of ops) {
    if (op.input._tag === "Txn") for (const key of txnKeys(op.input)) keys.add(key)
    else if (op.input._tag !== "List" && op.input._tag !== "Restore") keys.add(op.input.key)
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

/**
 * One part per connected component of keys (keys a transaction names together are
 * connected), in order of each component's first operation; without transactions, one
 * part per key.
 */
const partition = (ops: ReadonlyArray<Operation<Input, Output>>): Array<ReadonlyArray<Operation<Input, Output>>> => {
  const reads = listsAsReads(ops)
  // a list with an unknown outcome reads nothing; one answered wrongly fails on its own
  const lists = reads.filter((op) => op.input._tag === "List" && op.output !== undefined)
  const rest = reads.filter((op) => op.input._tag !== "List")
  // union-find over keys
  const parent = new Map<string, string>()
  const root = (key: string): string => {
    let r = key
    while (parent.has(r) && parent.get(r) !== r) r = parent.get(r)!
    parent.set(key, r)
    return r
  }
  const keysOf = (input: Input): Array<string> =>
    input._tag === "Txn" ? txnKeys(input) : input._tag === "List" || input._tag === "Restore" ? [] : [input.key]
  for (const op of rest) {
    const [first, ...others] = keysOf(op.input)
    if (first === undefined) continue
    for (const k of others) {
      const a = root(first)
      const b = root(k)
      if (a !== b) parent.set(b, a)
    }
  }
  // a transaction naming no key touches nothing: it forms a part of its own (key "")
  const byRoot = new Map<string, Array<Operation<Input, Output>>>()
  for (const op of rest) {
    const first = keysOf(op.input)[0]
    const r = first === undefined ? "" : root(first)
    const part = byRoot.get(r)
    if (part === undefined) byRoot.set(r, [op])
    else part.push(op)
  }
  const parts: Array<ReadonlyArray<Operation<Input, Output>>> = [...byRoot.values()]
  return lists.length === 0 ? parts : [...parts, lists]
}

const show = (value: string | null) => (value === null ? "null" : JSON.stringify(value))

const describeCompare = (c: Kv.Compare): string =>
  "exists" in c
    ? `${c.key} ${c.exists ? "exists" : "absent"}`
    : "value" in c
      ? `${c.key} ${c.op ?? "="} ${show(c.value)}`
      : `${c.key} v${c.op ?? "="}${c.version}`

const describeOp = (op: Kv.TxnOp): string =>
  op.op === "put" ? `put ${op.key} ${show(op.value)}` : `${op.op} ${op.key}`

const describeTxnResult = (r: Kv.TxnOpResult): string =>
  r.op === "get"
    ? `${show(r.value)} v${r.version}`
    : r.op === "put"
      ? `v${r.version}`
      : r.existed
        ? "deleted"
        : "absent"

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
            : input._tag === "Restore"
              ? `restore ${input.id} chunk ${input.index}`
              : input._tag === "Txn"
                ? `txn [${input.compare.map(describeCompare).join(", ")}] ? ${input.success.map(describeOp).join("; ")} : ${input.failure.map(describeOp).join("; ")}`
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
    case "Transacted":
      return `${what} => ${output.succeeded ? "success" : "failure"} [${output.results.map(describeTxnResult).join(", ")}]`
    case "Restored":
      return `${what} => ${output.ok ? "ok" : output.reason}`
    default:
      return `${what} => ${output._tag}`
  }
}

const keyStateKey = (s: KeyState): string => `${s.version ?? `>${s.above}`}${s.value === null ? "-" : `=${s.value}`}`

/** Does the answered transaction write? */
const txnWrites = (output: Output | undefined): boolean =>
  output?._tag !== "Transacted" || output.results.some((r) => r.op === "put" || (r.op === "del" && r.existed))

export const KvModel: Model<State, Input, Output> = {
  init: new Map(),
  step,
  key: (s) => {
    // absent keys are the same as keys never seen
    const parts: Array<string> = []
    for (const [k, v] of s) if (v.value !== null || v.version !== 0) parts.push(`${k}:${keyStateKey(v)}`)
    return parts.sort().join("|")
  },
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
      case "Txn":
        return output !== undefined && !txnWrites(output)
      case "Restore":
        return false
    }
  },
  // a write's version is its place among the writes
  order: (_input, output) =>
    output?._tag === "Written" || (output?._tag === "Swapped" && output.ok)
      ? output.version
      : output?._tag === "Transacted"
        ? output.results.find((r) => r.op === "put")?.version
        : undefined,
  describe
}

/**
 * The sequential specification of the cluster's key-value store (`@synod/kv`) for the
 * linearizability checker of `@synod/testing/Linearizability`, over the answers the
 * HTTP API gives.
 *
 * Keys are independent objects, so a history is partitioned by key; the state of a part
 * is the key's value and version. Versions are global write counts, so across keys they
 * are not checked, but per key they are: a read or a failed compare-and-set reports
 * exactly the version of the write it sees, a successful write gets a version above the
 * one it replaced, and compare-and-set succeeds iff the version matches. After a write
 * whose outcome is unknown the version is unknown too (`undefined`) until the next
 * acknowledged write: answers are then checked on the value alone.
 *
 * A list is checked as one read per key of the history (listed or absent), each at the
 * list's interval: its per-key values are checked, not that it was one atomic snapshot.
 */
import { type Model, partitionByKey } from "@synod/testing/Linearizability"

export type Input =
  | { readonly _tag: "Get"; readonly key: string }
  | { readonly _tag: "Put"; readonly key: string; readonly value: string }
  | { readonly _tag: "Del"; readonly key: string }
  | { readonly _tag: "Cas"; readonly key: string; readonly version: number; readonly value: string }

export type Output =
  /** A read: `value: null, version: 0` when absent. */
  | { readonly _tag: "Value"; readonly value: string | null; readonly version: number }
  | { readonly _tag: "Written"; readonly version: number }
  | { readonly _tag: "Deleted"; readonly existed: boolean }
  /** `ok: false`: nothing changed; `version` and `value` are the current ones. */
  | { readonly _tag: "Swapped"; readonly ok: boolean; readonly version: number; readonly value: string | null }

export interface State {
  readonly value: string | null
  /** 0 when absent; `undefined` when the last write's outcome was unknown. */
  readonly version: number | undefined
}

const absent: State = { value: null, version: 0 }

const step = (state: State, input: Input, output: Output | undefined): { ok: boolean; state: State } => {
  switch (input._tag) {
    case "Get":
      return {
        ok:
          output === undefined ||
          (output._tag === "Value" &&
            output.value === state.value &&
            (state.version === undefined || output.version === state.version)),
        state
      }
    case "Put": {
      if (output === undefined) return { ok: true, state: { value: input.value, version: undefined } }
      const ok = output._tag === "Written" && (state.version === undefined || output.version > state.version)
      return { ok, state: ok && output._tag === "Written" ? { value: input.value, version: output.version } : state }
    }
    case "Del":
      return {
        ok: output === undefined || (output._tag === "Deleted" && output.existed === (state.value !== null)),
        state: absent
      }
    case "Cas": {
      // an unknown version could be the expected one: the checker also tries "not applied"
      const matches = state.version === undefined ? state.value !== null : state.version === input.version
      if (output === undefined) return { ok: true, state: matches ? { value: input.value, version: undefined } : state }
      if (output._tag !== "Swapped") return { ok: false, state }
      if (output.ok) {
        const ok = matches && output.version > input.version
        return { ok, state: ok ? { value: input.value, version: output.version } : state }
      }
      return {
        ok:
          output.value === state.value &&
          output.version !== input.version &&
          (state.version === undefined || output.version === state.version),
        state
      }
    }
  }
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
          : `cas ${input.key} v${input.version} -> ${show(input.value)}`
  if (output === undefined) return `${what} => ?`
  switch (output._tag) {
    case "Value":
      return `${what} => ${show(output.value)} v${output.version}`
    case "Written":
      return `${what} => v${output.version}`
    case "Deleted":
      return `${what} => ${output.existed ? "deleted" : "absent"}`
    case "Swapped":
      return `${what} => ${output.ok ? "swapped" : `conflict (${show(output.value)} v${output.version})`} `
  }
}

export const KvModel: Model<State, Input, Output> = {
  init: absent,
  step,
  key: (s) => `${s.version ?? "?"}${s.value === null ? "-" : `=${s.value}`}`,
  partition: partitionByKey,
  readOnly: (input, output) => {
    switch (input._tag) {
      case "Get":
        return true
      case "Put":
        return false
      case "Del":
        return output?._tag === "Deleted" && !output.existed
      case "Cas":
        return output?._tag === "Swapped" && !output.ok
    }
  },
  describe
}

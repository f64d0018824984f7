/**
 * The sequential specification of the simulator's string key/value store, for the
 * linearizability checker. Keys are independent objects, so histories are partitioned
 * by key and the state of each part is just that key's value (`null` when absent).
 *
 * The input and output shapes are the ones the replicated state machine produces.
 *
 * @since 0.1.0
 */
import { type Model, partitionByKey } from "./Linearizability.ts"

export type KvInput =
  | { readonly _tag: "Put"; readonly key: string; readonly value: string }
  | { readonly _tag: "Get"; readonly key: string }
  | { readonly _tag: "Del"; readonly key: string }
  /** `expected: null` means the key must be absent. */
  | { readonly _tag: "Cas"; readonly key: string; readonly expected: string | null; readonly value: string }

export type KvOutput =
  | { readonly _tag: "Ok" }
  | { readonly _tag: "Value"; readonly value: string | null }
  | { readonly _tag: "Deleted"; readonly existed: boolean }
  /** `ok: false` means nothing changed. */
  | { readonly _tag: "Swapped"; readonly ok: boolean }

/** The value of the one key a part is about; `null` when absent. */
export type KvKeyState = string | null

const step = (
  state: KvKeyState,
  input: KvInput,
  output: KvOutput | undefined
): { readonly ok: boolean; readonly state: KvKeyState } => {
  switch (input._tag) {
    case "Put":
      return { ok: output === undefined || output._tag === "Ok", state: input.value }
    case "Get":
      return { ok: output === undefined || (output._tag === "Value" && output.value === state), state }
    case "Del":
      return {
        ok: output === undefined || (output._tag === "Deleted" && output.existed === (state !== null)),
        state: null
      }
    case "Cas": {
      const matches = state === input.expected
      return {
        ok: output === undefined || (output._tag === "Swapped" && output.ok === matches),
        state: matches ? input.value : state
      }
    }
  }
}

const show = (value: string | null): string => (value === null ? "null" : JSON.stringify(value))

const describeOutput = (output: KvOutput | undefined): string => {
  if (output === undefined) return "?"
  switch (output._tag) {
    case "Ok":
      return "ok"
    case "Value":
      return show(output.value)
    case "Deleted":
      return output.existed ? "deleted" : "absent"
    case "Swapped":
      return output.ok ? "swapped" : "unchanged"
  }
}

const describeInput = (input: KvInput): string => {
  switch (input._tag) {
    case "Put":
      return `put ${JSON.stringify(input.key)} ${show(input.value)}`
    case "Get":
      return `get ${JSON.stringify(input.key)}`
    case "Del":
      return `del ${JSON.stringify(input.key)}`
    case "Cas":
      return `cas ${JSON.stringify(input.key)} ${show(input.expected)} -> ${show(input.value)}`
  }
}

export const KvModel: Model<KvKeyState, KvInput, KvOutput> = {
  init: null,
  step,
  // The prefix keeps `null` and the string "null" apart.
  key: (state) => (state === null ? "-" : `=${state}`),
  partition: partitionByKey,
  readOnly: (input, output) => {
    switch (input._tag) {
      case "Get":
        return true
      case "Put":
        return false
      case "Del":
        // Deleting an absent key changes nothing.
        return output?._tag === "Deleted" && !output.existed
      case "Cas":
        return output?._tag === "Swapped" && (!output.ok || input.expected === input.value)
    }
  },
  describe: (input, output) => `${describeInput(input)} => ${describeOutput(output)}`
}

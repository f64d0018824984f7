/**
 * A small replicated key-value store: the state machine the simulation, the benchmarks
 * and the demo run (the product's richer store lives in apps/cluster). Its command and
 * result shapes are the ones the linearizability checker's model (`sim/KvModel.ts`)
 * specifies.
 *
 * The state is an immutable `HashMap`, so `apply` returns a new state in O(log n) and a
 * snapshot can hold on to the old one.
 *
 * @since 0.1.0
 */
import { StateMachine } from "@synod/core"
import { HashMap, Option, Schema } from "effect"

export const Put = Schema.TaggedStruct("Put", { key: Schema.String, value: Schema.String })
export const Get = Schema.TaggedStruct("Get", { key: Schema.String })
export const Del = Schema.TaggedStruct("Del", { key: Schema.String })
export const Cas = Schema.TaggedStruct("Cas", {
  key: Schema.String,
  /** `null`: the key must be absent. */
  expected: Schema.NullOr(Schema.String),
  value: Schema.String
})
export const KvCommand = Schema.Union([Put, Get, Del, Cas])
export type KvCommand = typeof KvCommand.Type

export const KvResult = Schema.Union([
  Schema.TaggedStruct("Ok", {}),
  Schema.TaggedStruct("Value", { value: Schema.NullOr(Schema.String) }),
  Schema.TaggedStruct("Deleted", { existed: Schema.Boolean }),
  Schema.TaggedStruct("Swapped", { ok: Schema.Boolean })
])
export type KvResult = typeof KvResult.Type

export const KvState = Schema.HashMap(Schema.String, Schema.String)
export type KvState = typeof KvState.Type

export const apply = (state: KvState, command: KvCommand): readonly [KvState, KvResult] => {
  switch (command._tag) {
    case "Put":
      return [HashMap.set(state, command.key, command.value), { _tag: "Ok" }]
    case "Get":
      return [state, { _tag: "Value", value: Option.getOrNull(HashMap.get(state, command.key)) }]
    case "Del":
      return [HashMap.remove(state, command.key), { _tag: "Deleted", existed: HashMap.has(state, command.key) }]
    case "Cas": {
      const current = Option.getOrNull(HashMap.get(state, command.key))
      if (current !== command.expected) return [state, { _tag: "Swapped", ok: false }]
      return [HashMap.set(state, command.key, command.value), { _tag: "Swapped", ok: true }]
    }
  }
}

export const machine = StateMachine.make<KvState, KvCommand, KvResult>({
  name: "synod-kv",
  command: KvCommand,
  result: KvResult,
  snapshot: KvState,
  initial: HashMap.empty(),
  apply
})

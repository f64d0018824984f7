/**
 * A program outside the workspace, as a user writes it after `npm install`ing the packed
 * packages: its own state machine (a tally of named counters), a 3-server cluster embedded
 * on the in-memory bus, and a client submitting commands. Prints the results as JSON.
 * The packed-install test copies it into a fresh project, type-checks it against the
 * packages' declarations and runs it.
 */
import { Client, Server } from "@synod/actors"
import { ClusterConfig, InMemoryBus, StateMachine, Storage } from "@synod/core"
import { Effect, HashMap, Layer, Option, Schema } from "effect"

const Add = Schema.TaggedStruct("Add", { counter: Schema.String, by: Schema.Int })
const Read = Schema.TaggedStruct("Read", { counter: Schema.String })
const Command = Schema.Union([Add, Read])
const Total = Schema.TaggedStruct("Total", { counter: Schema.String, total: Schema.Int })
const State = Schema.HashMap(Schema.String, Schema.Int)

const tally = StateMachine.make({
  name: "tally",
  command: Command,
  result: Total,
  snapshot: State,
  initial: HashMap.empty<string, number>(),
  apply: (state, command) => {
    const total = Option.getOrElse(HashMap.get(state, command.counter), () => 0)
    if (command._tag === "Read") return [state, { _tag: "Total", counter: command.counter, total }] as const
    const next = total + command.by
    return [
      HashMap.set(state, command.counter, next),
      { _tag: "Total", counter: command.counter, total: next }
    ] as const
  }
})

const config = ClusterConfig.servers(3)
const cluster = Server.layerCluster(config, tally).pipe(
  Layer.provideMerge(Storage.layerMemory()),
  Layer.provideMerge(InMemoryBus.layer())
)

const program = Effect.gen(function* () {
  const client = yield* Client.make(tally, config)
  const results = []
  results.push(yield* client.submit({ _tag: "Add", counter: "apples", by: 2 }))
  results.push(yield* client.submit({ _tag: "Add", counter: "apples", by: 3 }))
  results.push(yield* client.submit({ _tag: "Add", counter: "pears", by: 1 }))
  results.push(yield* client.submit({ _tag: "Read", counter: "apples" }))
  return results
}).pipe(Effect.scoped, Effect.provide(cluster))

console.log(JSON.stringify(await Effect.runPromise(program)))

/**
 * The simulator's check of the history watches are served from: it accepts a store's own
 * history and refuses one that misplaces, alters or loses a write.
 */
import { assert, describe, it } from "@effect/vitest"
import { Kv } from "@synod/kv"
import * as HistoryCheck from "@synod/testing/HistoryCheck"
import type { Operation } from "@synod/testing/Linearizability"

const commands: ReadonlyArray<Kv.Command> = [
  { _tag: "Put", key: "a", value: "1" },
  { _tag: "Cas", key: "a", version: 1, value: "2" },
  { _tag: "Del", key: "a" },
  {
    _tag: "Txn",
    compare: [],
    success: [
      { op: "put", key: "b", value: "3" },
      { op: "del", key: "b" },
      { op: "put", key: "c", value: "4" }
    ],
    failure: []
  }
]

const run = (machine = Kv.machine) => {
  let state = machine.initial
  const history: Array<Operation<Kv.Command, Kv.Result>> = commands.map((input, i) => {
    const [next, output] = machine.apply(state, input)
    state = next
    return { client: "c", input, call: 2 * i, ret: 2 * i + 1, output }
  })
  return { state: Kv.encodeSnapshot(state), history }
}

describe("HistoryCheck", () => {
  it("places each write by its answer, a transaction's at consecutive revisions", () => {
    const { history } = run()
    assert.deepStrictEqual(
      history.flatMap((op) => HistoryCheck.placedWrites(op.input, op.output!)),
      [
        { revision: 1, key: "a", value: "1" },
        { revision: 2, key: "a", value: "2" },
        { revision: 4, key: "b", value: "3" },
        { revision: 5, key: "b", value: null },
        { revision: 6, key: "c", value: "4" }
      ]
    )
  })

  it("accepts the store's own history, compacted or not", () => {
    const { state, history } = run()
    assert.isUndefined(HistoryCheck.check(state, history))
    const compacted = run(Kv.make({ retention: { revisions: 2 } }))
    assert.isUndefined(HistoryCheck.check(compacted.state, compacted.history))
  })

  it("refuses a history that alters, misplaces or loses a write", () => {
    const { state, history } = run()
    const events = state.history.events
    const altered = {
      ...state,
      history: { ...state.history, events: events.map((e) => (e[0] === 4 ? [4, "b", "x"] : e)) }
    }
    assert.include(HistoryCheck.check(altered, history), 'write of "b" = "3" was answered revision 4')
    const gap = { ...state, history: { ...state.history, events: events.filter((e) => e[0] !== 3) } }
    assert.include(HistoryCheck.check(gap, history), "no gap")
    const short = { ...state, history: { ...state.history, events: events.slice(0, -1) } }
    assert.include(HistoryCheck.check(short, history), "the store is at 6")
  })
})

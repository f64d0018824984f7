/**
 * The ledger's own tests: `apply` alone (the rules, and a property: no sequence of
 * commands overdraws an account or creates or loses money), then the embedded program and
 * concurrent clients on a 3-server cluster on the in-memory bus, with message loss.
 */
import { assert, describe, it } from "@effect/vitest"
import { Client, Server } from "@synod/actors"
import { ClusterConfig, InMemoryBus, Storage } from "@synod/core"
import { Effect, HashMap, Layer } from "effect"
import * as fc from "fast-check"
import { cluster, program } from "../src/embedded.ts"
import * as Ledger from "../src/Ledger.ts"

const run = (commands: ReadonlyArray<Ledger.Command>) => {
  let state = Ledger.machine.initial
  const results: Array<Ledger.Result> = []
  for (const c of commands) {
    const [next, result] = Ledger.apply(state, c)
    state = next
    results.push(result)
  }
  return { state, results }
}

const accounts = ["alice", "bob", "carol"]

describe("Ledger.apply", () => {
  it("deposits, transfers, and refuses what would overdraw or go nowhere", () => {
    const { state, results } = run([
      { _tag: "Deposit", account: "alice", amount: 100 },
      { _tag: "Transfer", from: "alice", to: "bob", amount: 60 },
      { _tag: "Transfer", from: "alice", to: "bob", amount: 41 },
      { _tag: "Withdraw", account: "bob", amount: 61 },
      { _tag: "Transfer", from: "bob", to: "bob", amount: 1 },
      { _tag: "Withdraw", account: "bob", amount: 60 },
      { _tag: "Balance", account: "nobody" }
    ])
    assert.deepStrictEqual(results, [
      { _tag: "Balances", balances: { alice: 100 } },
      { _tag: "Balances", balances: { alice: 40, bob: 60 } },
      { _tag: "Refused", reason: "InsufficientFunds", balance: 40 },
      { _tag: "Refused", reason: "InsufficientFunds", balance: 60 },
      { _tag: "Refused", reason: "SameAccount", balance: 60 },
      { _tag: "Balances", balances: { bob: 0 } },
      { _tag: "Balances", balances: { nobody: 0 } }
    ])
    assert.deepStrictEqual(HashMap.toEntries(state).sort(), [
      ["alice", 40],
      ["bob", 0]
    ])
  })

  it("never overdraws, and money is only created by deposits and destroyed by withdrawals", () => {
    const account = fc.constantFrom(...accounts)
    const amount = fc.integer({ min: 1, max: 500 })
    const command: fc.Arbitrary<Ledger.Command> = fc.oneof(
      fc.record({ _tag: fc.constant("Deposit" as const), account, amount }),
      fc.record({ _tag: fc.constant("Withdraw" as const), account, amount }),
      fc.record({ _tag: fc.constant("Transfer" as const), from: account, to: account, amount }),
      fc.record({ _tag: fc.constant("Balance" as const), account })
    )
    fc.assert(
      fc.property(fc.array(command, { maxLength: 200 }), (commands) => {
        const { state, results } = run(commands)
        let expected = 0
        commands.forEach((c, i) => {
          if (c._tag === "Deposit") expected += c.amount
          if (c._tag === "Withdraw" && results[i]!._tag === "Balances") expected -= c.amount
        })
        const balances = HashMap.toValues(state)
        assert.isTrue(balances.every((b) => b >= 0))
        assert.strictEqual(
          balances.reduce((a, b) => a + b, 0),
          expected
        )
      })
    )
  })
})

describe("the ledger on a 3-server cluster, in-memory bus", () => {
  it.live(
    "the embedded program",
    () =>
      Effect.gen(function* () {
        const { moved, refused } = yield* program.pipe(Effect.provide(cluster))
        assert.deepStrictEqual(moved, { _tag: "Balances", balances: { alice: 7000, bob: 3000 } })
        assert.deepStrictEqual(refused, { _tag: "Refused", reason: "InsufficientFunds", balance: 3000 })
      }),
    20_000
  )

  it.live(
    "concurrent transfers from several clients over a lossy bus: every balance ends at 0 or more, and the total holds",
    () =>
      Effect.gen(function* () {
        const config = ClusterConfig.servers(3)
        const lossy = Server.layerCluster(config, Ledger.machine).pipe(
          Layer.provideMerge(Storage.layerMemory()),
          Layer.provideMerge(InMemoryBus.layer({ faults: { lossRate: 0.05, minDelay: 0, maxDelay: 3 } }))
        )
        const total = yield* Effect.gen(function* () {
          const bank = yield* Client.make(Ledger.machine, config)
          for (const account of accounts) yield* bank.submit({ _tag: "Deposit", account, amount: 1000 })
          // four clients each move money around in 25 transfers, most of them too large to
          // be covered at some point: the refusals are what is tested
          yield* Effect.forEach(
            [0, 1, 2, 3],
            (c) =>
              Effect.gen(function* () {
                const client = yield* Client.make(Ledger.machine, config)
                for (let i = 0; i < 25; i++) {
                  const from = accounts[(c + i) % 3]!
                  const to = accounts[(c + i + 1) % 3]!
                  const result = yield* client.submit({
                    _tag: "Transfer",
                    from,
                    to,
                    amount: 150 + 37 * ((c * 25 + i) % 11)
                  })
                  if (result._tag === "Balances") assert.isAtLeast(result.balances[from]!, 0)
                }
              }),
            { concurrency: "unbounded" }
          )
          const finals = yield* Effect.forEach(accounts, (account) => bank.submit({ _tag: "Balance", account }))
          return finals.map((r) => {
            assert.strictEqual(r._tag, "Balances")
            const balance = r._tag === "Balances" ? Object.values(r.balances)[0]! : -1
            assert.isAtLeast(balance, 0)
            return balance
          })
        }).pipe(Effect.scoped, Effect.provide(lossy))
        assert.strictEqual(
          total.reduce((a, b) => a + b, 0),
          3000
        )
      }),
    60_000
  )
})

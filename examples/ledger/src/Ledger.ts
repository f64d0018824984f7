/**
 * A bank ledger as a synod state machine: accounts with balances in cents, deposits,
 * withdrawals and transfers, and the one rule a replicated ledger exists for — a balance
 * never goes below zero. A withdrawal or a transfer that would overdraw is refused, as a
 * result (not an error): every replica applies the same commands in the same order and
 * refuses the same ones.
 *
 * Commands and results are Schema types, so replicas and clients decode them from the
 * wire; the state is an immutable HashMap, so `apply` returns a new state without copying.
 */
import { StateMachine } from "@synod/core"
import { HashMap, Option, Schema } from "effect"

/** An account name: 1-64 characters. */
export const Account = Schema.String.check(
  Schema.isMinLength(1, { message: "an account name must not be empty" }),
  Schema.isMaxLength(64, { message: "an account name is at most 64 characters" })
)
/** An amount of cents: a positive integer, at most 10^12 (ten billion in whole units). */
export const Amount = Schema.Int.check(
  Schema.isBetween({ minimum: 1, maximum: 1e12 }, { message: "an amount is an integer of cents, 1 to 10^12" })
)

export const Deposit = Schema.TaggedStruct("Deposit", { account: Account, amount: Amount })
export const Withdraw = Schema.TaggedStruct("Withdraw", { account: Account, amount: Amount })
export const Transfer = Schema.TaggedStruct("Transfer", { from: Account, to: Account, amount: Amount })
export const Balance = Schema.TaggedStruct("Balance", { account: Account })
export const Command = Schema.Union([Deposit, Withdraw, Transfer, Balance])
export type Command = typeof Command.Type

/** An account's balance after the command (0 for an account never credited). */
export const Balances = Schema.TaggedStruct("Balances", {
  balances: Schema.Record(Schema.String, Schema.Int)
})
/** The command was refused; nothing changed. */
export const Refused = Schema.TaggedStruct("Refused", {
  reason: Schema.Literals(["InsufficientFunds", "SameAccount"]),
  /** The balance of the account that would have been debited. */
  balance: Schema.Int
})
export const Result = Schema.Union([Balances, Refused])
export type Result = typeof Result.Type

export const State = Schema.HashMap(Schema.String, Schema.Int)
export type State = typeof State.Type

const balanceOf = (state: State, account: string): number => Option.getOrElse(HashMap.get(state, account), () => 0)

const balances = (state: State, ...accounts: ReadonlyArray<string>): Result => ({
  _tag: "Balances",
  balances: Object.fromEntries(accounts.map((a) => [a, balanceOf(state, a)]))
})

/** Pure and deterministic: no clock, no randomness, nothing outside its arguments. */
export const apply = (state: State, command: Command): readonly [State, Result] => {
  switch (command._tag) {
    case "Balance":
      return [state, balances(state, command.account)]
    case "Deposit": {
      const next = HashMap.set(state, command.account, balanceOf(state, command.account) + command.amount)
      return [next, balances(next, command.account)]
    }
    case "Withdraw": {
      const balance = balanceOf(state, command.account)
      if (balance < command.amount) return [state, { _tag: "Refused", reason: "InsufficientFunds", balance }]
      const next = HashMap.set(state, command.account, balance - command.amount)
      return [next, balances(next, command.account)]
    }
    case "Transfer": {
      const balance = balanceOf(state, command.from)
      if (command.from === command.to) return [state, { _tag: "Refused", reason: "SameAccount", balance }]
      if (balance < command.amount) return [state, { _tag: "Refused", reason: "InsufficientFunds", balance }]
      const next = HashMap.set(
        HashMap.set(state, command.from, balance - command.amount),
        command.to,
        balanceOf(state, command.to) + command.amount
      )
      return [next, balances(next, command.from, command.to)]
    }
  }
}

export const machine = StateMachine.make({
  name: "ledger",
  command: Command,
  result: Result,
  snapshot: State,
  initial: HashMap.empty<string, number>(),
  apply
})

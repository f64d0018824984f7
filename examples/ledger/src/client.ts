/**
 * A command-line client of the ledger over NATS: it reads the cluster from a server's
 * config file and submits one command.
 *
 *   node src/client.ts s1.json deposit alice 10000
 *   node src/client.ts s1.json transfer alice bob 2500
 *   node src/client.ts s1.json withdraw bob 500
 *   node src/client.ts s1.json balance alice
 *
 * Prints the result as JSON; exits 1 when the ledger refused the command, 3 when no
 * replica answered in time (the command may or may not have been applied).
 */
import { readFileSync } from "node:fs"
import { Client } from "@synod/actors"
import { Host, HostConfig } from "@synod/node"
import { Cause, Effect, Layer, Logger, Schema } from "effect"
import * as Ledger from "./Ledger.ts"

const usage =
  "usage: node src/client.ts <config.json> deposit|withdraw ACCOUNT AMOUNT | transfer FROM TO AMOUNT | balance ACCOUNT"
const [file, verb, ...args] = process.argv.slice(2)

const toCommand = (): unknown => {
  switch (verb) {
    case "deposit":
    case "withdraw":
      return { _tag: verb === "deposit" ? "Deposit" : "Withdraw", account: args[0], amount: Number(args[1]) }
    case "transfer":
      return { _tag: "Transfer", from: args[0], to: args[1], amount: Number(args[2]) }
    case "balance":
      return { _tag: "Balance", account: args[0] }
    default:
      return undefined
  }
}

const main = Effect.gen(function* () {
  if (file === undefined) return yield* Effect.fail(usage)
  const raw = toCommand()
  if (raw === undefined) return yield* Effect.fail(usage)
  // the same Schema the replicas decode with: a bad amount is refused here, naming it
  const command = yield* Schema.decodeUnknownEffect(Ledger.Command)(raw).pipe(Effect.mapError((e) => e.message))
  const config = yield* HostConfig.decodeEffect(JSON.parse(readFileSync(file, "utf8")))
  const t = config.transport
  if (t.kind !== "nats") return yield* Effect.fail(`${file}: the ledger's servers talk over NATS`)
  // the connection (with the config's auth and TLS) lives as long as the client
  const transport = Host.natsTransport({ name: config.name, transport: t }, `client-${process.pid}`)
  return yield* Effect.gen(function* () {
    const client = yield* Client.make(Ledger.machine, config.cluster)
    return yield* client.submit(command)
  }).pipe(Effect.scoped, Effect.provide(transport))
}).pipe(Effect.provide(Layer.succeed(Logger.LogToStderr, true))) // stdout carries only the result

const exit = await Effect.runPromiseExit(main)
if (exit._tag === "Success") {
  console.log(JSON.stringify(exit.value))
  process.exit(exit.value._tag === "Refused" ? 1 : 0)
} else {
  const error = Cause.pretty(exit.cause)
  console.error(error)
  process.exit(/OutcomeUnknown/.test(error) ? 3 : 2)
}

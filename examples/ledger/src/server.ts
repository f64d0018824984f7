/**
 * One server of the ledger over NATS, in its own process: `node src/server.ts s1.json`.
 * The config is `@synod/node`'s `HostConfig` (the same file `synod serve` reads, without
 * its `http` section):
 *
 * ```json
 * { "name": "ledger", "node": "s1", "dataDir": "data/s1",
 *   "cluster": { "acceptors": ["s1","s2","s3"], "leaders": ["s1","s2","s3"], "replicas": ["s1","s2","s3"] },
 *   "transport": { "kind": "nats", "servers": ["nats://127.0.0.1:4222"] } }
 * ```
 *
 * It locks its data directory, claims its node id on NATS, recovers what it had stored and
 * runs its roles until SIGINT or SIGTERM (then saves a last snapshot and exits 0). Clients
 * reach the cluster over the same NATS (`client.ts`).
 */
import { readFileSync } from "node:fs"
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Host, HostConfig } from "@synod/node"
import { Console, Effect } from "effect"
import * as Ledger from "./Ledger.ts"

const [file] = process.argv.slice(2)
if (file === undefined) {
  console.error("usage: node src/server.ts <config.json>")
  process.exit(2)
}

const main = Effect.gen(function* () {
  const raw = yield* Effect.try(() => JSON.parse(readFileSync(file, "utf8")) as unknown)
  const config = yield* HostConfig.decodeEffect(raw, HostConfig.overridesFromEnv(process.env))
  yield* Host.run(config, Ledger.machine).pipe(Effect.provide(Host.logging(config)))
  yield* Console.log(`ledger server ${config.node} of cluster "${config.name}" running`)
  return yield* Effect.never
}).pipe(Effect.scoped, Effect.provide(NodeServices.layer))

NodeRuntime.runMain(main)

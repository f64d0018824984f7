/**
 * `synod-node`: one synod process hosting the roles its config names, replicating the
 * key-value state machine.
 *
 *   node packages/node/src/main.ts --config node.json [--node s1] [--data-dir DIR]
 *        [--nats nats://127.0.0.1:4222,...] [--log-level Info]
 *
 * Environment: SYNOD_NODE, SYNOD_DATA_DIR, SYNOD_NATS, SYNOD_METRICS_PORT,
 * SYNOD_METRICS_HOST, SYNOD_LOG_LEVEL (flags win).
 * Exits non-zero with a message naming the bad field when the config is wrong, or naming
 * the other process when the data directory or (over NATS) the node id is taken; exits 0
 * after SIGTERM/SIGINT once NATS is drained.
 */
import { readFileSync } from "node:fs"
import { NodeRuntime } from "@effect/platform-node"
import { KeyValue } from "@synod/actors"
import { Cause, Effect, Exit, Result } from "effect"
import * as Host from "./Host.ts"
import * as HostConfig from "./HostConfig.ts"

const usage = `usage: synod-node --config FILE [--node ID] [--data-dir DIR] [--nats URL[,URL...]] [--log-level Debug|Info|Warn|Error]`

const die = (message: string): never => {
  process.stderr.write(`synod-node: ${message}\n${usage}\n`)
  process.exit(2)
}

const flags = new Map<string, string>()
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!
  if (a === "--help" || a === "-h") {
    process.stdout.write(`${usage}\n`)
    process.exit(0)
  }
  const name = a.startsWith("--") ? a.slice(2) : die(`unexpected argument "${a}"`)
  if (!["config", "node", "data-dir", "nats", "log-level"].includes(name)) die(`unknown option --${name}`)
  const value = argv[++i]
  if (value === undefined) die(`--${name} needs a value`)
  flags.set(name, value!)
}
const file = flags.get("config") ?? die("--config is required")
let raw: unknown
try {
  raw = JSON.parse(readFileSync(file, "utf8"))
} catch (e) {
  die(`cannot read config ${file}: ${e instanceof Error ? e.message : String(e)}`)
}
const fromFlags: HostConfig.Overrides = {
  ...(flags.has("node") ? { node: flags.get("node")! } : {}),
  ...(flags.has("data-dir") ? { dataDir: flags.get("data-dir")! } : {}),
  ...(flags.has("nats") ? { nats: flags.get("nats")! } : {}),
  ...(flags.has("log-level") ? { logLevel: flags.get("log-level")! } : {})
}
const decoded = HostConfig.decode(raw, { ...HostConfig.overridesFromEnv(process.env), ...fromFlags })
if (Result.isFailure(decoded)) die(`${file}: ${decoded.failure.message}`)
const config = Result.getOrThrow(decoded)

// SIGTERM/SIGINT interrupt the program; once its finalizers ran (in-flight syncs done,
// a last snapshot saved, NATS drained) that is a clean stop: exit 0
const teardown = <E, A>(exit: Exit.Exit<E, A>, onExit: (code: number) => void) =>
  onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)

Host.run(config, KeyValue.machine).pipe(
  Effect.andThen(Effect.never),
  Effect.scoped,
  Effect.provide(Host.logging(config)),
  (program) => NodeRuntime.runMain(program, { teardown })
)

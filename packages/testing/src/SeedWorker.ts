/**
 * A worker thread of `Seeds.run`: runs each seed it is sent and answers with its outcome.
 *
 * @since 0.2.0
 */
import { parentPort, workerData } from "node:worker_threads"
import { Effect } from "effect"
import * as Seeds from "./Seeds.ts"

const port = parentPort
if (port === null) throw new Error("SeedWorker.ts runs as a worker thread (Seeds.run starts it)")
const { overrides } = workerData as Seeds.WorkerData

port.on("message", (seed: number) => {
  Effect.runPromise(Seeds.runOne(seed, overrides)).then(
    (outcome) => port.postMessage({ _tag: "Outcome", outcome } satisfies Seeds.WorkerAnswer),
    (e: unknown) =>
      port.postMessage({
        _tag: "Failed",
        seed,
        error: e instanceof Error ? (e.stack ?? e.message) : String(e)
      } satisfies Seeds.WorkerAnswer)
  )
})

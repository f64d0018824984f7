/**
 * `synod`: the command line of the cluster app (see `Commands.ts` for the commands and
 * exit codes). Run it with `node apps/cluster/src/cli.ts …` or `pnpm synod …`.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Effect, Exit } from "effect"
import { CliFailure, ExitCode, run } from "./Commands.ts"

/** The exit code of a finished run: see `Commands.ts`. */
const exitCode = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit)) return 0
  // SIGINT/SIGTERM interrupt `synod up`/`synod serve`; their finalizers ran: a clean stop
  if (Cause.hasInterruptsOnly(exit.cause)) return 0
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "Some") {
    const e = error.value
    if (e instanceof CliFailure) return e.exitCode
    // effect/cli's parse errors (already printed with the help text)
    if (typeof e === "object" && e !== null && "_tag" in e && e._tag === "ShowHelp") return ExitCode.usage
  }
  return 1
}

run.pipe(Effect.provide(NodeServices.layer), (program) =>
  NodeRuntime.runMain(program, { teardown: (exit, onExit) => onExit(exitCode(exit)) })
)

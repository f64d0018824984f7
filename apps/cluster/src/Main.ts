/**
 * Runs the `synod` command line (`Commands.ts`: the commands and exit codes) on Node with
 * this process's arguments; `cli.ts` loads it.
 *
 * @since 0.2.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Cause, Console, Effect, Exit, Layer } from "effect"
import { CliOutput } from "effect/cli"
import { HandoffScheduler } from "@synod/node"
import { CliFailure, ExitCode, run } from "./Commands.ts"

/** Quoted values longer than this are cut in error messages: a 70 KB argument was printed whole. */
const maxQuoted = 120

/** `message` with every quoted value over `maxQuoted` characters cut, saying how long it was. */
const shortened = (message: string): string =>
  message.replace(/"([^"]{121,})"/g, (_, v: string) => `"${v.slice(0, maxQuoted)}…" (${v.length} characters)`)

/**
 * Wrong arguments print what is wrong and where the help is, on stderr; the help itself
 * only when asked for (`--help`), so that the error is not lost below it.
 */
const presenter = CliOutput.layerPresenter({
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Effect.gen(function* () {
          for (const error of event.errors) yield* Console.error(`error: ${shortened(error.message)}`)
          yield* Console.error(`Run "${event.commandPath.join(" ")} --help" for usage.`)
        })
      : CliOutput.defaultPresenter.present(event)
})

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

export const main = (): void =>
  run.pipe(Effect.provide(Layer.merge(NodeServices.layer, presenter)), HandoffScheduler.provide, (program) =>
    NodeRuntime.runMain(program, { teardown: (exit, onExit) => onExit(exitCode(exit)) })
  )

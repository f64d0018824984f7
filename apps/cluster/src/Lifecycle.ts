/**
 * The start and stop lines of a long-running command (`synod up`, `synod serve`): one log
 * line when it is serving, one when a stop begins (the signal that asked for it), and one
 * when it has stopped (with the reason: the signal, or the error that ended it).
 *
 * @since 0.2.0
 */
import { Cause, Effect, Exit } from "effect"
import * as Memory from "./Memory.ts"

/** The signal this process received last, if any: the runtime turns it into an interruption. */
let received: NodeJS.Signals | undefined
const record = (signal: NodeJS.Signals) => () => {
  received = signal
}
const recorders: ReadonlyArray<readonly [NodeJS.Signals, () => void]> = [
  ["SIGINT", record("SIGINT")],
  ["SIGTERM", record("SIGTERM")]
]

/** Why a run ended, in a few words. */
export const reason = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "finished"
  if (Cause.hasInterruptsOnly(exit.cause)) return received === undefined ? "interrupted" : `signal ${received}`
  const error = Cause.squash(exit.cause)
  return `error: ${error instanceof Error ? error.message : String(error)}`
}

/**
 * Logs that `name` serves (with `fields`), then waits until stopped, giving back memory
 * it no longer uses meanwhile: what its start used, and what it used while busy once it is
 * idle again (`Memory.collectWhenIdle`); logs the stop as it begins.
 */
export const serve = (name: string, fields: Record<string, unknown>): Effect.Effect<never> =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      // before the runtime's own handler, which interrupts the run at once
      for (const [signal, f] of recorders) process.prependListener(signal, f)
    }),
    () =>
      Effect.logInfo(`${name} started`, fields).pipe(
        Effect.andThen(Memory.collectWhenIdle()),
        Effect.onInterrupt(() =>
          Effect.suspend(() => Effect.logInfo(`${name} stopping`, { reason: reason(Exit.interrupt()) }))
        )
      ),
    () =>
      Effect.sync(() => {
        for (const [signal, f] of recorders) process.off(signal, f)
      })
  )

/** Logs that `name` stopped, and why, once `self` (its whole run, finalizers included) has ended. */
export const stopped =
  (name: string) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.onExit(self, (exit) => Effect.logInfo(`${name} stopped`, { reason: reason(exit) }))

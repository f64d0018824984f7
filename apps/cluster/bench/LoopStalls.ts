/**
 * Loaded into each server by `pnpm bench nats --stalls` (`node --import`): notes every time
 * the process's event loop was held up, every role of the process with it. A 10 ms
 * interval timer that runs late by `late` ms was held up that long (by a step that took
 * it, a collection, or a wait for a core); each delay of at least 20 ms is appended to
 * `SYNOD_LOOP_STALLS` as `<ms since the epoch> <ms late>`. A benchmark's tool, not the
 * server's: the timer wakes the process 100 times a second.
 */
import { appendFileSync } from "node:fs"

const file = process.env.SYNOD_LOOP_STALLS
if (file !== undefined) {
  let last = performance.now()
  setInterval(() => {
    const now = performance.now()
    const late = now - last - 10
    last = now
    if (late >= 20) appendFileSync(file, `${Date.now()} ${late.toFixed(1)}\n`)
  }, 10).unref()
}

/** The stalls `file` noted from `from` to `to` (ms since the epoch), in ms, in the order they came. */
export const read = (text: string, from: number, to: number): Array<number> =>
  text
    .split("\n")
    .map((line) => line.split(" ").map(Number))
    .filter(([at, ms]) => at !== undefined && ms !== undefined && at >= from && at <= to)
    .map(([, ms]) => ms!)

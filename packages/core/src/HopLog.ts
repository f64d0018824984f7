/**
 * The hop log: when each message of one command was sent, received, stepped and written
 * to disk, in every process of a cluster, for `pnpm bench nats --hops` (where one client's
 * time goes, hop by hop). Tracing (`Trace`) answers the same question for a production
 * cluster but costs milliseconds of CPU per command at one client, more than the hops it
 * would measure; this costs a timestamp and a short string per event, and one comparison
 * when off.
 *
 * Off unless `start(dir)` is called or the environment variable `SYNOD_HOP_LOG` names a
 * directory when the module loads (how a benchmark turns it on in the processes it
 * starts). Each process then appends `<µs since the epoch> <event>` lines to
 * `<dir>/<pid>.log`, buffered and written every 200 ms and at exit. Timestamps are
 * `performance.timeOrigin + performance.now()`: comparable across the processes of one
 * machine.
 *
 * Callers check `enabled()` before building an event's text, so the text costs nothing
 * when the log is off.
 *
 * @since 0.2.0
 */

let file: string | undefined
const lines: Array<string> = []

type Fs = { appendFileSync(path: string, data: string): void; mkdirSync(path: string, o: { recursive: true }): void }
const fs = (): Fs | undefined =>
  (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.("node:fs") as
    | Fs
    | undefined

const write = (): void => {
  if (file === undefined || lines.length === 0) return
  const text = `${lines.join("\n")}\n`
  lines.length = 0
  fs()?.appendFileSync(file, text)
}

/** Starts logging this process's hops to `<dir>/<pid>.log` (at most once; later calls do nothing). */
export const start = (dir: string): void => {
  const proc = (globalThis as { process?: NodeJS.Process }).process
  if (file !== undefined || proc === undefined) return
  fs()?.mkdirSync(dir, { recursive: true })
  file = `${dir}/${proc.pid}.log`
  setInterval(write, 200).unref()
  proc.on("exit", write)
}

/** Whether events are being logged: check it before building an event's text. */
export const enabled = (): boolean => file !== undefined

/** Logs `event` (one line of text without newlines) with the current time. */
export const mark = (event: string): void => {
  if (file !== undefined) lines.push(`${((performance.timeOrigin + performance.now()) * 1000).toFixed(0)} ${event}`)
}

const fromEnv = (globalThis as { process?: NodeJS.Process }).process?.env.SYNOD_HOP_LOG
if (fromEnv !== undefined && fromEnv !== "") start(fromEnv)

/**
 * Test kit: the `synod` CLI as real child processes on the real Node binary
 * (`process.execPath`; the npm `node` shim would not forward signals). A long-running
 * command (`up`, `serve`) is a scoped resource: SIGTERM when the scope closes, SIGKILL if
 * it has not exited within a few seconds. A one-shot command answers its exit code and
 * output.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { Data, Effect, Schedule } from "effect"

export const cli = new URL("../src/cli.ts", import.meta.url).pathname

export class ProcessError extends Data.TaggedError("ProcessError")<{ readonly reason: string }> {}

export interface Daemon {
  readonly pid: number
  readonly stdout: () => string
  readonly stderr: () => string
  /** Waits until stdout has a match for `pattern` and answers its first group. */
  waitFor(pattern: RegExp, timeoutMs?: number): Effect.Effect<string, ProcessError>
  /** Sends `signal` and waits for the exit; answers the exit code (null when killed by a signal). */
  signal(signal: NodeJS.Signals): Effect.Effect<number | null>
  readonly exited: () => boolean
}

const waitExit = (child: ChildProcess): Effect.Effect<number | null> =>
  Effect.callback((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.succeed(child.exitCode))
    child.once("exit", (code) => resume(Effect.succeed(code)))
  })

/** Starts `synod <args>` for the lifetime of the scope. */
export const daemon = Effect.fnUntraced(function* (args: ReadonlyArray<string>, env: Record<string, string> = {}) {
  let out = ""
  let err = ""
  const child = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const c = spawn(process.execPath, [cli, ...args], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, ...env }
      })
      c.stdout?.on("data", (d: Buffer) => {
        out += d.toString()
      })
      c.stderr?.on("data", (d: Buffer) => {
        err += d.toString()
      })
      return c
    }),
    (c) =>
      Effect.suspend(() => {
        if (c.exitCode !== null || c.signalCode !== null) return Effect.void
        c.kill("SIGTERM")
        return waitExit(c).pipe(
          Effect.timeoutOption("5 seconds"),
          Effect.flatMap((done) =>
            done._tag === "Some" ? Effect.void : Effect.sync(() => c.kill("SIGKILL")).pipe(Effect.andThen(waitExit(c)))
          )
        )
      })
  )
  const exited = () => child.exitCode !== null || child.signalCode !== null
  const waitFor = (pattern: RegExp, timeoutMs = 20_000) =>
    Effect.suspend(() => {
      const m = pattern.exec(out)
      if (m !== null) return Effect.succeed(m[1] ?? m[0])
      if (exited()) {
        return Effect.fail(
          new ProcessError({ reason: `synod ${args.join(" ")} exited (${child.exitCode}): ${out}\n${err}` })
        )
      }
      return Effect.fail(new ProcessError({ reason: "not yet" }))
    }).pipe(
      Effect.retry({
        schedule: Schedule.spaced("25 millis"),
        times: Math.ceil(timeoutMs / 25),
        while: (e) => e.reason === "not yet"
      }),
      Effect.mapError((e) =>
        e.reason === "not yet"
          ? new ProcessError({
              reason: `no ${pattern} from synod ${args.join(" ")} in ${timeoutMs} ms:\n${out}\n${err}`
            })
          : e
      )
    )
  const signal = (sig: NodeJS.Signals) =>
    Effect.suspend(() => {
      if (!exited()) child.kill(sig)
      return waitExit(child)
    })
  return {
    pid: child.pid ?? -1,
    stdout: () => out,
    stderr: () => err,
    waitFor,
    signal,
    exited
  } satisfies Daemon
})

export interface Output {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs `synod <args>` to completion (killed after `timeoutMs`), with `env` added to this process's. */
export const run = (
  args: ReadonlyArray<string>,
  timeoutMs = 30_000,
  env: Record<string, string> = {}
): Effect.Effect<Output> =>
  Effect.callback((resume) => {
    const child = execFile(
      process.execPath,
      [cli, ...args],
      { timeout: timeoutMs, killSignal: "SIGKILL", env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
        resume(Effect.succeed({ code, stdout: stdout.toString(), stderr: stderr.toString() }))
      }
    )
    return Effect.sync(() => {
      if (child.exitCode === null) child.kill("SIGKILL")
    })
  })

/** A JSON request to a synod HTTP API; answers the status and the parsed body. */
export const http = (
  method: string,
  url: string,
  body?: unknown
): Effect.Effect<{ readonly status: number; readonly body: any }, ProcessError> =>
  Effect.tryPromise({
    try: async () => {
      const res = await fetch(url, {
        method,
        ...(body === undefined
          ? {}
          : {
              headers: { "content-type": "application/json" },
              body: typeof body === "string" ? body : JSON.stringify(body)
            })
      })
      const text = await res.text()
      return { status: res.status, body: text === "" ? undefined : JSON.parse(text) }
    },
    catch: (e) => new ProcessError({ reason: `${method} ${url}: ${String(e)}` })
  })

interface StatusRow {
  readonly id: string
  readonly acceptor: { readonly promised: { readonly round: number; readonly leader: string } }
  readonly leader: { readonly ballot: { readonly round: number; readonly leader: string }; readonly active: boolean }
  readonly replica: { readonly slotOut: number }
  readonly lag: number
}

/**
 * `synod status --json --url <urls>` until the cluster is settled: exactly one active
 * leader, whose ballot every acceptor promised (an election under CPU pressure can leave
 * two leaders active for a moment). Fails with the last answer if it never settles.
 */
export const settledStatus = (urls: string) =>
  Effect.gen(function* () {
    let last = ""
    for (let i = 0; i < 20; i++) {
      const r = yield* run(["status", "--json", "--url", urls])
      last = `${r.code} ${r.stdout} ${r.stderr}`
      if (r.code === 0) {
        const rows: ReadonlyArray<StatusRow> = JSON.parse(r.stdout).servers
        const active = rows.filter((row) => row.leader.active)
        const ballot = active[0]?.leader.ballot
        if (
          active.length === 1 &&
          rows.every(
            (row) => row.acceptor.promised.round === ballot!.round && row.acceptor.promised.leader === ballot!.leader
          )
        )
          return rows
      }
      yield* Effect.sleep("250 millis")
    }
    return yield* Effect.fail(new ProcessError({ reason: `the cluster did not settle: ${last}` }))
  })

/** Polls `check` until it holds (20 ms apart, up to 5 s). */
export const eventually = <E, R>(what: string, check: Effect.Effect<boolean, E, R>) =>
  check.pipe(
    Effect.filterOrFail(
      (ok) => ok,
      () => `not yet: ${what}`
    ),
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo({ times: 250 })))
  )

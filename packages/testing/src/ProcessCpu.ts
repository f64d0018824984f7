/**
 * The CPU a process has used, for benchmarks that print CPU per operation (what does not
 * depend on what else the machine runs, where throughput and latency do).
 *
 * @since 0.5.0
 */
import { readFileSync } from "node:fs"

/** CPU seconds process `pid` has used (user + system), from /proc on Linux; undefined elsewhere or when it is gone. */
export const cpuSeconds = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  try {
    // fields after the command name (which may hold spaces): utime is the 14th, stime the
    // 15th, in USER_HZ, which Linux fixes at 100 for /proc
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

/**
 * Seconds the main thread of process `pid` has spent runnable but waiting for a CPU (the
 * run queue), from /proc/PID/schedstat on Linux (its second field, in nanoseconds);
 * undefined elsewhere, when the kernel keeps no such figures, or when the process is gone.
 * On a machine whose cores the processes of a benchmark share, this is the part of a
 * latency that is neither work nor I/O.
 */
export const runQueueSeconds = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  try {
    const fields = readFileSync(`/proc/${pid}/schedstat`, "utf8").trim().split(" ")
    const waited = Number(fields[1])
    return fields.length >= 3 && Number.isFinite(waited) ? waited / 1e9 : undefined
  } catch {
    return undefined
  }
}

/**
 * Times the main thread of process `pid` went to sleep and was woken (its voluntary
 * context switches: waiting for a socket, a timer or the disk), from /proc/PID/status on
 * Linux; undefined elsewhere or when the process is gone. With one client, most of what a
 * write costs a server is paid per wake-up (docs/benchmark-log.md, 2026-12-05).
 */
export const wakeups = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8")
      .split("\n")
      .find((l) => l.startsWith("voluntary_ctxt_switches:"))
    const n = Number(line?.split(":")[1])
    return line !== undefined && Number.isFinite(n) ? n : undefined
  } catch {
    return undefined
  }
}

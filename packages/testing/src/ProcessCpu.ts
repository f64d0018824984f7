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

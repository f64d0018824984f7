/**
 * `ProcessCpu`: what benchmarks read of a process from /proc. Three busy processes pinned
 * to one core each run about a third of the time and wait for it the rest: their CPU and
 * their run-queue wait both show it, the wait about twice the CPU.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { cpuSeconds, runQueueSeconds, wakeups } from "@synod/testing/ProcessCpu"

const busy = () => spawn("taskset", ["-c", "0", "sh", "-c", "while :; do :; done"], { stdio: "ignore" })

describe("ProcessCpu", () => {
  it("reads a process's CPU and its wait for a core; nothing for a process that is gone", async () => {
    const spun = [busy(), busy(), busy()]
    try {
      await new Promise((resolve) => setTimeout(resolve, 1200))
      const used = spun.reduce((sum, p) => sum + (cpuSeconds(p.pid) ?? 0), 0)
      const waited = spun.reduce((sum, p) => sum + (runQueueSeconds(p.pid) ?? 0), 0)
      // one core for three: together about a second on it (less what else ran there), and
      // each waits while the other two run; anything else on that core adds to the wait
      assert.isAbove(used, 0.3, `CPU used: ${used} s`)
      assert.isAbove(waited, 1.3 * used, `waited ${waited} s for the core, against ${used} s on it`)
      assert.isBelow(waited, 10, `waited for the core: ${waited} s`)
    } finally {
      for (const p of spun) p.kill("SIGKILL")
    }
    assert.isUndefined(runQueueSeconds(2 ** 22 + 7))
    assert.isUndefined(cpuSeconds(2 ** 22 + 7))
    assert.isUndefined(runQueueSeconds(undefined))
  })

  it("counts the times a process slept and was woken: a sleeper's count grows with its sleeps, a spinner's does not", async () => {
    // a shell that sleeps 20 ms at a time (waiting for each `sleep` to end), longer than the
    // test looks at it, and one that never sleeps
    const sleeper = spawn("sh", ["-c", "for i in $(seq 500); do sleep 0.02; done"], { stdio: "ignore" })
    const spinner = spawn("sh", ["-c", "while :; do :; done"], { stdio: "ignore" })
    try {
      await new Promise((resolve) => setTimeout(resolve, 100))
      const [s0, p0] = [wakeups(sleeper.pid), wakeups(spinner.pid)]
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const [s1, p1] = [wakeups(sleeper.pid), wakeups(spinner.pid)]
      assert.isDefined(s0)
      // 50 sleeps in a second on an idle machine; a loaded one starts fewer
      assert.isAtLeast(s1! - s0!, 3, `the sleeper woke ${s1! - s0!} times in 1 s of sleeps of 20 ms`)
      assert.isAtMost(p1! - p0!, 2, `the spinner woke ${p1! - p0!} times`)
    } finally {
      sleeper.kill("SIGKILL")
      spinner.kill("SIGKILL")
    }
    assert.isUndefined(wakeups(2 ** 22 + 7))
    assert.isUndefined(wakeups(undefined))
  })
})

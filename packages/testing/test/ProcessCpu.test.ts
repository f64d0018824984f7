/**
 * `ProcessCpu`: what benchmarks read of a process from /proc. Three busy processes pinned
 * to one core each run about a third of the time and wait for it the rest: their CPU and
 * their run-queue wait both show it, the wait about twice the CPU.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { cpuSeconds, runQueueSeconds } from "@synod/testing/ProcessCpu"

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
})

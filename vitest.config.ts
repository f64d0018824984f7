import { availableParallelism } from "node:os"
import { defineConfig } from "vitest/config"
import { outages } from "./apps/cluster/vitest.config.ts"
import { shared } from "./vitest.shared.ts"

export default defineConfig({
  test: {
    // the reporter prints a test's console output only when it failed, and a file's
    // (output no test can claim: the tests of a file run at once) only when one of its failed
    silent: "passed-only",
    // two files at a time on a 2-core machine: see vitest.shared.ts
    maxWorkers: Math.max(2, availableParallelism() - 1),
    projects: [
      "packages/*/vitest.config.ts",
      "apps/*/vitest.config.ts",
      "examples/*/vitest.config.ts",
      // the outages (256 writers, megabytes of values, a leader killed, recovery within a
      // bound) run after the rest, on their own: another file's load would be theirs
      {
        ...shared,
        test: {
          ...shared.test,
          name: "@synod/cluster outages",
          root: "./apps/cluster",
          include: outages,
          sequence: { ...shared.test?.sequence, groupOrder: 1 }
        }
      }
    ]
  }
})

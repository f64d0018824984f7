import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    // the reporter prints a test's console output only when it failed, and a file's
    // (output no test can claim: the tests of a file run at once) only when one of its failed
    silent: "passed-only",
    projects: ["packages/*/vitest.config.ts", "apps/*/vitest.config.ts", "examples/*/vitest.config.ts"]
  }
})

import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    sequence: { concurrent: true },
    // the tests of a file run at once and fsync a lot: on a busy 2-core machine 5 s is too tight
    testTimeout: 30_000,
    setupFiles: ["../../vitest.setup.ts"]
  }
})

import { defineConfig, mergeConfig } from "vitest/config"
import { shared } from "../../vitest.shared.ts"

export default mergeConfig(
  shared,
  defineConfig({
    // the tests of a file run at once and fsync a lot: on a busy 2-core machine 5 s is too tight
    test: { testTimeout: 30_000 }
  })
)

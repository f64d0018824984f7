import { configDefaults, defineConfig, mergeConfig } from "vitest/config"
import { shared } from "../../vitest.shared.ts"

/** The outage tests run alone, after everything else: see `outages` in the root config. */
export const outages = ["test/Outage.test.ts"]

export default mergeConfig(
  shared,
  defineConfig({
    test: {
      exclude: [...configDefaults.exclude, ...outages],
      // most tests start a cluster first: with the whole suite at once on a 2-core machine,
      // vitest's default 5 s ran out for one that takes 0.8 s alone (a CI run, 2026-12-05)
      testTimeout: 30_000
    }
  })
)

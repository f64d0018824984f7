import { configDefaults, defineConfig, mergeConfig } from "vitest/config"
import { shared } from "../../vitest.shared.ts"

/** The outage tests run alone, after everything else: see `outages` in the root config. */
export const outages = ["test/Outage.test.ts"]

export default mergeConfig(shared, defineConfig({ test: { exclude: [...configDefaults.exclude, ...outages] } }))

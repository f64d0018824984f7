/**
 * What every package's vitest config shares. The workspace's tests run the sources: the
 * `@synod/source` export condition (see any package.json's `exports`) points `@synod/*`
 * at `src/*.ts` instead of the built `dist/`, in the test files and, through NODE_OPTIONS,
 * in the processes they start (`synod serve`, fixtures). (Which console output is printed
 * is the root config's `silent`: the reporter reads it.)
 */
import { defineConfig } from "vitest/config"

/** Vite's server conditions with synod's source condition first. */
const conditions = ["@synod/source", "module", "node", "development|production"]

export const shared = defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ["test/**/*.test.ts"],
    sequence: { concurrent: true },
    setupFiles: [new URL("./vitest.setup.ts", import.meta.url).pathname],
    env: { NODE_OPTIONS: "--conditions=@synod/source" }
  }
})

/**
 * What every package's vitest config shares. The workspace's tests run the sources: the
 * `@synod/source` export condition (see any package.json's `exports`) points `@synod/*`
 * at `src/*.ts` instead of the built `dist/`, in the test files and, through NODE_OPTIONS,
 * in the processes they start (`synod serve`, fixtures). (Which console output is printed
 * is the root config's `silent`: the reporter reads it.)
 */
import { availableParallelism } from "node:os"
import { defineConfig } from "vitest/config"

/** Vite's server conditions with synod's source condition first. */
const conditions = ["@synod/source", "module", "node", "development|production"]

export const shared = defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ["test/**/*.test.ts"],
    sequence: { concurrent: true },
    // workers run files (a file's tests run at once, on one thread): most files wait on
    // processes, sockets and disks while the simulation files keep a core busy, so on a
    // 2-core machine two files at a time, not vitest's default of cores - 1 (a project's
    // own setting decides: the root config's is not inherited)
    maxWorkers: Math.max(2, availableParallelism() - 1),
    setupFiles: [new URL("./vitest.setup.ts", import.meta.url).pathname],
    env: { NODE_OPTIONS: "--conditions=@synod/source" }
  }
})

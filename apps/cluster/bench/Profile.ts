/**
 * Reads V8 CPU profiles (`node --cpu-prof`) and prints the functions that took the most
 * time themselves (self time), per process: where to look before optimising.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

interface CpuProfile {
  readonly nodes: ReadonlyArray<{
    readonly id: number
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  }>
  readonly samples: ReadonlyArray<number>
}

/** The `top` functions of one profile by self time, as shares of all samples (idle included). */
export const topSelf = (profile: CpuProfile, top = 12): ReadonlyArray<readonly [string, number]> => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<string, number>()
  for (const id of profile.samples) {
    const frame = byId.get(id)?.callFrame
    if (frame === undefined) continue
    const where = frame.url === "" ? "" : ` ${frame.url.split("/").slice(-2).join("/")}:${frame.lineNumber + 1}`
    const key = `${frame.functionName || "(anonymous)"}${where}`
    self.set(key, (self.get(key) ?? 0) + 1)
  }
  const total = Math.max(1, profile.samples.length)
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, n]) => [key, n / total] as const)
}

/** Prints the top functions of every profile under `dir` (one subdirectory per process). */
export const printTop = (dir: string, write: (line: string) => void, top = 12): void => {
  for (const sub of readdirSync(dir, { withFileTypes: true })) {
    if (!sub.isDirectory()) continue
    for (const file of readdirSync(join(dir, sub.name)).filter((f) => f.endsWith(".cpuprofile"))) {
      const profile = JSON.parse(readFileSync(join(dir, sub.name, file), "utf8")) as CpuProfile
      write(`\n${sub.name}: top functions by self time (${join(dir, sub.name, file)})`)
      for (const [key, share] of topSelf(profile, top)) write(`  ${(100 * share).toFixed(1).padStart(5)}%  ${key}`)
    }
  }
}

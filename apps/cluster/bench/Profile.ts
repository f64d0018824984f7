/**
 * Reads V8 CPU profiles (`node --cpu-prof`) and prints the functions that took the most
 * time themselves (self time), per process: where to look before optimising.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

export interface CpuProfile {
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

/**
 * Where a sample's time went, by the function it was in: idle; blocked in a system call
 * the profiler can name (a log's `fdatasync`, a socket's write); the collector; else the
 * code's owner, from its file (effect's runtime, the NATS client, a synod package, Node
 * itself). A bundle's code (`bin/Main.js`) is all its own owner: profile the sources
 * (`pnpm bench nats --profile`) to see its parts. A profile covers the process's whole
 * life: in a short run its start (compiling modules: Node's code) weighs too.
 */
export const placeOf = (frame: CpuProfile["nodes"][number]["callFrame"]): string => {
  const { functionName: name, url } = frame
  if (name === "(idle)") return "idle"
  if (name === "(garbage collector)") return "GC"
  if (name === "(program)") return "V8 (program)"
  if (name === "fdatasync" || name === "fsync") return "blocked in fsync"
  if (name === "writeBuffer" || name === "writeString" || name === "writeUtf8String" || name === "writev") {
    return "socket and file writes"
  }
  if (url === "" || url.startsWith("node:")) return "Node and native code"
  const synod = /\/(packages|apps)\/([^/]+)\/src\//.exec(url)
  if (synod !== null && !url.includes("/node_modules/")) return `synod ${synod[2]}`
  if (url.includes("/effect/")) return "effect (runtime, schema)"
  if (url.includes("/@nats-io/")) return "NATS client"
  if (url.includes("/sorted-btree/")) return "sorted-btree (the store's tree)"
  if (url.endsWith("/bin/Main.js")) return "the bundle (bin/Main.js)"
  return "other"
}

/** Shares of all samples (idle included) by `placeOf`, largest first. */
export const byPlace = (profile: CpuProfile): ReadonlyArray<readonly [string, number]> => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const places = new Map<string, number>()
  for (const id of profile.samples) {
    const frame = byId.get(id)?.callFrame
    if (frame === undefined) continue
    const place = placeOf(frame)
    places.set(place, (places.get(place) ?? 0) + 1)
  }
  const total = Math.max(1, profile.samples.length)
  return [...places].sort((a, b) => b[1] - a[1]).map(([place, n]) => [place, n / total] as const)
}

/** Prints the top functions of every profile under `dir` (one subdirectory per process). */
export const printTop = (dir: string, write: (line: string) => void, top = 12): void => {
  for (const sub of readdirSync(dir, { withFileTypes: true })) {
    if (!sub.isDirectory()) continue
    for (const file of readdirSync(join(dir, sub.name)).filter((f) => f.endsWith(".cpuprofile"))) {
      const profile = JSON.parse(readFileSync(join(dir, sub.name, file), "utf8")) as CpuProfile
      write(`\n${sub.name}: where the time went (${join(dir, sub.name, file)})`)
      write(
        `  ${byPlace(profile)
          .map(([place, share]) => `${place} ${(100 * share).toFixed(1)}%`)
          .join(", ")}`
      )
      write(`${sub.name}: top functions by self time`)
      for (const [key, share] of topSelf(profile, top)) write(`  ${(100 * share).toFixed(1).padStart(5)}%  ${key}`)
    }
  }
}

/**
 * The process's own memory and CPU at `/metrics`, under the names Prometheus's Node
 * clients use (`process_resident_memory_bytes`, `nodejs_heap_size_used_bytes`, ...), so
 * existing dashboards and alerts work unchanged. Sampled every second by one fiber (and
 * once at start, so every family is there from the first scrape): reading them on each
 * scrape would need a hook the exporter does not have, and a second of staleness is
 * nothing for memory.
 *
 * @since 0.3.0
 */
import { Effect, Layer, Metric, Schedule } from "effect"

export const residentMemory = Metric.gauge("process_resident_memory_bytes", {
  description: "Resident set size of the process, in bytes"
})
export const heapUsed = Metric.gauge("nodejs_heap_size_used_bytes", {
  description: "V8 heap in use (live objects and garbage not yet collected), in bytes"
})
export const heapTotal = Metric.gauge("nodejs_heap_size_total_bytes", {
  description: "V8 heap reserved, in bytes"
})
export const externalMemory = Metric.gauge("nodejs_external_memory_bytes", {
  description: "Memory of buffers and other objects outside the V8 heap, in bytes"
})
export const cpuSeconds = Metric.counter("process_cpu_seconds_total", {
  description: "User and system CPU time the process has used, in seconds",
  incremental: true
})

/** CPU microseconds already counted. */
let counted = 0

const sample = Effect.suspend(() => {
  let memory: NodeJS.MemoryUsage
  try {
    memory = process.memoryUsage()
  } catch {
    // it reads a file: with every file descriptor taken (EMFILE) skip this sample, not the process
    return Effect.void
  }
  const cpu = process.cpuUsage()
  const before = counted
  counted = cpu.user + cpu.system
  return Effect.all(
    [
      Metric.update(residentMemory, memory.rss),
      Metric.update(heapUsed, memory.heapUsed),
      Metric.update(heapTotal, memory.heapTotal),
      Metric.update(externalMemory, memory.external + memory.arrayBuffers),
      Metric.update(cpuSeconds, (counted - before) / 1e6)
    ],
    { discard: true }
  )
})

/** Samples the process's memory and CPU into the gauges every second while the layer lives. */
export const layer: Layer.Layer<never> = Layer.effectDiscard(
  sample.pipe(Effect.repeat(Schedule.spaced("1 second")), Effect.forkScoped)
)

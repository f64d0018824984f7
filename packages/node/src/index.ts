/**
 * @synod/node: synod on Node — durable file storage (a write-ahead log with group commit
 * for acceptors, atomic files for leader rounds and replica snapshots) and the process
 * host that runs the roles a config file names, on the transport it names. A library: the
 * server process is `synod serve` (apps/cluster).
 *
 * @since 0.1.0
 */
export * as AtomicFile from "./AtomicFile.ts"
export * as DataDirLock from "./DataDirLock.ts"
export * as DurableFileSystem from "./DurableFileSystem.ts"
export * as FileStorage from "./FileStorage.ts"
export * as Frame from "./Frame.ts"
export * as Host from "./Host.ts"
export * as HostConfig from "./HostConfig.ts"
export * as Wal from "./Wal.ts"
export * as HandoffScheduler from "./HandoffScheduler.ts"

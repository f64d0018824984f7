/**
 * @synod/cluster: the replicated key-value and coordination service — the HTTP API
 * definition (`Api`) over the state machine of `@synod/kv`, its server (`ApiServer`), the embedded
 * cluster of `synod up` (`Embedded`), one server of `synod serve` (`Serve`), and the
 * `synod` command line (`Commands`; entry point `cli.ts`).
 *
 * @since 0.1.0
 */
export * as Api from "./Api.ts"
export * as ApiServer from "./ApiServer.ts"
export * as Backend from "./Backend.ts"
export * as Backup from "./Backup.ts"
export * as Commands from "./Commands.ts"
export * as Embedded from "./Embedded.ts"
export * as Init from "./Init.ts"
export * as Serve from "./Serve.ts"
export * as WatchClient from "./WatchClient.ts"
export * as LeaseClient from "./LeaseClient.ts"
export * as Lock from "./Lock.ts"

/**
 * @synod/actors: the five roles of Multi-Paxos as Effect fibers (acceptor, leader with its
 * scouts and commanders, replica), the colocated server and the client, for any
 * `StateMachine` (the product's is `@synod/kv`). The simulator (`@synod/testing`) reaches
 * the roles' test hooks through the `@synod/actors/Hooks` subpath, which this barrel does
 * not export.
 *
 * @since 0.1.0
 */
export * as Acceptor from "./Acceptor.ts"
export * as Client from "./Client.ts"
export * as ClientTable from "./ClientTable.ts"
export * as Commander from "./Commander.ts"
export * as Divergence from "./Divergence.ts"
export * as Learner from "./Learner.ts"
export * as Leader from "./Leader.ts"
export * as Liveness from "./Liveness.ts"
export * as Metrics from "./Metrics.ts"
export * as Replica from "./Replica.ts"
export * as Scout from "./Scout.ts"
export * as Server from "./Server.ts"
export * as StateTransfer from "./StateTransfer.ts"

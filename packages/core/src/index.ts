/**
 * @synod/core: the vocabulary of synod — messages and their codec, ballots, addresses,
 * the Transport service with its in-memory bus, storage contracts with in-memory stores,
 * the StateMachine contract, cluster configuration and quorum counting.
 *
 * @since 0.1.0
 */
export * as Address from "./Address.ts"
export * as Ballot from "./Ballot.ts"
export * as ClusterConfig from "./ClusterConfig.ts"
export * as Configuration from "./Configuration.ts"
export * as Codec from "./Codec.ts"
export * as Command from "./Command.ts"
export * as InMemoryBus from "./InMemoryBus.ts"
export * as HopLog from "./HopLog.ts"
export * as JsonText from "./JsonText.ts"
export * as Limits from "./Limits.ts"
export * as Message from "./Message.ts"
export * as Monotonic from "./Monotonic.ts"
export * as Quorum from "./Quorum.ts"
export * as StateMachine from "./StateMachine.ts"
export * as Storage from "./Storage.ts"
export * as Trace from "./Trace.ts"
export * as Transport from "./Transport.ts"
export * as Trusted from "./Trusted.ts"

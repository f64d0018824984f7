/**
 * @synod/testing: the test kits, which no production package imports — the deterministic
 * simulator (`Simulation`, `Scenario`, `SimClock`, its invariant `Checker`, `Reduce`; the
 * `pnpm sim` command line is `cli.ts`), the linearizability checker (`Linearizability`)
 * with the key-value model (`KvModel`), the Transport conformance suite
 * (`TransportContract`), fast-check arbitraries for the wire vocabulary (`Arbitraries`)
 * and a launcher of loopback nats-server processes (`NatsServer`).
 *
 * This barrel loads `@effect/vitest` (through `TransportContract`); scripts that run
 * outside vitest (benchmarks) import the modules they use by subpath, e.g.
 * `@synod/testing/NatsServer`.
 *
 * @since 0.1.0
 */
export * as Arbitraries from "./Arbitraries.ts"
export * as Checker from "./Checker.ts"
export * as KvModel from "./KvModel.ts"
export * as Linearizability from "./Linearizability.ts"
export * as NatsServer from "./NatsServer.ts"
export * as Reduce from "./Reduce.ts"
export * as Scenario from "./Scenario.ts"
export * as SimClock from "./SimClock.ts"
export * as Simulation from "./Simulation.ts"
export * as TransportContract from "./TransportContract.ts"

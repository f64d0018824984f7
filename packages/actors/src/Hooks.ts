/**
 * Hooks into the roles, for the simulator and tests (`@synod/testing`) only; nothing in
 * production provides them, and a process that does not gets the defaults:
 *
 * - `PlantedBugs`: switches that re-introduce known Paxos bugs (docs/protocol.md#planted-bugs),
 *   all off by default, so tests can prove the simulator catches each one;
 * - `Probe`: the observer the simulator's invariant checker installs to see every role
 *   event at the moment it happens; absent by default (each hook then costs one check);
 * - `Tamper`: the simulator's divergence nemesis changes a replica's state through it,
 *   without a command; absent by default.
 *
 * All are `Context.Reference`s the roles read. They live in `internal/` with the roles;
 * this module is the one way in from outside the package.
 *
 * @since 0.1.0
 */
export * as PlantedBugs from "./internal/PlantedBugs.ts"
export * as Probe from "./internal/Probe.ts"
export * as Tamper from "./internal/Tamper.ts"

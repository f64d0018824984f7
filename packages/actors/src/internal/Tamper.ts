/**
 * A way into a replica's state from outside the protocol, for the simulator's divergence
 * nemesis only: it stands for what the protocol cannot prevent (a forged message applied,
 * a bug, a bit flip) and divergence detection must catch. Absent by default; outside
 * this package reachable only through `@synod/actors/Hooks`.
 */
import { Context } from "effect"

export interface Tamper {
  /** A replica (re)started: `corrupt` replaces its state machine's state with `f` of it, without a command. */
  register(replica: string, corrupt: (f: (state: unknown) => unknown) => void): void
}

export const Tamper = Context.Reference<Tamper | undefined>("@synod/actors/internal/Tamper", {
  defaultValue: () => undefined
})

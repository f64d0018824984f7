/**
 * Starts a lease keeper (`@synod/kv`'s `LeaseKeeper`) next to every leader this process
 * hosts, reading the applied state of the replica on the same server (every server of
 * the default layout hosts both) and submitting its expiries through `submit`. A keeper
 * acts only while its leader is active; it stops with the scope.
 *
 * @since 0.3.0
 */
import type { Client, Server } from "@synod/actors"
import { type ClusterConfig, Monotonic } from "@synod/core"
import { type Kv, LeaseKeeper } from "@synod/kv"
import { Effect, type Scope } from "effect"

export const start = (
  handles: ReadonlyArray<Server.Handle>,
  config: ClusterConfig.ClusterConfig,
  submit: (command: Kv.Command) => Effect.Effect<Kv.Result, Client.SubmitError>
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const now = yield* Monotonic.Monotonic
    for (const handle of handles) {
      const applied = handle.applied as Server.Handle<Kv.State>["applied"]
      if (applied === undefined || handle.transferLeadership === undefined) continue
      yield* Effect.forkScoped(
        LeaseKeeper.run({
          applied,
          leading: Effect.map(handle.status, (s) => s.leader?.active === true),
          submit,
          now,
          // how often it looks at its leader's status: a new leader starts keeping leases within this
          pollMs: config.timeouts.heartbeatMs
        })
      )
    }
  })

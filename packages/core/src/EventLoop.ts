/**
 * What the roles' loops know of the event loop they run on.
 *
 * @since 0.4.0
 */
import { Context, Effect } from "effect"

/**
 * Lets the event loop read what waits in the process's sockets, once: run by a role's
 * loop between a tick that came due and the tick itself, so that the tick sees every
 * message that arrived before it. A timer runs before the sockets are polled: a process
 * busy for a while (decoding and installing a copied state of 8 MB) woke to its tick with
 * the watched leader's heartbeats unread, took that leader for silent and deposed it.
 *
 * Nothing by default (the simulator and the tests that step time have no sockets); a
 * process on Node's event loop provides a turn of it (`@synod/node` HandoffScheduler).
 */
export const Poll = Context.Reference<Effect.Effect<void>>("@synod/core/EventLoop/Poll", {
  defaultValue: () => Effect.void
})

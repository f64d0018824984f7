/**
 * A monotonic clock in milliseconds, for what must never jump with the wall clock: the
 * leases and failure-detection timeouts of the roles. Liveness only, except read leases
 * (docs/protocol.md#read-leases: safe while clock rates differ by less than
 * `reads.clockDrift`) — otherwise safety never reads
 * a clock. The default is the process's `performance.now()`; the simulator and tests that
 * step time provide their own.
 *
 * @since 0.2.0
 */
import { Context } from "effect"

export const Monotonic = Context.Reference<() => number>("@synod/core/Monotonic", {
  defaultValue: () => () => performance.now()
})

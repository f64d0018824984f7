/**
 * The roles' metrics, as effect `Metric`s (exported by the process host in Prometheus
 * format). Roles update them once per handled batch or per event, never per message in
 * a hot loop. Every metric carries the role's id as the `id` attribute.
 *
 * @since 0.1.0
 */
import { Effect, Metric, type Scope } from "effect"
import { constVoid } from "effect/Function"

export const commandsCommitted = Metric.counter("synod_commands_committed_total", {
  description: "Client commands a replica performed",
  incremental: true
})
export const slotsPerformed = Metric.counter("synod_slots_performed_total", {
  description: "Slots a replica performed (batches and no-ops)",
  incremental: true
})
export const slotLag = Metric.gauge("synod_slot_lag", {
  description: "Slots known decided that a replica has not performed yet"
})
export const divergences = Metric.counter("synod_replica_divergences_total", {
  description:
    "Times a replica found its state digest contradicted by its peers' (docs/protocol.md#divergence-detection)",
  incremental: true
})
export const diverged = Metric.gauge("synod_replica_diverged", {
  description: "1 while a replica's state disagrees with its peers' and it answers no client, else 0"
})
export const ballotRound = Metric.gauge("synod_leader_ballot_round", {
  description: "Round of the highest ballot a leader has used"
})
export const leaderActive = Metric.gauge("synod_leader_active", {
  description: "1 while a leader is adopted by a majority, else 0"
})
export const preemptions = Metric.counter("synod_leader_preemptions_total", {
  description: "Times a leader was preempted by a higher ballot",
  incremental: true
})
export const promisedRound = Metric.gauge("synod_acceptor_promised_round", {
  description: "Round of the ballot an acceptor has promised"
})
export const retransmissions = Metric.counter("synod_retransmissions_total", {
  description: "Messages sent again because no answer came (by role)",
  incremental: true
})

/** `metric` for the role with this id. */
export const of = <A extends Metric.Metric<any, any>>(metric: A, id: string, extra: Record<string, string> = {}): A =>
  Metric.withAttributes(metric, { id, ...extra }) as A

/**
 * Makes each metric appear at once, at 0 (a counter or gauge that was never updated is
 * not exported at all, and a dashboard cannot tell "none yet" from "not running").
 */
export const start = (metrics: ReadonlyArray<Metric.Metric<number, any>>): Effect.Effect<void> =>
  Effect.forEach(metrics, (m) => Metric.update(m, 0), { discard: true })

/**
 * A series read from what the role keeps, when metrics are exported (Prometheus, the
 * dashboard), instead of updated after every batch: an update is not free (effect looks
 * its series up by a key it builds from the metric's attributes, each time), and with one
 * client the roles' per-batch updates were a few per cent of a server's CPU. Registered
 * for the role's lifetime: removed when its scope closes, so a restarted role's series
 * starts again from its own count (a counter reset, as a restarted process's).
 */
const readFrom = <S>(metric: Metric.Metric<number, S>, get: () => S): Effect.Effect<void, never, Scope.Scope> =>
  Effect.asVoid(
    Effect.acquireRelease(
      Effect.map(Effect.context<never>(), (context) =>
        Metric.registerUnsafe(metric, context, { get, update: constVoid, modify: constVoid })
      ),
      (registration) => Effect.sync(registration.remove)
    )
  )

/** A counter that reads `count()`, the role's own running total. */
export const counterFrom = (
  counter: Metric.Metric<number, Metric.CounterState<number>>,
  count: () => number
): Effect.Effect<void, never, Scope.Scope> => readFrom(counter, () => ({ count: count(), incremental: true }))

/** A gauge that reads `value()`. */
export const gaugeFrom = (
  gauge: Metric.Metric<number, Metric.GaugeState<number>>,
  value: () => number
): Effect.Effect<void, never, Scope.Scope> => readFrom(gauge, () => ({ value: value() }))

/**
 * Storage contracts: what each role must be able to make durable, and in-memory
 * implementations for tests and the embedded cluster.
 *
 * - An acceptor appends records (a promise, accepted pvalues, a GC watermark); `append`
 *   completes only when the record is durable, and only then may the acceptor reply (B2).
 *   A watermark drops every pvalue below it, and is kept: a store that forgot slots always
 *   knows which (B11).
 * - A leader stores the highest round it has used before it sends P1a with it (B1).
 * - A replica saves its state, slotOut and client table together, atomically (B17).
 *
 * `Storage` hands out one store per role id, so one process can host several roles. The
 * in-memory "disk" (`MemoryDisk`) is a plain object that outlives the fibers and layers
 * using it: a simulated crash interrupts the roles and rebuilds them on the same disk.
 * Writes in flight when a crash interrupts them are lost, like unsynced writes.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Option, Schema } from "effect"
import * as Configuration from "./Configuration.ts"
import * as Ballot from "./Ballot.ts"
import { PValue, Slot } from "./Command.ts"

export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  reason: Schema.String,
  cause: Schema.optionalKey(Schema.Defect())
}) {}

/** One durable acceptor update. */
export const AcceptorRecord = Schema.Struct({
  promised: Ballot.Ballot,
  accepted: Schema.Array(PValue),
  /** Forget every slot below this one (the GC watermark only grows). */
  watermark: Schema.optionalKey(Slot)
})
export type AcceptorRecord = typeof AcceptorRecord.Type

/**
 * What an acceptor recovers: its promise, its GC watermark and, per slot from the
 * watermark on, the highest-ballot pvalue it accepted.
 */
export interface AcceptorState {
  readonly promised: Ballot.Ballot
  readonly watermark: number
  readonly accepted: ReadonlyMap<number, PValue>
}

/** An acceptor state a store updates in place. */
export interface MutableAcceptorState {
  promised: Ballot.Ballot
  watermark: number
  readonly accepted: Map<number, PValue>
}

/**
 * Applies `record` to a mutable acceptor state: the highest promise, the highest
 * watermark, and per slot at or above it the pvalue with the highest ballot (a later
 * record with an equal ballot wins). Every store folds its records with this.
 */
export const applyRecord = (state: MutableAcceptorState, record: AcceptorRecord): void => {
  state.promised = Ballot.max(state.promised, record.promised)
  if (record.watermark !== undefined && record.watermark > state.watermark) {
    state.watermark = record.watermark
    for (const slot of state.accepted.keys()) if (slot < state.watermark) state.accepted.delete(slot)
  }
  for (const pv of record.accepted) {
    if (pv.slot < state.watermark) continue
    const old = state.accepted.get(pv.slot)
    if (old === undefined || !Ballot.lessThan(pv.ballot, old.ballot)) state.accepted.set(pv.slot, pv)
  }
}

export interface AcceptorStore {
  readonly load: Effect.Effect<AcceptorState, StorageError>
  /** Completes when `record` is durable. Concurrent appends may share one sync. */
  append(record: AcceptorRecord): Effect.Effect<void, StorageError>
}

export interface LeaderStore {
  readonly loadRound: Effect.Effect<number, StorageError>
  /** Completes when `round` is durable. */
  saveRound(round: number): Effect.Effect<void, StorageError>
}

/** A replica's client table entry: results it may still have to repeat to a retrying client. */
export const ClientEntry = Schema.Struct({
  client: Schema.String,
  acked: Schema.Int,
  results: Schema.Array(
    Schema.Struct({ seq: Schema.Int, slot: Schema.Int, result: Schema.Json, error: Schema.optionalKey(Schema.String) })
  )
})
export type ClientEntry = typeof ClientEntry.Type

export const ReplicaSnapshot = Schema.Struct({
  /** Every slot below this one is reflected in `state`. */
  slotOut: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
  /** The state machine's state, encoded by its snapshot schema. */
  state: Schema.Json,
  clients: Schema.Array(ClientEntry),
  /**
   * JSON bytes of the commands performed since the last digest slot (docs/protocol.md#divergence-detection):
   * every replica counts the same from the same decisions, so all find the same digest
   * slots, also after a restart or an install. Absent in older snapshots: 0.
   */
  digestBytes: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  /**
   * The bytes of commands after which the next digest slot comes, set at the last digest
   * slot from the state's size (`ClusterConfig.snapshotRatio`), so every replica finds the
   * same slots after a restart or an install too. Absent while it is `snapshotBytes`, and
   * in older snapshots.
   */
  digestLimit: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  /**
   * The configuration history after the slots below `slotOut` (docs/reconfiguration.md).
   * Absent while it is the initial one (the cluster config's), and in older snapshots.
   */
  history: Schema.optionalKey(Configuration.History)
})
export type ReplicaSnapshot = typeof ReplicaSnapshot.Type

/**
 * `ReplicaSnapshot` for a value `JSON.parse` made (a copy's text, joined): its `state` is
 * JSON by construction, so it is not walked again to check it (`Schema.Json` visits every
 * value: about a fifth of installing a copy of 100,000 keys, `pnpm bench transfer`).
 */
export const ParsedReplicaSnapshot = Schema.Struct({
  ...ReplicaSnapshot.fields,
  state: Schema.declare((u): u is Schema.Json => u !== undefined, { title: "JSON" })
})

export interface ReplicaStore {
  readonly load: Effect.Effect<Option.Option<ReplicaSnapshot>, StorageError>
  /** Replaces the snapshot atomically; completes when it is durable. */
  save(snapshot: ReplicaSnapshot): Effect.Effect<void, StorageError>
}

export class Storage extends Context.Service<
  Storage,
  {
    acceptor(id: string): Effect.Effect<AcceptorStore, StorageError>
    leader(id: string): Effect.Effect<LeaderStore, StorageError>
    replica(id: string): Effect.Effect<ReplicaStore, StorageError>
  }
>()("@synod/core/Storage") {}

/** The in-memory "disk": survives crashes of the roles that use it, not of the process. */
export class MemoryDisk {
  readonly acceptors = new Map<string, MutableAcceptorState>()
  readonly leaders = new Map<string, number>()
  readonly replicas = new Map<string, ReplicaSnapshot>()

  /** Forgets everything a node stored (a node that lost its disk). */
  wipe(id: string): void {
    this.acceptors.delete(id)
    this.leaders.delete(id)
    this.replicas.delete(id)
  }

  /** Forgets a replica's snapshot (a replica that lost its disk; it recovers by state transfer). */
  wipeReplica(id: string): void {
    this.replicas.delete(id)
  }
}

export interface MemoryOptions {
  /**
   * Simulated time a write takes to become durable, in ms (0 = immediate). A write whose
   * fiber is interrupted before that time is lost, which is how the simulation models
   * "crash before fsync".
   */
  readonly syncDelay?: number | (() => number)
}

export const makeMemory = (disk: MemoryDisk, options: MemoryOptions = {}): Storage["Service"] => {
  const delay = options.syncDelay ?? 0
  const durably = (write: () => void): Effect.Effect<void> =>
    Effect.suspend(() => {
      const ms = typeof delay === "number" ? delay : delay()
      return ms > 0 ? Effect.andThen(Effect.sleep(ms), Effect.sync(write)) : Effect.sync(write)
    })
  return Storage.of({
    acceptor: (id) =>
      Effect.sync(() => ({
        load: Effect.sync(() => {
          const d = disk.acceptors.get(id)
          return {
            promised: d?.promised ?? Ballot.bottom,
            watermark: d?.watermark ?? 1,
            accepted: new Map(d?.accepted ?? [])
          }
        }),
        append: (record) =>
          durably(() => {
            let d = disk.acceptors.get(id)
            if (d === undefined)
              disk.acceptors.set(id, (d = { promised: Ballot.bottom, watermark: 1, accepted: new Map() }))
            applyRecord(d, record)
          })
      })),
    leader: (id) =>
      Effect.sync(() => ({
        loadRound: Effect.sync(() => disk.leaders.get(id) ?? 0),
        saveRound: (round) =>
          durably(() => {
            disk.leaders.set(id, Math.max(round, disk.leaders.get(id) ?? 0))
          })
      })),
    replica: (id) =>
      Effect.sync(() => ({
        load: Effect.sync(() => Option.fromUndefinedOr(disk.replicas.get(id))),
        save: (snapshot) =>
          durably(() => {
            disk.replicas.set(id, snapshot)
          })
      }))
  })
}

/** In-memory storage on `disk` (a fresh disk by default). */
export const layerMemory = (disk: MemoryDisk = new MemoryDisk(), options: MemoryOptions = {}): Layer.Layer<Storage> =>
  Layer.sync(Storage, () => makeMemory(disk, options))

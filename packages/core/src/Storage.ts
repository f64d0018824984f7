/**
 * Storage contracts: what each role must be able to make durable, and in-memory
 * implementations for tests and the embedded cluster.
 *
 * - An acceptor appends records (a promise and/or accepted pvalues); `append` completes
 *   only when the record is durable, and only then may the acceptor reply (B2).
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
import * as Ballot from "./Ballot.ts"
import { PValue } from "./Command.ts"

export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  reason: Schema.String,
  cause: Schema.optionalKey(Schema.Defect())
}) {}

/** One durable acceptor update. */
export const AcceptorRecord = Schema.Struct({
  promised: Ballot.Ballot,
  accepted: Schema.Array(PValue)
})
export type AcceptorRecord = typeof AcceptorRecord.Type

/** What an acceptor recovers: its promise and, per slot, the highest-ballot pvalue it accepted. */
export interface AcceptorState {
  readonly promised: Ballot.Ballot
  readonly accepted: ReadonlyMap<number, PValue>
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
  clients: Schema.Array(ClientEntry)
})
export type ReplicaSnapshot = typeof ReplicaSnapshot.Type

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
  readonly acceptors = new Map<string, { promised: Ballot.Ballot; accepted: Map<number, PValue> }>()
  readonly leaders = new Map<string, number>()
  readonly replicas = new Map<string, ReplicaSnapshot>()

  /** Forgets everything a node stored (a node that lost its disk). */
  wipe(id: string): void {
    this.acceptors.delete(id)
    this.leaders.delete(id)
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
          return { promised: d?.promised ?? Ballot.bottom, accepted: new Map(d?.accepted ?? []) }
        }),
        append: (record) =>
          durably(() => {
            let d = disk.acceptors.get(id)
            if (d === undefined) disk.acceptors.set(id, (d = { promised: Ballot.bottom, accepted: new Map() }))
            d.promised = Ballot.max(d.promised, record.promised)
            for (const pv of record.accepted) {
              const old = d.accepted.get(pv.slot)
              if (old === undefined || !Ballot.lessThan(pv.ballot, old.ballot)) d.accepted.set(pv.slot, pv)
            }
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

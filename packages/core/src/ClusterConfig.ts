/**
 * Who is in the cluster and how it is tuned. Decoded with Schema from JSON or plain
 * objects; a bad config fails with a `ConfigError` whose message names the field.
 *
 * All times are milliseconds. The defaults suit a LAN or a single machine.
 *
 * @since 0.1.0
 */
import { Effect, Result, Schema, SchemaIssue } from "effect"
import { Id } from "./Address.ts"

const Ids = (what: string) =>
  Schema.Array(Id).check(
    Schema.isMinLength(1, { message: `at least one ${what} is required` }),
    Schema.makeFilter((ids: ReadonlyArray<string>) => {
      const seen = new Set<string>()
      for (const id of ids) {
        if (seen.has(id)) return `duplicate ${what} id "${id}"`
        seen.add(id)
      }
      return true
    })
  )

const Positive = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const NonNegative = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
/** Most milliseconds any timeout may be: an hour (a larger one is a typo, or a cluster that never recovers). */
export const maxTimeoutMs = 60 * 60 * 1000
const Millis = (name: string) =>
  Schema.Int.check(
    Schema.isBetween({ minimum: 1, maximum: maxTimeoutMs }, { message: `${name} is between 1 and ${maxTimeoutMs} ms` })
  )
/**
 * The widest window: a membership change takes effect `window` slots after its own, so a
 * window of 10^9 (accepted before) made every change wait for ever.
 */
export const maxWindow = 4096
const withDefault = <S extends Schema.Codec<number, number>>(schema: S, value: number) =>
  schema.pipe(Schema.withDecodingDefaultKey(Effect.succeed(value)))

export const Batching = Schema.Struct({
  /** Most client commands decided in one slot. */
  maxSize: withDefault(Positive, 256),
  /** How long a replica may wait to fill a batch; 0 sends as soon as the window allows. */
  lingerMs: withDefault(NonNegative, 0),
  /**
   * A replica proposes whatever is pending in up to this many slots at once; while that
   * many of its proposals are undecided, it proposes only full batches (`maxSize`
   * commands or a message's worth of bytes) and waits for a decision to send the rest.
   * (With the whole window open to partial batches, 256 clients made every 16 slots one
   * of 240 commands and fifteen of one each: each slot costs a commander, nine messages
   * and three log appends, and commands wait for the slots before theirs anyway.)
   */
  eagerSlots: withDefault(Positive, 2)
})

export const Timeouts = Schema.Struct({
  /** Resend interval for P1a, P2a, proposals and client requests. */
  retransmitMs: withDefault(Millis("timeouts.retransmitMs"), 100),
  /** Interval between heartbeats of a leader. */
  heartbeatMs: withDefault(Millis("timeouts.heartbeatMs"), 50),
  /** Initial wait before a passive leader suspects the active one (adapts at run time). */
  leaderTimeoutMs: withDefault(Millis("timeouts.leaderTimeoutMs"), 300),
  /** Bound for the adaptive leader timeout. */
  maxLeaderTimeoutMs: withDefault(Millis("timeouts.maxLeaderTimeoutMs"), 5000),
  /** How long a client waits for a command before reporting an unknown outcome. */
  clientTimeoutMs: withDefault(Millis("timeouts.clientTimeoutMs"), 10000)
})

export const Reads = Schema.Struct({
  /**
   * Serve linearizable reads under a leader lease (docs/protocol.md#read-leases): after a
   * confirmation round, the leader answers read-index questions at once, without a round
   * trip to the acceptors, until the lease runs out. Safe while no two clocks' rates
   * differ by more than `clockDrift` (monotonic clocks: a process paused by SIGSTOP or a
   * long GC is fine, a virtual machine whose monotonic clock stops while suspended is not).
   * `false`: every read pays a confirmation round.
   */
  lease: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(true))),
  /** The bound on how far any process's clock rate strays from true time, each way (0.01: 1%). */
  clockDrift: Schema.Number.check(
    Schema.isGreaterThanOrEqualTo(0, { message: "reads.clockDrift must be at least 0" }),
    Schema.isLessThan(0.5, { message: "reads.clockDrift must be below 0.5" })
  ).pipe(Schema.withDecodingDefaultKey(Effect.succeed(0.01)))
})

export const ClusterConfig = Schema.Struct({
  acceptors: Ids("acceptor"),
  leaders: Ids("leader"),
  replicas: Ids("replica"),
  /** Learners follow the decisions without voting or applying them (docs/adding-a-role.md). */
  learners: Schema.Array(Id).pipe(Schema.withDecodingDefaultKey(Effect.succeed([]))),
  /** Replicas propose at most `window` slots beyond the first undecided one. */
  window: Schema.Int.check(
    Schema.isGreaterThanOrEqualTo(1, { message: "window must be at least 1" }),
    Schema.isLessThanOrEqualTo(maxWindow, { message: `window must be at most ${maxWindow}` })
  ).pipe(Schema.withDecodingDefaultKey(Effect.succeed(16))),
  /**
   * A replica saves a snapshot after performing this many slots... (A snapshot costs in
   * proportion to the state, all replicas take it at the same slot, and under load a slot
   * holds tens of commands: at 1,000 a 100,000-key store was written out every few seconds,
   * and 10,000 gave the yardstick 15% more writes. `snapshotBytes` still bounds what the
   * acceptors hold meanwhile.)
   */
  snapshotEvery: withDefault(Positive, 10_000),
  /**
   * ...or commands of this many bytes (of JSON), whichever comes first; more as the state
   * grows (`snapshotRatio`).
   */
  snapshotBytes: withDefault(Positive, 8 * 1024 * 1024),
  /**
   * With a state machine that tells its state's size (`StateMachine.size`), the commands
   * between two snapshots may reach this many times the state's size (set at each digest
   * slot), between `snapshotBytes` and `snapshotMaxBytes`: a snapshot then costs a bounded
   * share of the work of the commands before it, however large the state (with a fixed
   * `snapshotBytes`, a store of 4 KB values was written out whole every 2,000 writes).
   * 0: always `snapshotBytes`.
   */
  snapshotRatio: Schema.Number.check(
    Schema.isGreaterThanOrEqualTo(0, { message: "snapshotRatio must be at least 0" }),
    Schema.isLessThanOrEqualTo(1000, { message: "snapshotRatio must be at most 1000" })
  ).pipe(Schema.withDecodingDefaultKey(Effect.succeed(2))),
  /**
   * The most commands (bytes of JSON) between two snapshots, however large the state:
   * acceptors hold the decisions since the last snapshot in memory and in their logs.
   */
  snapshotMaxBytes: withDefault(Positive, 64 * 1024 * 1024),
  /** State transfer sends a snapshot in chunks of this many characters of JSON. */
  transferChunkBytes: withDefault(Positive, 64 * 1024),
  batch: Batching.pipe(Schema.withDecodingDefaultKey(Effect.succeed({}))),
  timeouts: Timeouts.pipe(Schema.withDecodingDefaultKey(Effect.succeed({}))),
  reads: Reads.pipe(Schema.withDecodingDefaultKey(Effect.succeed({})))
}).check(
  Schema.makeFilter((c: { readonly snapshotBytes: number; readonly snapshotMaxBytes: number }) =>
    c.snapshotMaxBytes >= c.snapshotBytes
      ? true
      : `snapshotMaxBytes (${c.snapshotMaxBytes}) must be at least snapshotBytes (${c.snapshotBytes})`
  )
)
export type ClusterConfig = typeof ClusterConfig.Type
export type ClusterConfigInput = typeof ClusterConfig.Encoded

export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  message: Schema.String
}) {}

const decodeConfig = Schema.decodeUnknownResult(ClusterConfig)
const formatter = SchemaIssue.makeFormatterDefault()

export const decode = (input: unknown): Result.Result<ClusterConfig, ConfigError> =>
  Result.mapError(
    decodeConfig(input),
    (e) => new ConfigError({ message: `invalid cluster config: ${formatter(e.issue)}` })
  )

export const decodeEffect = (input: unknown): Effect.Effect<ClusterConfig, ConfigError> =>
  Effect.fromResult(decode(input))

/** For code and tests that build configs by hand: throws a ConfigError on bad input. */
export const make = (input: ClusterConfigInput): ClusterConfig => {
  const r = decode(input)
  if (Result.isFailure(r)) throw r.failure
  return r.success
}

/** Every node id that hosts an acceptor, a leader or a replica of `config`, each once. */
export const serverIds = (config: Pick<ClusterConfig, "acceptors" | "leaders" | "replicas">): Array<string> => [
  ...new Set([...config.acceptors, ...config.leaders, ...config.replicas])
]

/** `n` servers `s1..sn`, each hosting an acceptor, a leader and a replica. */
export const servers = (n: number, overrides: Partial<ClusterConfigInput> = {}): ClusterConfig => {
  const ids = Array.from({ length: n }, (_, i) => `s${i + 1}`)
  return make({ acceptors: ids, leaders: ids, replicas: ids, ...overrides })
}

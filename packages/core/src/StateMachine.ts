/**
 * The contract a user's replicated state machine fulfils: schemas for its commands,
 * results and snapshots, an initial state, and a pure, deterministic `apply`. Replicas
 * decode each command from the wire with `command`, apply it in slot order, and encode
 * the result with `result` for the client; `snapshot` turns the state into JSON and back.
 *
 * `apply` must not read clocks, randomness or anything outside its arguments: every
 * replica applies the same commands in the same order and must reach the same state.
 * It returns a new state; it may share structure with the old one but must not mutate
 * it in a way the old value's holder could see.
 *
 * @since 0.1.0
 */
import { Result, Schema, SchemaIssue } from "effect"

export interface StateMachine<S, C, R> {
  readonly name: string
  readonly command: Schema.Codec<C, unknown>
  readonly result: Schema.Codec<R, unknown>
  readonly snapshot: Schema.Codec<S, unknown>
  readonly initial: S
  apply(state: S, command: C): readonly [S, R]
  /**
   * Optional: the read-only queries among the commands. Answers `command` from `state`
   * when it is one, else `undefined` (it must go through the log as a command). Replicas
   * serve reads (`Client.read`, docs/protocol.md#reads) with it, off the log; it must
   * agree with `apply`: when it answers `r`, `apply(state, command)` answers `r` and
   * leaves the state as it was. Pure, like `apply`.
   */
  readonly query?: (state: S, command: C) => R | undefined
  /**
   * Optional: what `snapshot` encodes the state to, computed directly. A replica encodes
   * its whole state at every snapshot, in one go on its event loop; a large state walked
   * through the schema stalls every role of the process for that long. It must give
   * exactly the schema's encoding (test it so).
   */
  readonly encodeSnapshot?: (state: S) => Schema.Json
  /**
   * Optional: `encodeSnapshot` in slices, as a generator that yields between pieces of work
   * (a few thousand entries each) and returns the encoding. Replicas encode their
   * snapshots in the background, one slice per turn of the event loop, so a large state
   * never stalls the process; without it the whole encoding is one slice. Same output as
   * `encodeSnapshot`.
   */
  readonly encodeSnapshotGradually?: (state: S) => Generator<void, Schema.Json, void>
  /**
   * Optional: about how many bytes `snapshot` encodes the state to, in constant time (keep
   * a running count in the state). Replicas space their snapshots and digests by it
   * (`ClusterConfig.snapshotRatio`), so it must be deterministic: the same state gives the
   * same number on every replica. It need not be exact.
   */
  readonly size?: (state: S) => number
  /**
   * Optional: a batch of commands applied to a draft of the state. A replica calls `begin`
   * before a slot's commands, `apply` on each state the last one returned, and `end` after
   * them, and keeps no state in between: so `apply` may change the state `begin` returned
   * (and any state `apply` returned since) in place. `begin` must leave its argument as it
   * was, and no `apply` on the draft may change the state `end` returned. The states
   * `apply` answers, and its results, must be those it answers without `edit`.
   * A persistent state pays a copy per write (a path of a tree); a draft pays it once per
   * batch.
   */
  readonly edit?: {
    readonly begin: (state: S) => S
    readonly end: (state: S) => S
  }
  /**
   * Optional: hand-written paths for the commonest commands and results, tried before
   * the schemas. Each answers `undefined` when it is not sure, and the schema decides;
   * when it answers, it must be exactly what the schema's codec gives (test it so). A
   * replica decodes every command it performs and encodes every result, and a client
   * encodes every command and decodes every answer: through the schemas that was about a
   * tenth of an in-process cluster's CPU.
   */
  readonly fast?: {
    readonly encodeCommand?: (command: C) => Schema.Json | undefined
    readonly decodeCommand?: (json: unknown) => C | undefined
    readonly encodeResult?: (result: R) => Schema.Json | undefined
    readonly decodeResult?: (json: unknown) => R | undefined
    /**
     * A snapshot's state, decoded without the schema's parser when it is of the shape the
     * machine writes (a replica installing a peer's copy, a server loading its own); else
     * undefined, and `snapshot` decodes it (and names what is wrong). Must never accept
     * what `snapshot` refuses, and must decode the same state.
     */
    readonly decodeSnapshot?: (json: unknown) => S | undefined
  }
}

/** Any state machine, for code that only moves its values around. */
export type Any = StateMachine<any, any, any>

export const make = <S, C, R>(machine: StateMachine<S, C, R>): StateMachine<S, C, R> => machine

/** JSON codecs derived once per machine, used by the replica and the client. */
export interface Codecs<S, C, R> {
  encodeCommand(command: C): Schema.Json
  decodeCommand(json: unknown): Result.Result<C, string>
  encodeResult(result: R): Schema.Json
  decodeResult(json: unknown): Result.Result<R, string>
  encodeState(state: S): Schema.Json
  /** `encodeState` in slices (the machine's `encodeSnapshotGradually`, or one slice). */
  encodeStateGradually(state: S): Generator<void, Schema.Json, void>
  decodeState(json: unknown): Result.Result<S, string>
}

const formatter = SchemaIssue.makeFormatterDefault()

const codec = <A>(schema: Schema.Codec<A, unknown>) => {
  const json = Schema.toCodecJson(schema)
  const enc = Schema.encodeSync(json)
  const dec = Schema.decodeUnknownResult(json)
  return {
    encode: (a: A) => enc(a) as Schema.Json,
    decode: (u: unknown): Result.Result<A, string> => Result.mapError(dec(u), (e) => formatter(e.issue))
  }
}

/** `slow`, after `fast` when it answers. */
const first =
  <A, B>(fast: ((a: A) => B | undefined) | undefined, slow: (a: A) => B) =>
  (a: A): B => {
    const b = fast?.(a)
    return b === undefined ? slow(a) : b
  }

const firstDecode =
  <A>(fast: ((u: unknown) => A | undefined) | undefined, slow: (u: unknown) => Result.Result<A, string>) =>
  (u: unknown): Result.Result<A, string> => {
    const a = fast?.(u)
    return a === undefined ? slow(u) : Result.succeed(a)
  }

export const codecs = <S, C, R>(machine: StateMachine<S, C, R>): Codecs<S, C, R> => {
  const command = codec(machine.command)
  const result = codec(machine.result)
  const state = codec(machine.snapshot)
  const fast = machine.fast
  return {
    encodeCommand: first(fast?.encodeCommand, command.encode),
    decodeCommand: firstDecode(fast?.decodeCommand, command.decode),
    encodeResult: first(fast?.encodeResult, result.encode),
    decodeResult: firstDecode(fast?.decodeResult, result.decode),
    encodeState: machine.encodeSnapshot ?? state.encode,
    encodeStateGradually:
      machine.encodeSnapshotGradually ??
      // biome-ignore lint/correctness/useYield: one slice, no pause
      function* (s: S) {
        return (machine.encodeSnapshot ?? state.encode)(s)
      },
    decodeState: firstDecode(fast?.decodeSnapshot, state.decode)
  }
}

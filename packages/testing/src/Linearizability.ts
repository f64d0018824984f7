/**
 * A linearizability checker for histories recorded by the simulator: given what each
 * client asked, when it asked, and what it was told (or that it was never told), decide
 * whether some sequential execution of a model explains every answer while respecting
 * real-time order.
 *
 * The search is Wing & Gong's, with the memoization of Lowe ("Testing for
 * linearizability", 2017) as used by Porcupine: a configuration is the set of operations
 * already linearized plus the model state, and a configuration seen before is not
 * explored twice. On top of that, what keeps long histories tractable:
 * - `Model.partition` splits a history into independent parts (P-compositionality: a
 *   history is linearizable iff each per-object sub-history is), checked one by one;
 * - operations the model declares read-only (`Model.readOnly`) are linearized as soon as
 *   they agree with the state, with no branching, since any linearization can move them
 *   there; other candidates are tried earliest return first;
 * - operations whose outcome is unknown (the client timed out) need never be linearized,
 *   and are only applied when no completed operation explains the next answer. Handled
 *   naively (return time = +Infinity, as in Porcupine), any subset of them could already
 *   be applied and the search would be exponential in their number. Here the
 *   configurations they lead to are enumerated breadth-first, and the memo is a
 *   dominance check: a configuration is pruned when one with the same completed set and
 *   state and a subset of its applied unknown operations was reached before (the others
 *   can still be applied later, or never). With k unknown writes of distinct values, about
 *   k configurations survive per level instead of 2^k.
 *
 * The search uses an explicit stack (histories can hold thousands of operations per
 * key) and is deterministic. It gives up after `maxSteps` model steps per part and then
 * reports `timedOut` with `ok: true`: a violation is only reported when it is proven.
 *
 * @since 0.1.0
 */

/** One operation of a history, as observed by the client that issued it. */
export interface Operation<I, O> {
  readonly client: string
  readonly input: I
  /** Invocation time, on any monotone clock; ties are allowed. */
  readonly call: number
  /**
   * Completion time; `undefined` when the outcome is unknown (timed out): the operation
   * may or may not have taken effect, at any point after `call`.
   */
  readonly ret: number | undefined
  /** `undefined` iff `ret` is `undefined`. */
  readonly output: O | undefined
}

/**
 * A `Model.partition` for key-value models: one sub-history per `input.key`, in order of
 * each key's first operation, so results are deterministic for a given history.
 */
export const partitionByKey = <I extends { readonly key: string }, O>(
  ops: ReadonlyArray<Operation<I, O>>
): Array<Array<Operation<I, O>>> => {
  const byKey = new Map<string, Array<Operation<I, O>>>()
  for (const op of ops) {
    const part = byKey.get(op.input.key)
    if (part === undefined) byKey.set(op.input.key, [op])
    else part.push(op)
  }
  return [...byKey.values()]
}

/** The sequential specification that a history is checked against. */
export interface Model<S, I, O> {
  readonly init: S
  /**
   * Does `output` agree with applying `input` to `state`? Returns the next state. An
   * `undefined` output means the outcome is unknown: accept it and just apply `input`.
   */
  step(state: S, input: I, output: O | undefined): { readonly ok: boolean; readonly state: S }
  /** Identifies a state for memoization: equal states must give equal keys. */
  key(state: S): string
  /** Splits a history into independent sub-histories (e.g. per key), checked alone. */
  partition?(ops: ReadonlyArray<Operation<I, O>>): ReadonlyArray<ReadonlyArray<Operation<I, O>>>
  describe?(input: I, output: O | undefined): string
  /**
   * Optional: true when an operation with this input and output leaves every state it
   * is valid in unchanged (a read, a failed compare-and-set). Such operations are then
   * linearized as soon as they agree with the state instead of being branched on, which
   * is what keeps windows with many concurrent operations tractable. Never say true for
   * an operation that may change the state (`check` throws when it notices).
   */
  readOnly?(input: I, output: O | undefined): boolean
  /**
   * Optional: where an operation that changes the state took effect among the others, when
   * its answer says so (a version number): such candidates are tried in this order, in the
   * places return order gives them, the others by return. Only the order of the search
   * changes, never its verdict; a good guess spares it dead ends noticed much later.
   */
  order?(input: I, output: O | undefined): number | undefined
}

export interface CheckResult {
  /** `false` only when some part is proven not linearizable. */
  readonly ok: boolean
  /** Some part exhausted its step budget, so `ok: true` is not a proof for it. */
  readonly timedOut: boolean
  /** Model steps taken, over all parts. */
  readonly explored: number
  /** The operations (described) of the first part found not to be linearizable. */
  readonly failingPartition?: ReadonlyArray<string>
}

export interface CheckOptions {
  /** Model steps allowed per part before giving up; 5 000 000 by default. */
  readonly maxSteps?: number
}

const DEFAULT_MAX_STEPS = 5_000_000

/**
 * Checks `history` against `model`. Parts are checked in the order `partition` returns
 * them and the first proven violation stops the check; a part that runs out of steps
 * does not stop it, so a violation in a later part is still found.
 */
export const check = <S, I, O>(
  model: Model<S, I, O>,
  history: ReadonlyArray<Operation<I, O>>,
  options?: CheckOptions
): CheckResult => {
  const maxSteps = options?.maxSteps ?? DEFAULT_MAX_STEPS
  const parts = model.partition !== undefined ? model.partition(history) : [history]
  let explored = 0
  let timedOut = false
  for (const part of parts) {
    const result = checkPart(model, part, maxSteps)
    explored += result.explored
    if (result.outcome === "timeout") {
      timedOut = true
    } else if (result.outcome === "violation") {
      return { ok: false, timedOut, explored, failingPartition: part.map((op) => describeOp(model, op)) }
    }
  }
  return { ok: true, timedOut, explored }
}

const describeOp = <S, I, O>(model: Model<S, I, O>, op: Operation<I, O>): string => {
  const what =
    model.describe !== undefined
      ? model.describe(op.input, op.output)
      : `${JSON.stringify(op.input)} -> ${op.output === undefined ? "?" : JSON.stringify(op.output)}`
  return `${op.client}: ${what} [${op.call}, ${op.ret ?? "?"}]`
}

interface PartResult {
  readonly outcome: "ok" | "violation" | "timeout"
  readonly explored: number
}

/** A model state together with the unknown operations applied to reach it. */
interface Config<S> {
  readonly state: S
  /** Never mutated once built, so configurations and the memo can share it. */
  readonly unknown: Uint32Array
}

/**
 * One level of the search: a fixed set of linearized completed operations, and the
 * configurations reachable from the first one by applying unknown operations.
 */
interface Frame<S> {
  /** Grows breadth-first, so smaller unknown sets always come before their supersets. */
  readonly configs: Array<Config<S>>
  /** The configuration whose completed candidates are being tried. */
  index: number
  /** Completed candidates that cannot change the state (see `Model.readOnly`). */
  readonly reads: Int32Array
  /** The other completed candidates. */
  readonly writes: Int32Array
  /** The next of `writes` to try from `configs[index]`; -1 before `reads` were tried. */
  next: number
  /** Whether `configs[index]` still has to be extended with unknown operations. */
  expand: boolean
  /** Unknown operations called later than this cannot be linearized at this level. */
  readonly limit: number
  /** Completed operations numbered this or higher are not linearized at this level. */
  readonly bound: number
  /** The completed operation linearized to reach the frame above this one, or -1. */
  chosen: number
}

const checkPart = <S, I, O>(
  model: Model<S, I, O>,
  ops: ReadonlyArray<Operation<I, O>>,
  maxSteps: number
): PartResult => {
  const done: Array<Operation<I, O>> = []
  const unknownOps: Array<Operation<I, O>> = []
  for (const op of ops) {
    if (!Number.isFinite(op.call)) throw new RangeError(`operation call time must be finite: ${op.call}`)
    if (op.ret === undefined) {
      // Taking effect or not is the same for an unanswered read: leave it out.
      if (model.readOnly?.(op.input, op.output) !== true) unknownOps.push(op)
    } else if (Number.isNaN(op.ret) || op.ret < op.call)
      throw new RangeError(`operation returns (${op.ret}) before it is called (${op.call})`)
    else done.push(op)
  }
  // Numbered in call order, so that the operations all linearized configurations share
  // form a prefix and the memo only needs to store the window above it.
  done.sort((a, b) => a.call - b.call)
  const nd = done.length
  // Unknown operations need never take effect, so with no completed ones there is
  // nothing to explain.
  if (nd === 0) return { outcome: "ok", explored: 0 }

  // Completed operations: a doubly linked list of call and return events ordered by
  // time, calls before returns at equal times (A.ret == B.call means concurrent). A call
  // is a candidate iff it precedes the first return still in the list: every operation
  // that returned before it was called has been linearized. Linearizing an operation
  // unlinks both of its events; backtracking relinks them (dancing links), which is
  // exact because relinking happens in the reverse order of unlinking.
  const events: Array<{ readonly time: number; readonly isReturn: boolean; readonly op: number }> = []
  for (let i = 0; i < nd; i++) {
    const op = done[i]!
    events.push({ time: op.call, isReturn: false, op: i }, { time: op.ret!, isReturn: true, op: i })
  }
  events.sort((a, b) => a.time - b.time || Number(a.isReturn) - Number(b.isReturn) || a.op - b.op)
  const head = 2 * nd
  const next = new Int32Array(2 * nd + 1)
  const prev = new Int32Array(2 * nd + 1)
  const nodeOp = new Int32Array(2 * nd)
  const nodeIsReturn = new Uint8Array(2 * nd)
  const nodeTime = new Float64Array(2 * nd)
  const callNode = new Int32Array(nd)
  const retNode = new Int32Array(nd)
  // For a return node, how many operations were called before it.
  const callsBefore = new Int32Array(2 * nd)
  let calls = 0
  for (let n = 0; n < 2 * nd; n++) {
    const e = events[n]!
    nodeOp[n] = e.op
    nodeIsReturn[n] = e.isReturn ? 1 : 0
    nodeTime[n] = e.time
    if (e.isReturn) retNode[e.op] = n
    else callNode[e.op] = n
    if (e.isReturn) callsBefore[n] = calls
    else calls++
    next[n] = n + 1 < 2 * nd ? n + 1 : -1
    prev[n] = n === 0 ? head : n - 1
  }
  next[head] = 0
  prev[head] = -1
  const unlink = (n: number): void => {
    next[prev[n]!] = next[n]!
    if (next[n]! !== -1) prev[next[n]!] = prev[n]!
  }
  const relink = (n: number): void => {
    next[prev[n]!] = n
    if (next[n]! !== -1) prev[next[n]!] = n
  }
  // Unknown operations have no return event and never leave the candidates once called:
  // they are indexed in call order, and bit j of a configuration's set is the j-th.
  const unknown = unknownOps.slice().sort((a, b) => a.call - b.call)
  const nu = unknown.length

  // The linearized completed set, as a bitset.
  const doneBits = new Uint32Array((nd + 31) >>> 5)
  const flipDone = (i: number): void => {
    doneBits[i >>> 5]! ^= 1 << (i & 31)
  }

  // Records the configuration (current completed set, `unknownBits`, `state`) and says
  // whether it, or one with fewer unknown operations applied, was reached before. Every
  // recorded configuration is fully explored before the search gives up, which is what
  // makes pruning on it sound. Must be called with the completed set linked out of the
  // list and `bound` above every operation in it.
  //
  // The key spells out the completed set exactly but compactly: every operation numbered
  // below the first one not linearized is in it, so only the words from there to `bound`
  // are written out. The memo holds millions of entries on hard histories, so each is
  // just that string and the minimal unknown sets (usually one, kept unwrapped).
  const memo = new Map<string, Uint32Array | Array<Uint32Array>>()
  const dominated = (state: S, unknownBits: Uint32Array, bound: number): boolean => {
    // The first event left is the call of the lowest-numbered operation not linearized.
    const low = nodeOp[next[head]!]!
    let key = `${low}`
    let zeros = ""
    for (let w = low >>> 5; w < (bound + 31) >>> 5; w++) {
      const word = doneBits[w]!
      if (word === 0) zeros += ","
      else {
        key += `${zeros},${word.toString(36)}`
        zeros = ""
      }
    }
    key += `:${model.key(state)}`
    const reached = memo.get(key)
    if (reached === undefined) {
      memo.set(key, unknownBits)
      return false
    }
    if (!Array.isArray(reached)) {
      if (subsetBits(reached, unknownBits)) return true
      memo.set(key, subsetBits(unknownBits, reached) ? unknownBits : [reached, unknownBits])
      return false
    }
    for (const u of reached) if (subsetBits(u, unknownBits)) return true
    // Keep only minimal unknown sets: a superset never prunes anything the new one would.
    const minimal = reached.filter((u) => !subsetBits(unknownBits, u))
    minimal.push(unknownBits)
    memo.set(key, minimal.length === 1 ? unknownBits : minimal)
    return false
  }

  const readOnly = new Uint8Array(nd)
  if (model.readOnly !== undefined)
    for (let i = 0; i < nd; i++) readOnly[i] = model.readOnly(done[i]!.input, done[i]!.output) ? 1 : 0
  const order = new Float64Array(nd).fill(Number.NaN)
  if (model.order !== undefined)
    for (let i = 0; i < nd; i++) order[i] = model.order(done[i]!.input, done[i]!.output) ?? Number.NaN
  /** Candidates by return; then those with an `order` permuted among their own places by it. */
  const tryOrder = (writes: Array<number>): Int32Array => {
    const sorted = Int32Array.from(writes).sort((a, b) => retNode[a]! - retNode[b]!)
    if (model.order === undefined) return sorted
    const places: Array<number> = []
    for (let k = 0; k < sorted.length; k++) if (!Number.isNaN(order[sorted[k]!]!)) places.push(k)
    const ranked = places.map((k) => sorted[k]!).sort((a, b) => order[a]! - order[b]!)
    places.forEach((k, j) => {
      sorted[k] = ranked[j]!
    })
    return sorted
  }

  // A call is a candidate iff it precedes the first return still linked. Writes are
  // tried earliest return first (or as `Model.order` says): the operation that returned
  // first most often took effect first, and guessing right keeps the search out of dead
  // ends that are only noticed, and then explored exhaustively, much later.
  const newFrame = (config: Config<S>): Frame<S> => {
    const reads: Array<number> = []
    const writes: Array<number> = []
    let n = next[head]!
    while (nodeIsReturn[n] === 0) {
      const i = nodeOp[n]!
      if (readOnly[i] === 1) reads.push(i)
      else writes.push(i)
      n = next[n]!
    }
    return {
      configs: [config],
      index: 0,
      reads: Int32Array.from(reads),
      writes: tryOrder(writes),
      next: -1,
      expand: true,
      limit: nodeTime[n]!,
      bound: callsBefore[n]!,
      chosen: -1
    }
  }
  const root: Config<S> = { state: model.init, unknown: new Uint32Array((nu + 31) >>> 5) }
  const stack: Array<Frame<S>> = [newFrame(root)]
  dominated(root.state, root.unknown, 0)
  let remaining = nd
  let explored = 0
  for (;;) {
    const frame = stack[stack.length - 1]!
    const config = frame.configs[frame.index]!
    let chosen = -1
    let after: S = config.state
    if (frame.next < 0) {
      frame.next = 0
      frame.expand = true
      // A read-only candidate that agrees with the state can be linearized right away,
      // with no alternative: any linearization that places it later can move it here
      // (nothing still to come returned before it was called, and it changes nothing).
      // Without this, every order of a window's reads and writes is a branch.
      const stateKey = frame.reads.length > 0 ? model.key(config.state) : ""
      for (const i of frame.reads) {
        if (explored >= maxSteps) return { outcome: "timeout", explored }
        explored++
        const op = done[i]!
        const result = model.step(config.state, op.input, op.output)
        if (!result.ok) continue
        if (model.key(result.state) !== stateKey) {
          throw new Error(`model.readOnly is wrong: ${describeOp(model, op)} changed the state`)
        }
        chosen = i
        after = result.state
        frame.next = frame.writes.length
        frame.expand = false
        break
      }
    }
    while (chosen === -1 && frame.next < frame.writes.length) {
      const i = frame.writes[frame.next++]!
      if (explored >= maxSteps) return { outcome: "timeout", explored }
      explored++
      const op = done[i]!
      const result = model.step(config.state, op.input, op.output)
      if (!result.ok) continue
      chosen = i
      after = result.state
    }
    if (chosen !== -1) {
      flipDone(chosen)
      unlink(callNode[chosen]!)
      unlink(retNode[chosen]!)
      remaining--
      if (remaining === 0) return { outcome: "ok", explored }
      if (dominated(after, config.unknown, frame.bound)) {
        relink(retNode[chosen]!)
        relink(callNode[chosen]!)
        remaining++
        flipDone(chosen)
        continue
      }
      frame.chosen = chosen
      stack.push(newFrame({ state: after, unknown: config.unknown }))
      continue
    }
    // No completed operation explains the next answer from this configuration: only
    // now reach for unknown operations, appending what they lead to.
    if (frame.expand) {
      for (let j = 0; j < nu; j++) {
        const op = unknown[j]!
        if (op.call > frame.limit) break
        if ((config.unknown[j >>> 5]! & (1 << (j & 31))) !== 0) continue
        if (explored >= maxSteps) return { outcome: "timeout", explored }
        explored++
        const result = model.step(config.state, op.input, op.output)
        if (!result.ok) continue
        const unknownBits = config.unknown.slice()
        unknownBits[j >>> 5]! |= 1 << (j & 31)
        if (!dominated(result.state, unknownBits, frame.bound))
          frame.configs.push({ state: result.state, unknown: unknownBits })
      }
    }
    frame.index++
    if (frame.index < frame.configs.length) {
      frame.next = -1
      continue
    }
    // Nothing left at this level: undo the choice that led here, restoring the list the
    // parent's candidates were read from.
    stack.pop()
    const parent = stack[stack.length - 1]
    if (parent === undefined) return { outcome: "violation", explored }
    const i = parent.chosen
    relink(retNode[i]!)
    relink(callNode[i]!)
    flipDone(i)
    remaining++
    parent.chosen = -1
  }
}

const subsetBits = (a: Uint32Array, b: Uint32Array): boolean => {
  for (let w = 0; w < a.length; w++) if ((a[w]! & ~b[w]!) !== 0) return false
  return true
}

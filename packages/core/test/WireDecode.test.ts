/**
 * The hand-written decoder (`Codec.decode`) against the schema decoder
 * (`Codec.decodeWithSchema`): the same answer for every valid envelope and for every
 * mutation of one, and instances that cannot be told from constructed ones.
 *
 * `CODEC_RUNS=20000 vitest run packages/core/test/WireDecode.test.ts` runs the properties
 * longer than the default.
 */
import { assert, describe, it } from "@effect/vitest"
import { Address, Ballot, Codec, Command, Message } from "@synod/core"
import { ballotArb, commandArb, messageArb, slotValueArb } from "@synod/testing/Arbitraries"
import { Equal, Hash, Result, Schema } from "effect"
import * as fc from "fast-check"
import { assertSameShape } from "./Shape.ts"

const runs = Number(process.env["CODEC_RUNS"] ?? 300)

const slotArb = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })

/** What `envelopeArb` leaves out: P1b pages (`from`, `before`, `next`), bounds at the edges, big batches. */
const moreMessagesArb: fc.Arbitrary<Message.Message> = fc.oneof(
  fc
    .record(
      {
        ballot: ballotArb,
        request: ballotArb,
        accepted: fc.array(
          fc.record({ ballot: ballotArb, slot: slotArb, value: slotValueArb }).map((p) => new Command.PValue(p)),
          { maxLength: 3 }
        ),
        watermark: slotArb,
        from: slotArb,
        before: slotArb,
        next: slotArb
      },
      { requiredKeys: ["ballot", "request", "accepted"] }
    )
    .map((m) => new Message.P1b(m)),
  fc
    .record({
      ballot: fc.constantFrom(Ballot.bottom, Ballot.make(Number.MAX_SAFE_INTEGER, "s")),
      slot: fc.constantFrom(1, Number.MAX_SAFE_INTEGER),
      value: fc.array(commandArb, { minLength: 16, maxLength: 40 }).map((commands) => new Command.Batch({ commands }))
    })
    .map((m) => new Message.P2a(m)),
  fc
    .record({
      ballot: ballotArb,
      active: fc.boolean(),
      decided: fc.constantFrom(0, Number.MAX_SAFE_INTEGER),
      slot: fc.constantFrom(0, Number.MAX_SAFE_INTEGER),
      watermark: slotArb
    })
    .map((m) => new Message.Heartbeat(m))
)
/** Every role, ids up to the longest allowed. */
const addressArb: fc.Arbitrary<Address.Address> = fc
  .tuple(
    fc.constantFrom<Address.Role>("replica", "leader", "acceptor", "learner", "client"),
    fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/), fc.constantFrom("x".repeat(64), "_", "-"))
  )
  .map(([role, id]) => Address.make(role, id))
  .chain((address) =>
    // a client id may be scope.name
    address.startsWith("client/")
      ? fc.constantFrom(address, `${address}.n-1`, `${address}.${"y".repeat(64)}`)
      : fc.constant(address)
  )
const validArb: fc.Arbitrary<Message.Envelope> = fc
  .record({
    from: addressArb,
    to: addressArb,
    message: fc.oneof({ arbitrary: messageArb, weight: 4 }, { arbitrary: moreMessagesArb, weight: 1 })
  })
  .map((e) => new Message.Envelope(e))

/** Both decoders give the same answer: both fail, or both succeed with the same envelope. */
const assertAgree = (input: string | Uint8Array): boolean => {
  const fast = Codec.decode(input)
  const schema = Codec.decodeWithSchema(input)
  if (Result.isFailure(schema)) {
    assert.isTrue(
      Result.isFailure(fast),
      `the schema rejects (${schema.failure.reason}) what the fast decoder accepts: ${String(input)}`
    )
    if (Result.isFailure(fast)) assert.isAbove(fast.failure.reason.length, 0)
    return false
  }
  assert.isTrue(
    Result.isSuccess(fast),
    `the fast decoder rejects (${Result.isFailure(fast) ? fast.failure.reason : ""}) what the schema accepts: ${String(input)}`
  )
  const a = Result.getOrThrow(fast)
  const b = schema.success
  assertSameShape(a, b)
  assert.isTrue(Equal.equals(a, b))
  assert.strictEqual(Codec.encode(a), Codec.encode(b))
  return true
}

// ---------------------------------------------------------------------------------------
// Mutations of a valid envelope's JSON
// ---------------------------------------------------------------------------------------

/** Written as a string and replaced in the text, since `JSON.stringify` cannot write them. */
const rawNumbers: Record<string, string> = {
  "\u0000inf": "1e999",
  "\u0000-inf": "-1e999",
  "\u0000one": "1.0",
  "\u0000exp": "1e0",
  "\u0000unsafe": "9007199254740993",
  "\u0000minus-zero": "-0"
}
const withRawNumbers = (text: string): string => {
  for (const [marker, raw] of Object.entries(rawNumbers)) text = text.replaceAll(JSON.stringify(marker), raw)
  return text
}

const tags = [
  "P1a",
  "P1b",
  "P2a",
  "P2b",
  "Propose",
  "Decision",
  "Chosen",
  "Request",
  "Response",
  "Heartbeat",
  "Progress",
  "StateRequest",
  "StateChunk",
  "Read",
  "ReadResponse",
  "ReadIndex",
  "ReadIndexReply",
  "Confirm",
  "Confirmed",
  "Digest",
  "Batch",
  "Noop",
  "Reconfigure",
  "History",
  "p2a",
  "",
  "constructor",
  "__proto__"
]

const oddValueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    -1,
    0,
    1,
    1.5,
    2 ** 53,
    2 ** 53 - 1,
    -(2 ** 53),
    1e21,
    1e308,
    "1",
    "",
    "a",
    null,
    true,
    false,
    [],
    {},
    [{}],
    "leader/s1",
    "learner/x",
    "client/" + "x".repeat(64),
    "client/" + "x".repeat(65),
    "replica/",
    "Replica/s1",
    "leader/s1\n",
    "leader/s.1",
    "leader/s 1",
    "leader/s1/x",
    { _tag: "Noop" },
    { _tag: "Batch", commands: [] },
    { _tag: "Batch", commands: [{ client: "c", seq: 1, acked: 0, op: null }] },
    { round: 1, leader: "a" },
    { slotOut: 1, checksum: 0 },
    { client: "c", seq: 1, acked: 0 },
    "0123456789abcdef".repeat(4),
    "0123456789ABCDEF".repeat(4),
    "0123456789abcdef".repeat(4).slice(1),
    "0123456789abcdef".repeat(4) + "\n",
    ...Object.keys(rawNumbers)
  ),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 8 }),
  fc.jsonValue({ maxDepth: 2 }),
  fc.array(fc.integer({ min: -2, max: 3 }), { maxLength: 3 }),
  fc.constantFrom(...tags).map((_tag) => ({ _tag }))
)

const keyArb = fc.constantFrom(
  "_tag",
  "from",
  "to",
  "message",
  "ballot",
  "round",
  "leader",
  "request",
  "slot",
  "value",
  "commands",
  "op",
  "watermark",
  "next",
  "error",
  "result",
  "transfer",
  "chunks",
  "checksum",
  "digest",
  "heard",
  "history",
  "members",
  "acceptors",
  "leaders",
  "replicas",
  "decidedAt",
  "extra",
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty"
)

/**
 * Values near a valid one: the other side of an integer bound, fractions, unsafe
 * integers, numbers as strings, addresses one character off, emptied containers.
 */
const near = (value: unknown): ReadonlyArray<unknown> => {
  switch (typeof value) {
    case "number":
      return [0, 1, -1, value - 1, value + 1, value + 0.5, 2 ** 53, -(2 ** 53), "\u0000minus-zero", String(value), null]
    case "string": {
      const id = value.slice(value.indexOf("/") + 1)
      return [
        "",
        `${value}/`,
        `${value}.`,
        `${value}\n`,
        value.toUpperCase(),
        `learner/${id}`,
        `client/${"x".repeat(64)}`,
        `client/${"x".repeat(65)}`,
        `client/${id}.${id}`,
        `client/${id}.`,
        `client/${id}.${id}.${id}`,
        `replica/${id}.${id}`,
        `leader/${id}${id}${id}${id}${id}${id}`,
        value.replace("/", ""),
        1,
        null
      ]
    }
    case "boolean":
      return [!value, 0, String(value), null]
    default:
      return Array.isArray(value) ? [[], {}, null, [...value, ...value], [...value, null]] : [{}, [], null, "x"]
  }
}

type Mutation =
  | { readonly _tag: "near"; readonly at: number; readonly pick: number }
  | { readonly _tag: "drop"; readonly at: number }
  | { readonly _tag: "replace"; readonly at: number; readonly value: unknown }
  | { readonly _tag: "add"; readonly at: number; readonly key: string; readonly value: unknown }
  | { readonly _tag: "retag"; readonly at: number; readonly tag: string }
  | { readonly _tag: "wrap"; readonly at: number }

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.record({ _tag: fc.constant("near" as const), at: fc.nat(), pick: fc.nat() }), weight: 3 },
  fc.record({ _tag: fc.constant("drop" as const), at: fc.nat() }),
  fc.record({ _tag: fc.constant("replace" as const), at: fc.nat(), value: oddValueArb }),
  fc.record({ _tag: fc.constant("add" as const), at: fc.nat(), key: keyArb, value: oddValueArb }),
  fc.record({ _tag: fc.constant("retag" as const), at: fc.nat(), tag: fc.constantFrom(...tags) }),
  fc.record({ _tag: fc.constant("wrap" as const), at: fc.nat() })
)

/** Sets an own property, as `JSON.parse` does (a plain assignment to `__proto__` would not). */
const define = (o: object, key: string | number, value: unknown): void => {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true })
}

/** Every (container, key) of the tree under a root holder, parents before children. */
const slots = (holder: { root: unknown }): Array<[any, string | number]> => {
  const out: Array<[any, string | number]> = []
  const visit = (container: any, key: string | number): void => {
    out.push([container, key])
    const v = container[key]
    if (typeof v === "object" && v !== null) for (const k of Object.keys(v)) visit(v, Array.isArray(v) ? Number(k) : k)
  }
  visit(holder, "root")
  return out
}

const mutate = (value: unknown, mutations: ReadonlyArray<Mutation>): unknown => {
  const holder = { root: structuredClone(value) }
  for (const m of mutations) {
    const all = slots(holder)
    const [container, key] = all[m.at % all.length]!
    const target = container[key]
    switch (m._tag) {
      case "near": {
        const candidates = near(target)
        define(container, key, structuredClone(candidates[m.pick % candidates.length]))
        break
      }
      case "drop":
        if (container === holder) break
        if (Array.isArray(container)) container.splice(key as number, 1)
        else delete container[key]
        break
      case "replace":
        define(container, key, structuredClone(m.value))
        break
      case "add":
        if (typeof target === "object" && target !== null && !Array.isArray(target))
          define(target, m.key, structuredClone(m.value))
        break
      case "retag":
        if (typeof target === "object" && target !== null && "_tag" in target) define(target, "_tag", m.tag)
        break
      case "wrap":
        define(container, key, [target])
        break
    }
  }
  return holder.root
}

/** One envelope of each message, every optional key present, batches and pages of two. */
const fixtures = (): ReadonlyArray<Message.Envelope> => {
  const b = Ballot.make(3, "s1")
  const cmd = (seq: number) =>
    new Command.Command({ client: "c1", seq, acked: seq - 1, op: { _tag: "Put", key: "k", value: [1, null, true] } })
  const batch = new Command.Batch({ commands: [cmd(1), cmd(2)] })
  const transfer = { slotOut: 5, checksum: 7 }
  const history = [
    { from: 1, decidedAt: 0, members: { acceptors: ["a1", "a2", "a3"], leaders: ["l1"], replicas: ["r1", "r2"] } },
    { from: 20, decidedAt: 4, members: { acceptors: ["a1", "a2", "a4"], leaders: ["l1", "l2"], replicas: ["r2"] } }
  ]
  const messages: ReadonlyArray<Message.Message> = [
    new Message.P1a({ ballot: b, from: 4 }),
    new Message.P1b({
      ballot: b,
      request: Ballot.bottom,
      accepted: [
        new Command.PValue({ ballot: b, slot: 2, value: batch }),
        new Command.PValue({ ballot: b, slot: 3, value: Command.noop })
      ],
      watermark: 2,
      from: 2,
      next: 4
    }),
    new Message.P2a({ ballot: b, slot: 9, value: batch }),
    new Message.P2b({ ballot: b, request: b, slot: 9, watermark: 2 }),
    new Message.Propose({ slot: 9, value: Command.noop }),
    new Message.Decision({ slot: 9, value: batch, ballot: b }),
    new Message.Chosen({ slot: 9, ballot: b }),
    new Message.Request({ command: cmd(3) }),
    new Message.Response({ seq: 3, result: { ok: [1.5, "x"] }, error: "no", slot: 9 }),
    new Message.Heartbeat({ ballot: b, active: true, decided: 4, slot: 9, watermark: 2 }),
    new Message.Progress({ slotOut: 6 }),
    new Message.Progress({ slotOut: 6, history }),
    new Message.History({ slotOut: 30, history }),
    new Message.Propose({ slot: 12, value: new Command.Reconfigure({ members: history[1]!.members }) }),
    new Message.StateRequest({ slotOut: 6, transfer, chunks: [0, 3] }),
    new Message.StateChunk({ transfer, index: 0, count: 2, data: "abc" }),
    new Message.Read({ client: "c1", id: 4, op: { _tag: "Get", key: "k" } }),
    new Message.ReadResponse({ id: 4, result: { ok: [1.5, "x"] }, error: "no", slot: 0 }),
    new Message.ReadIndex({ id: 7 }),
    new Message.ReadIndexReply({ id: 7, slot: 9, ballot: b }),
    new Message.Confirm({ ballot: b, round: 2 }),
    new Message.Confirmed({ ballot: b, request: b, round: 2 }),
    new Message.Digest({ slot: 8, digest: "0123456789abcdef".repeat(4), heard: false })
  ]
  return messages.map((message) => new Message.Envelope({ from: "leader/s1", to: "learner/s2", message }))
}

// one after the other: synchronous properties started together would share one timeout clock
describe("WireDecode: Codec.decode against Codec.decodeWithSchema", { concurrent: false }, () => {
  it("they agree on every field of every message changed, dropped or joined by another, one at a time", () => {
    let cases = 0
    for (const env of fixtures()) {
      const value = JSON.parse(Codec.encode(env))
      const count = slots({ root: value }).length
      for (let at = 0; at < count; at++) {
        const mutations: Array<Mutation> = [
          { _tag: "drop", at },
          { _tag: "wrap", at },
          { _tag: "add", at, key: "extra", value: 1 },
          { _tag: "retag", at, tag: "Noop" },
          { _tag: "retag", at, tag: "P2b" }
        ]
        const [container, key] = slots({ root: value })[at]!
        for (let pick = 0; pick < near(container[key]).length; pick++) mutations.push({ _tag: "near", at, pick })
        for (const m of mutations) {
          assertAgree(withRawNumbers(JSON.stringify(mutate(value, [m]))))
          cases++
        }
      }
    }
    assert.isAbove(cases, 1000)
    // thousands of cases: on a loaded machine this takes more than the default 5 s
  }, 60_000)

  it("both accept every valid envelope and build the same instances", () => {
    fc.assert(
      fc.property(validArb, (env) => {
        const text = Codec.encode(env)
        assert.isTrue(assertAgree(text))
        assert.isTrue(assertAgree(Codec.encodeBytes(env)))
      }),
      { numRuns: runs }
    )
  })

  it("decoded instances cannot be told from constructed ones", () => {
    fc.assert(
      fc.property(validArb, (env) => {
        const decoded = Result.getOrThrow(Codec.decode(Codec.encode(env)))
        assertSameShape(decoded, env)
        assert.isTrue(Equal.equals(decoded, env))
        assert.strictEqual(Hash.hash(decoded), Hash.hash(env))
        assert.strictEqual(String(decoded), String(env))
        assert.strictEqual(String(decoded.message), String(env.message))
        assert.instanceOf(decoded, Message.Envelope)
        assert.isTrue(Schema.is(Message.Envelope)(decoded))
        assert.isTrue(Schema.is(Message.Message)(decoded.message))
        // the getter `Schema.is` falls back to across module reloads
        assert.strictEqual(
          (decoded as any)["~effect/Schema/Class/@synod/core/Envelope"],
          "~effect/Schema/Class/@synod/core/Envelope"
        )
        const m = decoded.message
        if ("ballot" in m) {
          assert.instanceOf(m.ballot, Ballot.Ballot)
          assert.isTrue(Schema.is(Ballot.Ballot)(m.ballot))
          assert.strictEqual(String(m.ballot), `${m.ballot.round}.${m.ballot.leader}`)
        }
        if ("value" in m && m.value._tag === "Batch")
          for (const c of m.value.commands) assert.isTrue(Schema.is(Command.Command)(c))
        // the schema encoder checks every class instance it walks
        assert.strictEqual(Codec.encodeWithSchema(decoded), Codec.encode(env))
      }),
      { numRuns: Math.ceil(runs / 4) }
    )
  })

  it("they accept and reject the same mutations of valid envelopes", () => {
    let accepted = 0
    fc.assert(
      fc.property(validArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (env, mutations) => {
        const text = withRawNumbers(JSON.stringify(mutate(JSON.parse(Codec.encode(env)), mutations)))
        if (assertAgree(text)) accepted++
      }),
      { numRuns: runs * 2 }
    )
    // the mutations are not all fatal: ignored keys and still-valid values are covered too
    assert.isAbove(accepted, 0)
  })

  it("they agree on duplicated keys, whitespace and escapes in the text", () => {
    fc.assert(
      fc.property(
        validArb,
        fc.constantFrom('{"from":"nobody",', '{"message":1,', '{ "to" : "leader/x" ,', '{"\\u0066rom":"leader/y",'),
        (env, prefix) => {
          assertAgree(prefix + Codec.encode(env).slice(1))
        }
      ),
      { numRuns: Math.ceil(runs / 4) }
    )
  })

  it("decodeMany agrees element by element, one bad envelope hiding none of the others", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(validArb, fc.array(mutationArb, { maxLength: 2 })), { maxLength: 5 }), (items) => {
        const text = withRawNumbers(
          JSON.stringify(items.map(([env, mutations]) => mutate(JSON.parse(Codec.encode(env)), mutations)))
        )
        const fast = Codec.decodeMany(text)
        const schema = Codec.decodeManyWithSchema(text)
        assert.isTrue(Result.isSuccess(fast) && Result.isSuccess(schema))
        const a = Result.getOrThrow(fast)
        const b = Result.getOrThrow(schema)
        assert.strictEqual(a.length, items.length)
        assert.strictEqual(b.length, items.length)
        for (let i = 0; i < a.length; i++) {
          const [x, y] = [a[i]!, b[i]!]
          assert.strictEqual(Result.isSuccess(x), Result.isSuccess(y), `element ${i}`)
          if (Result.isSuccess(x) && Result.isSuccess(y)) assertSameShape(x.success, y.success)
        }
      }),
      { numRuns: Math.ceil(runs / 4) }
    )
  })

  it("names the path to the bad value and what is wrong with it", () => {
    const reason = (value: unknown): string => {
      const r = Codec.decode(withRawNumbers(JSON.stringify(value)))
      assert.isTrue(Result.isFailure(r))
      assert.isTrue(Result.isFailure(Codec.decodeWithSchema(withRawNumbers(JSON.stringify(value)))))
      return Result.isFailure(r) ? r.failure.reason : ""
    }
    const p2a = (value: unknown) => ({
      from: "leader/s1",
      to: "acceptor/s2",
      message: { _tag: "P2a", ballot: { round: 1, leader: "s1" }, slot: 1, value }
    })
    const cmd = { client: "c", seq: 1, acked: 0, op: { k: [1, 2] } }
    assert.strictEqual(
      reason(p2a({ _tag: "Batch", commands: [cmd, { ...cmd, seq: 0 }] })),
      "message.value.commands[1].seq: expected an integer >= 1, got 0"
    )
    assert.strictEqual(
      reason(p2a({ _tag: "Batch", commands: [{ ...cmd, op: { k: ["\u0000inf"] } }] })),
      "message.value.commands[0].op: expected a JSON value (numbers finite), got an object"
    )
    assert.strictEqual(reason(p2a({ _tag: "Batch" })), "message.value.commands: missing, expected an array")
    assert.strictEqual(
      reason(p2a({ _tag: "Nope" })),
      'message.value._tag: expected "Batch", "Noop" or "Reconfigure", got "Nope"'
    )
    const members = { acceptors: ["a1", "a1"], leaders: ["l1"], replicas: ["r1"] }
    assert.strictEqual(
      reason(p2a({ _tag: "Reconfigure", members })),
      'message.value.members.acceptors[1]: expected no duplicate acceptor id, got "a1"'
    )
    assert.strictEqual(
      reason(p2a({ _tag: "Reconfigure", members: { ...members, acceptors: [] } })),
      "message.value.members.acceptors: expected at least one acceptor, got an array"
    )
    assert.strictEqual(
      reason({ ...p2a({ _tag: "Noop" }), to: "acceptor/s.2" }).startsWith("to: expected an address"),
      true
    )
    assert.strictEqual(reason([1]), "envelope: expected an envelope (an object), got an array")
    const r = Codec.decode("{")
    assert.isTrue(Result.isFailure(r) && r.failure.reason.startsWith("payload is not JSON"))
  })
})

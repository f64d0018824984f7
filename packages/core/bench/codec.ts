/**
 * Micro-benchmark of the wire codec: encode and decode of typical envelopes, the
 * hand-written decoder (`Codec.decode`) beside the schema decoder it must agree with
 * (`Codec.decodeWithSchema`) and `JSON.parse` alone, the floor of both.
 */
import { Ballot, Codec, Command, Message } from "@synod/core"
import { Result } from "effect"

const cmd = (i: number) =>
  new Command.Command({
    client: `client${i}`,
    seq: i,
    acked: i - 1,
    op: { _tag: "Put", key: `k${i}`, value: `value-${i}` }
  })
const p2a = (commands: number) =>
  new Message.Envelope({
    from: "leader/s1",
    to: "acceptor/s2",
    message: new Message.P2a({
      ballot: Ballot.make(3, "s1"),
      slot: 42,
      value: new Command.Batch({ commands: Array.from({ length: commands }, (_, i) => cmd(i + 1)) })
    })
  })
const envs = {
  "P2a, batch of 1": p2a(1),
  "P2a, batch of 16": p2a(16),
  "P2a, batch of 256": p2a(256),
  P2b: new Message.Envelope({
    from: "acceptor/s2",
    to: "leader/s1",
    message: new Message.P2b({ ballot: Ballot.make(3, "s1"), request: Ballot.make(3, "s1"), slot: 42 })
  }),
  Response: new Message.Envelope({
    from: "replica/s1",
    to: "client/c7f3",
    message: new Message.Response({ seq: 7, result: { _tag: "Ok", value: "value-7" }, slot: 42 })
  })
}

/**
 * CPU microseconds per call of `f`, over about `budgetMs` of CPU after a warm-up. CPU time
 * rather than wall time: the machine is shared, and waiting for a core is not decoding.
 */
const time = (f: () => unknown, budgetMs = 300): number => {
  for (let i = 0; i < 200; i++) f()
  let n = 0
  const start = process.cpuUsage()
  let elapsed = 0
  while (elapsed < budgetMs * 1000) {
    for (let i = 0; i < 50; i++) f()
    n += 50
    const used = process.cpuUsage(start)
    elapsed = used.user + used.system
  }
  return elapsed / n
}

const us = (x: number) => `${x.toFixed(x < 10 ? 2 : 1)} µs`.padStart(9)
console.log(
  `${"envelope".padEnd(18)} ${"bytes".padStart(6)} ${"encode".padStart(9)} ${"schema".padStart(9)} ${"decode".padStart(9)} ${"parse".padStart(9)}  speed-up`
)
for (const [name, env] of Object.entries(envs)) {
  const text = Codec.encode(env)
  const enc = time(() => Codec.encode(env))
  const schema = time(() => Result.getOrThrow(Codec.decodeWithSchema(text)))
  const fast = time(() => Result.getOrThrow(Codec.decode(text)))
  const parse = time(() => JSON.parse(text))
  console.log(
    `${name.padEnd(18)} ${String(text.length).padStart(6)} ${us(enc)} ${us(schema)} ${us(fast)} ${us(parse)}  ${(schema / fast).toFixed(1)}×`
  )
}
console.log(
  "CPU time per call. schema: Codec.decodeWithSchema; decode: Codec.decode; parse: JSON.parse alone (both decoders' floor)"
)

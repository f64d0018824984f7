/** Micro-benchmark of the wire codec: encode and decode of typical envelopes. */
import { Ballot, Codec, Command, Message } from "@synod/core"
import { Result } from "effect"

const cmd = (i: number) =>
  new Command.Command({
    client: `client${i}`,
    seq: i,
    acked: i - 1,
    op: { _tag: "Put", key: `k${i}`, value: `value-${i}` }
  })
const envs = {
  "P2a, batch of 1": new Message.Envelope({
    from: "leader/s1",
    to: "acceptor/s2",
    message: new Message.P2a({
      ballot: Ballot.make(3, "s1"),
      slot: 42,
      value: new Command.Batch({ commands: [cmd(1)] })
    })
  }),
  "P2a, batch of 16": new Message.Envelope({
    from: "leader/s1",
    to: "acceptor/s2",
    message: new Message.P2a({
      ballot: Ballot.make(3, "s1"),
      slot: 42,
      value: new Command.Batch({ commands: Array.from({ length: 16 }, (_, i) => cmd(i + 1)) })
    })
  }),
  P2b: new Message.Envelope({
    from: "acceptor/s2",
    to: "leader/s1",
    message: new Message.P2b({ ballot: Ballot.make(3, "s1"), request: Ballot.make(3, "s1"), slot: 42 })
  })
}
for (const [name, env] of Object.entries(envs)) {
  const text = Codec.encode(env)
  const n = 20000
  let t = performance.now()
  for (let i = 0; i < n; i++) Codec.encode(env)
  const enc = ((performance.now() - t) * 1000) / n
  t = performance.now()
  for (let i = 0; i < n; i++) Result.getOrThrow(Codec.decode(text))
  const dec = ((performance.now() - t) * 1000) / n
  t = performance.now()
  for (let i = 0; i < n; i++) JSON.parse(text)
  const parse = ((performance.now() - t) * 1000) / n
  console.log(
    `${name.padEnd(18)} ${text.length} bytes: encode ${enc.toFixed(1)} µs, decode ${dec.toFixed(1)} µs (JSON.parse alone ${parse.toFixed(1)} µs)`
  )
}

import { Ballot, Command, Message } from "@synod/core"
const cmds = Array.from(
  { length: 16 },
  (_, i) =>
    new Command.Command({ client: `c${i}`, seq: i + 1, acked: i, op: { _tag: "Put", key: `k${i}`, value: `v${i}` } })
)
const time = (name: string, f: () => unknown) => {
  const n = 20000
  const t = performance.now()
  for (let i = 0; i < n; i++) f()
  console.log(name.padEnd(40), (((performance.now() - t) * 1000) / n).toFixed(2), "µs")
}
const b = Ballot.make(3, "s1")
const batch = new Command.Batch({ commands: cmds })
time("new Batch(16 commands)", () => new Command.Batch({ commands: cmds }))
time("new Batch(16) disableChecks", () => new Command.Batch({ commands: cmds }, { disableChecks: true }))
time("new P2a", () => new Message.P2a({ ballot: b, slot: 5, value: batch }))
time("new P2b", () => new Message.P2b({ ballot: b, request: b, slot: 5 }))
time(
  "new Envelope(P2b)",
  () =>
    new Message.Envelope({
      from: "leader/s1",
      to: "acceptor/s2",
      message: new Message.P2b({ ballot: b, request: b, slot: 5 })
    })
)
time("new PValue(batch 16)", () => new Command.PValue({ ballot: b, slot: 5, value: batch }))
time(
  "new Command",
  () => new Command.Command({ client: "c", seq: 1, acked: 0, op: { _tag: "Put", key: "k", value: "v" } })
)

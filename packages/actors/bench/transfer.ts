/**
 * Benchmark: what serving a peer's copy of the state costs the serving replica's loop
 * (`StateTransfer.Source`). A replica holding `--keys` keys of `--value-bytes` values is
 * asked for its state; it answers with a job for its host, which encodes the state a
 * slice at a time (`Replica.encodeCaptured`, then `StateTransfer.encodeForTransfer`), and
 * hands the chunks back. Prints how long the request held the loop, how long the encoding
 * took in all and its longest slice (what any other role of the process waits for at
 * most), against the encoding done at once, as the replica did before (`JSON.stringify`
 * of the encoded state, its CRC-32 and its chunks, in one step). Then the asker's side,
 * still one step: its last chunk's (the text joined, checked, parsed, decoded and
 * installed), and the SHA-256 it checks against its peers' digests when it knows them.
 *
 *   pnpm bench transfer [--keys 100000] [--value-bytes 100] [--rounds 3]
 */
import { crc32 } from "node:zlib"
import { Ballot, ClusterConfig, Message, StateMachine, type Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { Option } from "effect"
import { Replica, StateTransfer } from "@synod/actors"

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) return dflt
  const v = Number(process.argv[i + 1])
  if (!Number.isInteger(v) || v <= 0) {
    process.stderr.write(`--${name} must be a positive integer\n`)
    process.exit(2)
  }
  return v
}
const keys = arg("keys", 100_000)
const valueBytes = arg("value-bytes", 100)
const rounds = arg("rounds", 3)

const machine = Kv.machine
const codecs = StateMachine.codecs(machine) as StateMachine.Codecs<Kv.State, unknown, unknown>
const config = ClusterConfig.servers(3)

/** A replica's snapshot holding `keys` keys (16-byte keys, as the yardstick writes). */
const snapshotOf = (): Storage.ReplicaSnapshot => {
  const value = "v".repeat(valueBytes)
  let s = machine.edit!.begin(machine.initial)
  for (let k = 0; k < keys; k++)
    s = machine.apply(s, { _tag: "Put", key: `k${String(k).padStart(15, "0")}`, value } as Kv.Command)[0]
  s = machine.edit!.end(s)
  return { slotOut: 2, state: codecs.encodeState(s), clients: [], digestBytes: 0 }
}

/** Runs a generator to its end, timing each step: its result, the total and the longest step (ms). */
const timed = <A>(gen: Generator<void, A, void>): { value: A; total: number; longest: number; steps: number } => {
  let total = 0
  let longest = 0
  let steps = 0
  for (;;) {
    const t0 = performance.now()
    const r = gen.next()
    const ms = performance.now() - t0
    total += ms
    steps++
    if (ms > longest) longest = ms
    if (r.done === true) return { value: r.value, total, longest, steps }
  }
}

const ms = (n: number) => `${n.toFixed(1)} ms`
const snapshot = snapshotOf()
process.stdout.write(
  `serving a copy of ${keys.toLocaleString("en")} keys of ${valueBytes}-byte values (${config.transferChunkBytes}-character chunks)\n`
)
for (let round = 1; round <= rounds; round++) {
  const replica = new Replica.ReplicaCore("s2", config, machine, Option.some(snapshot))
  // the request, on the replica's loop
  const t0 = performance.now()
  replica.stateRequest("replica/s1", new Message.StateRequest({ slotOut: 1, chunks: [] }))
  const onLoop = performance.now() - t0
  const job = replica.out.drain().work.find((j) => j._tag === "Encode")
  if (job === undefined) throw new Error("the replica asked its host for no encoding")
  // the host's part, a slice at a time (without the pauses between slices)
  const state = timed(codecs.encodeStateGradually(job.captured.state))
  const encoded = Replica.encodeCapturedNow(codecs, job.captured)
  const text = timed(StateTransfer.encodeForTransfer({ ...encoded, state: state.value }, job.chunkChars))
  const t1 = performance.now()
  replica.step({ _tag: "Encoded", slotOut: job.captured.slotOut, ...text.value })
  const chunks = replica.out.drain().send.length
  const answer = performance.now() - t1
  // as before: all of it in one step of the loop
  const t2 = performance.now()
  const whole = JSON.stringify(Replica.encodeCapturedNow(codecs, job.captured))
  crc32(whole)
  for (let i = 0; i < whole.length; i += job.chunkChars) whole.slice(i, i + job.chunkChars)
  const atOnce = performance.now() - t2
  // the asker's side: each chunk a step of its loop, the last one verifying and installing
  const asker = new Replica.ReplicaCore("s1", config, machine, Option.none())
  asker.heartbeat(
    new Message.Heartbeat({ ballot: Ballot.make(1, "s3"), active: true, decided: 2, slot: 2, watermark: 2 })
  )
  asker.tick()
  let asks = asker.drain().filter((o) => o.message._tag === "StateRequest")
  let last = 0
  for (let guard = 0; asks.length > 0 && guard < 100_000; guard++) {
    const next: typeof asks = []
    for (const ask of asks) {
      replica.stateRequest("replica/s1", ask.message as Message.StateRequest)
      for (const { message } of replica.out.drain().send) {
        const t = performance.now()
        asker.stateChunk("replica/s2", message as Message.StateChunk)
        last = performance.now() - t
        next.push(...asker.drain().filter((o) => o.message._tag === "StateRequest"))
      }
    }
    asks = next
  }
  if (asker.slotOut !== snapshot.slotOut)
    throw new Error(`the asker did not install the copy (at slot ${asker.slotOut})`)
  const t3 = performance.now()
  Replica.digestText(whole)
  const hash = performance.now() - t3
  process.stdout.write(
    `  round ${round}: ${(whole.length / 1e6).toFixed(1)} MB; the request held the loop ${ms(onLoop)}, the answer (${chunks} chunks) ${ms(answer)}; ` +
      `encoded in ${state.steps + text.steps} slices, ${ms(state.total + text.total)} in all, the longest ${ms(Math.max(state.longest, text.longest))}; ` +
      `at once: ${ms(atOnce)}; the asker's last chunk (checked, decoded, installed) ${ms(last)}, and checking its digest ${ms(hash)} more\n`
  )
}

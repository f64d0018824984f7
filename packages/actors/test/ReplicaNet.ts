/**
 * Replica cores wired by hand, for tests of what replicas tell each other (digests, state
 * transfer): `Net` delivers replica-to-replica messages and runs digest jobs until nothing
 * moves; leaders and acceptors are the test's to play.
 */
import { Ballot, type ClusterConfig, Command, Message, StateMachine } from "@synod/core"
import { Kv } from "@synod/kv"
import { Option } from "effect"
import { Replica, StateTransfer } from "@synod/actors"

export const b = Ballot.make(1, "l1")
export const put = (client: string, seq: number, key: string, value: string) =>
  new Command.Command({ client, seq, acked: 0, op: { _tag: "Put", key, value } as never })
export const codecs = StateMachine.codecs(Kv.machine) as StateMachine.Codecs<Kv.State, unknown, unknown>

/** The digest the host would compute of a job (`Replica.digestCaptured`, run here directly). */
export const digestOf = (job: Extract<Replica.Job<Kv.State>, { readonly _tag: "Digest" }>): string =>
  Replica.digestText(
    JSON.stringify({
      slotOut: job.captured.slotOut,
      state: codecs.encodeState(job.captured.state),
      clients: job.captured.clients,
      digestBytes: job.captured.digestBytes,
      ...(job.captured.digestLimit === undefined ? {} : { digestLimit: job.captured.digestLimit })
    })
  )

/** A generator of gradual work (`JsonText.runGradually`'s kind) run to its result at once. */
export const runToEnd = <A>(gen: Generator<void, A, void>): A => {
  let r = gen.next()
  while (r.done !== true) r = gen.next()
  return r.value
}

/** What the host hands back for a job: its digest, or its text for a peer's copy (run here at once). */
export const doneOf = (job: Replica.Job<Kv.State>): Replica.Input => {
  if (job._tag === "Digest")
    return { _tag: "Digested", slot: job.captured.slotOut, epoch: job.epoch, digest: digestOf(job) }
  const encoding = runToEnd(
    StateTransfer.encodeForTransfer(Replica.encodeCapturedNow(codecs, job.captured), job.chunkChars)
  )
  return { _tag: "Encoded", slotOut: job.captured.slotOut, ...encoding }
}

type Core = Replica.ReplicaCore<Kv.State, Kv.Command, Kv.Result>

/**
 * `core.stateRequest`, with the host's part played: an encoding it asks for is made at
 * once and handed back, so its chunks are in `core.out` with whatever else it had there.
 */
export const stateRequest = (core: Core, from: string, request: Message.StateRequest): void => {
  core.stateRequest(from as never, request)
  const ready = core.out.drain()
  for (const r of ready.persist) core.out.persist(r)
  for (const e of ready.events) core.out.event(e)
  for (const { to, message } of ready.send) core.out.send(to, message)
  for (const job of ready.work) {
    if (job._tag === "Encode") core.step(doneOf(job))
    else core.out.work(job)
  }
}

export class Net {
  readonly cores = new Map<string, Replica.ReplicaCore<Kv.State, Kv.Command, Kv.Result>>()
  readonly events: Array<readonly [string, Replica.Event]> = []
  /** Messages sent to clients, per replica. */
  readonly answers: Array<readonly [string, Message.Message]> = []
  /** The slotOut of each snapshot a replica asked to save, per replica. */
  readonly saved = new Map<string, Array<number>>()
  constructor(ids: ReadonlyArray<string>, config: ClusterConfig.ClusterConfig, now: () => number = () => 0) {
    for (const id of ids)
      this.cores.set(
        id,
        new Replica.ReplicaCore(id, config, Kv.machine, Option.none(), { hash: Replica.digestText, now })
      )
  }
  core(id: string) {
    return this.cores.get(id)!
  }
  /** Delivers what every core sent, and runs their digest jobs, until nothing moves. */
  settle(drop: (to: string, m: Message.Message) => boolean = () => false) {
    for (let round = 0; round < 1000; round++) {
      let moved = false
      for (const [id, core] of this.cores) {
        const ready = core.out.drain()
        for (const e of ready.events) this.events.push([id, e])
        for (const r of ready.persist) this.saved.set(id, [...(this.saved.get(id) ?? []), r.slotOut])
        for (const job of ready.work) {
          moved = true
          core.step(doneOf(job))
        }
        for (const { to, message } of ready.send) {
          if (to.startsWith("client/")) this.answers.push([id, message])
          const target = this.cores.get(to.slice(to.indexOf("/") + 1))
          if (!to.startsWith("replica/") || target === undefined || drop(to, message)) continue
          moved = true
          target.step({
            _tag: "Message",
            from: `replica/${id}`,
            message: message as Exclude<Message.ReplicaInbound, Message.Chosen>
          })
        }
      }
      if (!moved) return
    }
    throw new Error("the cores never settled")
  }
  decide(slot: number, value: Command.SlotValue) {
    for (const core of this.cores.values())
      core.step({ _tag: "Message", from: "leader/l1", message: new Message.Decision({ slot, value, ballot: b }) })
  }
}

/**
 * Replica cores wired by hand, for tests of what replicas tell each other (digests, state
 * transfer): `Net` delivers replica-to-replica messages and runs digest jobs until nothing
 * moves; leaders and acceptors are the test's to play.
 */
import { Ballot, type ClusterConfig, Command, Message, StateMachine } from "@synod/core"
import { Kv } from "@synod/kv"
import { Option } from "effect"
import { Replica } from "@synod/actors"

export const b = Ballot.make(1, "l1")
export const put = (client: string, seq: number, key: string, value: string) =>
  new Command.Command({ client, seq, acked: 0, op: { _tag: "Put", key, value } as never })
export const codecs = StateMachine.codecs(Kv.machine) as StateMachine.Codecs<Kv.State, unknown, unknown>

/** The digest the host would compute of a job (`Replica.digestCaptured`, run here directly). */
export const digestOf = (job: Replica.Job<Kv.State>): string =>
  Replica.digestText(
    JSON.stringify({
      slotOut: job.captured.slotOut,
      state: codecs.encodeState(job.captured.state),
      clients: job.captured.clients,
      digestBytes: job.captured.digestBytes,
      ...(job.captured.digestLimit === undefined ? {} : { digestLimit: job.captured.digestLimit })
    })
  )

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
          core.step({ _tag: "Digested", slot: job.captured.slotOut, epoch: job.epoch, digest: digestOf(job) })
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

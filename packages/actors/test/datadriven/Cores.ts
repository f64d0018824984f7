/**
 * The data-driven harness of each core: which commands a script may give it, and how what
 * the core returned is printed. Every core gets a clock the script sets (`time <ms>`) and
 * a random source that always draws the same number (`init random=<r>`, 0 by default), so
 * every output is deterministic.
 *
 * Shared commands: `init key=value...` (re-creates the core), `time <ms>`, `deliver <from>
 * <Tag> field=value...` (a field written `a..b` delivers one message per value, all in
 * one batch: every one is fed before the outbox is drained, as the host does),
 * `status`, and where a role has a disk `crash` (inputs are dropped until `restart`) and
 * `restart` (a new core from what was persisted: what a drained outbox asked to persist
 * counts as durable, as the host writes it before anything else happens).
 */
import { Address, Ballot, ClusterConfig, type Message, type Quorum, StateMachine, Storage } from "@synod/core"
import { Kv } from "@synod/kv"
import { Option } from "effect"
import { Acceptor, Commander, Leader, Replica, Scout } from "@synod/actors"
import { type Cmd, type Handler, ScriptError } from "./Driver.ts"
import * as N from "./Notation.ts"

const ids = (text: string) => text.split(",")

/** `a..b` fields expanded: one list of fields per value (several ranges advance together). */
const expand = (fields: ReadonlyArray<[string, string]>): Array<Array<[string, string]>> => {
  let count = 1
  const ranges = new Map<string, number>()
  for (const [k, v] of fields) {
    const m = /^(\d+)\.\.(\d+)$/.exec(v)
    if (m === null) continue
    count = Number(m[2]) - Number(m[1]) + 1
    ranges.set(k, Number(m[1]))
  }
  return Array.from({ length: count }, (_, i) =>
    fields.map(([k, v]): [string, string] => [k, ranges.has(k) ? String(ranges.get(k)! + i) : v])
  )
}

/** `deliver <from> <Tag> fields...`: the envelopes it stands for. */
const deliveries = (cmd: Cmd): Array<{ from: Address.Address; message: Message.Message }> => {
  const tag = cmd.arg(1, "message tag")
  const from = N.sender(cmd.arg(0, "sender"), tag)
  return expand(cmd.rest()).map((fields) => ({ from, message: N.parseMessage(tag, fields) }))
}

/** What a core's outbox drains to (internal/Host.ts's `Ready`, which tests cannot import). */
interface Ready<Rec, Spec, Ev> {
  readonly persist: ReadonlyArray<Rec>
  readonly send: ReadonlyArray<{ readonly to: Address.Address; readonly message: Message.Message }>
  readonly stop: ReadonlyArray<string>
  readonly start: ReadonlyArray<{ readonly key: string; readonly spec: Spec }>
  readonly route: ReadonlyArray<{ readonly key: string; readonly envelope: Message.Envelope }>
  readonly events: ReadonlyArray<Ev>
}

/** `deliver ...` as a role's `Message` inputs (the message is of the role's inbound union: the script says so). */
const messageInputs = <M extends Message.Message>(cmd: Cmd) =>
  deliveries(cmd).map(({ from, message }) => ({ _tag: "Message" as const, from, message: message as M }))

/**
 * A replica's `deliver`. A `Chosen` is resolved as its host does (`Replica.resolve`),
 * against `held=slot@ballot=value`, the pvalue its server's acceptor holds (none without).
 */
const replicaInputs = (cmd: Cmd): Array<Replica.Input> => {
  if (cmd.arg(1, "message tag") !== "Chosen") {
    return messageInputs<Exclude<Message.ReplicaInbound, Message.Chosen>>(cmd)
  }
  const held = cmd.has("held") ? N.parsePValues(cmd.get("held"))[0] : undefined
  const from = N.sender(cmd.arg(0, "sender"), "Chosen")
  return expand(cmd.rest()).map((f) => {
    const chosen = N.parseMessage("Chosen", f) as Message.Chosen
    return { _tag: "Chosen", from, slot: chosen.slot, value: Replica.resolve(held, chosen) }
  })
}

/** The lines of a drained outbox, in the order the host acts on them. */
const ready = <Rec, Spec, Ev>(
  r: Ready<Rec, Spec, Ev>,
  show: {
    readonly record: (rec: Rec) => string
    readonly start?: (key: string, spec: Spec) => string
  }
): Array<string> => [
  ...r.persist.map((rec) => `persist ${show.record(rec)}`),
  ...r.events.map((e) => `event ${fields(e as { readonly _tag: string })}`),
  ...r.stop.map((key) => `stop ${key}`),
  ...r.start.map(({ key, spec }) => `start ${show.start?.(key, spec) ?? key}`),
  ...r.route.map(({ key, envelope }) => `route ${key} <- ${Address.id(envelope.from)} ${N.message(envelope.message)}`),
  ...N.sends(r.send)
]

/** `Tag key=value ...` of a tagged object. */
const fields = (o: { readonly _tag: string }): string =>
  [
    o._tag,
    ...Object.entries(o)
      // a scout's per-acceptor reports and configurations repeat what the pvalues and the script say
      .filter(([k]) => k !== "_tag" && k !== "byAcceptor" && k !== "configs")
      .map(
        ([k, v]: [string, unknown]) =>
          `${k}=${v instanceof Map ? N.pvalues(v.values()) : Array.isArray(v) ? N.list(v) : N.field(v)}`
      )
  ].join(" ")

/** A clock the script sets. */
class Clock {
  now = 0
  readonly read = () => this.now
  set(cmd: Cmd): ReadonlyArray<string> {
    const t = Number(cmd.arg(0, "time in ms"))
    if (!Number.isInteger(t) || t < this.now)
      throw new ScriptError(`time ${t}: the clock is monotonic (now ${this.now})`)
    this.now = t
    return []
  }
}

const timeouts = { retransmitMs: 100, heartbeatMs: 50, leaderTimeoutMs: 200, maxLeaderTimeoutMs: 1000 }

/**
 * The leader: `init id= round= window= random= orphans=`, `deliver`, `tick`, `time`,
 * `scout-ended adopted ballot= pvalues= watermark= [from=]` | `scout-ended preempted ballot= by=`,
 * `commander-ended slot= decided ballot= value= [owed=] [awaiting=]` | `commander-ended slot= preempted ballot= by=`
 * (slot may be a range), `resign`, `transfer [to=]`, `status`, `crash`, `restart` (from the persisted round).
 * Acceptors a1..a3, leaders l1 (the first: at start it listens, then competes) and l2,
 * replicas r1 and r2; heartbeat 50 ms, leader timeout 200 ms (at most 1000).
 */
export const leader = (): Handler => {
  const clock = new Clock()
  let random = 0
  let orphans = false
  let id = "l1"
  let config = ClusterConfig.make({ acceptors: ["a1", "a2", "a3"], leaders: ["l1", "l2"], replicas: ["r1", "r2"] })
  let stored = 0
  let core: Leader.LeaderCore | undefined
  const start = (round: number) =>
    new Leader.LeaderCore(id, config, { round, now: clock.read, random: () => random, observeOrphans: orphans })
  const step = (...inputs: Array<Leader.Input>) => {
    if (core === undefined) return ["dropped: crashed"]
    for (const input of inputs) core.step(input)
    const r = core.out.drain()
    for (const rec of r.persist) stored = rec.round
    return ready(r, {
      record: (rec) => `round=${rec.round}`,
      start: (key, spec) =>
        spec._tag === "Scout"
          ? `${key} from=${spec.from}${spec.before === undefined ? "" : ` before=${spec.before}`}` +
            (spec.first === undefined ? "" : ` first=${spec.first.join(",")}`)
          : `commander ${key} value=${N.value(spec.value)}` +
            (spec.piggyback.length === 0
              ? ""
              : ` then=${spec.piggyback.map((p) => `${p.replica}:Chosen(${p.chosen.slot})`).join(",")}`)
    })
  }
  return (cmd) => {
    switch (cmd.name) {
      case "init": {
        id = cmd.get("id", "l1")
        random = Number(cmd.get("random", "0"))
        orphans = cmd.get("orphans", "false") === "true"
        config = ClusterConfig.make({
          acceptors: ids(cmd.get("acceptors", "a1,a2,a3")),
          leaders: ids(cmd.get("leaders", "l1,l2")),
          replicas: ids(cmd.get("replicas", "r1,r2")),
          window: cmd.int("window", 4),
          timeouts
        })
        stored = cmd.int("round", 0)
        core = start(stored)
        return []
      }
      case "time":
        return clock.set(cmd)
      case "deliver":
        return step(...messageInputs<Message.LeaderInbound>(cmd))
      case "tick":
        return step({ _tag: "Tick" })
      case "resign":
        return step({ _tag: "Resign" })
      case "transfer": {
        const to = cmd.get("to", "")
        return step(to === "" ? { _tag: "Transfer" } : { _tag: "Transfer", to })
      }
      case "scout-ended": {
        const ballot = N.parseBallot(cmd.get("ballot"))
        const outcome: Scout.Outcome =
          cmd.arg(0, "adopted or preempted") === "adopted"
            ? {
                _tag: "Adopted",
                ballot,
                pvalues: new Map(N.parsePValues(cmd.get("pvalues", "")).map((pv) => [pv.slot, pv])),
                watermark: cmd.int("watermark", 1),
                ...(cmd.has("from") ? { from: cmd.int("from", 1) } : {})
              }
            : { _tag: "Preempted", ballot, by: N.parseBallot(cmd.get("by")) }
        return step({ _tag: "ScoutEnded", outcome })
      }
      case "commander-ended": {
        const how = cmd.arg(0, "decided or preempted")
        const ballot = N.parseBallot(cmd.get("ballot"))
        return step(
          ...expand([["slot", cmd.get("slot")]]).map(([[, s]]): Leader.Input => {
            const slot = Number(s)
            const outcome: Commander.Outcome =
              how === "decided"
                ? {
                    _tag: "Decided",
                    ballot,
                    slot,
                    value: N.parseValue(cmd.get("value")),
                    // the replicas the commander left their Chosen to the leader (`deferChosen`)
                    ...(cmd.has("owed") ? { owed: cmd.get("owed").split(",") } : {}),
                    // the replicas beside acceptors that had not voted yet (`Decided.awaiting`)
                    ...(cmd.has("awaiting") ? { awaiting: cmd.get("awaiting").split(",") } : {})
                  }
                : { _tag: "Preempted", ballot, by: N.parseBallot(cmd.get("by")) }
            return { _tag: "CommanderEnded", slot, outcome }
          })
        )
      }
      case "status": {
        if (core === undefined) return [`crashed stored=${stored}`]
        const s = core.state
        const lines = [
          `state=${s._tag === "Passive" ? "Passive" : `${s._tag}(${N.ballot(s.ballot)})`} ballot=${N.ballot(core.ballot)}` +
            ` seen=${N.ballot(core.highestSeen)} watched=${N.ballot(core.liveness.watched)}` +
            ` timeout=${core.liveness.timeout} watermark=${core.watermark} decided=${core.decidedCount} stored=${stored}`
        ]
        if (core.proposals.size > 0) lines.push(`proposals: ${N.slots(core.proposals, N.value).join(" ")}`)
        if (core.decided.size > 0) lines.push(`decided: ${N.slots(core.decided, (d) => N.value(d.value)).join(" ")}`)
        if (core.commanders.size > 0) {
          const byBallot = new Map<string, Map<number, number>>()
          for (const [key, slot] of core.commanders) {
            const b = key.slice(0, key.indexOf("|"))
            byBallot.set(b, (byBallot.get(b) ?? new Map<number, number>()).set(slot, slot))
          }
          const keys = [...byBallot].flatMap(([b, slots]) => N.slots(slots).map((s) => `${b}|${s}`))
          lines.push(`commanders: ${keys.join(" ")}`)
        }
        if (core.backlog.length > 0)
          lines.push(`backlog: ${N.slots(new Map(core.backlog.map((s) => [s, s]))).join(" ")}`)
        return lines
      }
      case "crash":
        core = undefined
        return []
      case "restart":
        core = start(stored)
        return [`restarted round=${stored}`]
      default:
        throw new ScriptError(`unknown leader command ${cmd.name}`)
    }
  }
}

/**
 * The acceptor: `init pageBytes= lease= strict= events=` (`events=false` leaves out its
 * events, for scripts about something else), `deliver`, `time`, `status`, `crash`,
 * `restart` (from its appended records: one merged append per batch, as the host writes).
 * Acceptors a1..a3 and replicas r1..r3: two replicas' progress makes a watermark.
 */
export const acceptor = (): Handler => {
  const clock = new Clock()
  let make = (_state: Storage.AcceptorState) => new Acceptor.AcceptorCore(_state)
  let events = true
  const disk: Storage.MutableAcceptorState = { promised: Ballot.bottom, watermark: 1, accepted: new Map() }
  let core: Acceptor.AcceptorCore | undefined
  const state = (s: Storage.AcceptorState) =>
    `promised=${N.ballot(s.promised)} watermark=${s.watermark} accepted=${N.pvalues(s.accepted.values()) || "-"}`
  return (cmd) => {
    switch (cmd.name) {
      case "init": {
        const pageBytes = cmd.has("pageBytes") ? { pageBytes: cmd.int("pageBytes") } : {}
        const options = {
          leaseMs: cmd.int("lease", 0),
          strictAccept: cmd.get("strict", "false") === "true",
          now: clock.read,
          cluster: { acceptors: ["a1", "a2", "a3"], replicas: ["r1", "r2", "r3"] },
          ...pageBytes
        }
        make = (s) => new Acceptor.AcceptorCore(s, options)
        events = cmd.get("events", "true") === "true"
        disk.promised = Ballot.bottom
        disk.watermark = 1
        disk.accepted.clear()
        core = make(disk)
        return []
      }
      case "time":
        return clock.set(cmd)
      case "deliver": {
        const inputs = deliveries(cmd)
        if (core === undefined) return ["dropped: crashed"]
        for (const { from, message } of inputs) core.step({ from, message: message as Message.AcceptorInbound })
        const drained = core.out.drain()
        const r = events ? drained : { ...drained, events: [] }
        // one append per batch, as the host writes it
        const merged = r.persist.length === 0 ? [] : [Acceptor.mergeRecords(r.persist)]
        for (const rec of merged) Storage.applyRecord(disk, rec)
        return ready(
          { ...r, persist: merged },
          {
            record: (rec) =>
              [
                `promised=${N.ballot(rec.promised)}`,
                ...(rec.accepted.length > 0 ? [`accepted=${N.pvalues(rec.accepted)}`] : []),
                ...(rec.watermark === undefined ? [] : [`watermark=${rec.watermark}`])
              ].join(" ")
          }
        )
      }
      case "status":
        return [core === undefined ? "crashed" : `memory ${state(core)}`, `disk ${state(disk)}`]
      case "crash":
        core = undefined
        return []
      case "restart":
        core = make({ promised: disk.promised, watermark: disk.watermark, accepted: new Map(disk.accepted) })
        return [`restarted ${state(core)}`]
      default:
        throw new ScriptError(`unknown acceptor command ${cmd.name}`)
    }
  }
}

const codecs = StateMachine.codecs(Kv.machine)

/** A key-value state, values longer than 12 characters cut (`c1=1xxxxxxxxxx…(2001)`). */
const kv = (state: Kv.State): string => {
  const entries = [...state.entries.entries()]
  if (entries.length === 0) return "-"
  return entries.map(([k, { value: v }]) => `${k}=${v.length > 12 ? `${v.slice(0, 12)}…(${v.length})` : v}`).join(",")
}

/**
 * The replica (of the key-value machine): `init id= window= maxSize= linger= snapshotEvery=
 * snapshotBytes= snapshotRatio= snapshotMaxBytes= eagerSlots= maxMessageBytes=`, `deliver`, `tick`, `wake`, `time`, `status`, `crash`,
 * `restart` (from the last persisted snapshot). Leaders l1 and l2, acceptors a1..a3,
 * replicas r1 and r2; resend after 100 ms, leader timeout 200 ms.
 */
export const replica = (): Handler => {
  const clock = new Clock()
  type Core = Replica.ReplicaCore<Kv.State, Kv.Command, Kv.Result>
  let make = (_snapshot: Option.Option<Storage.ReplicaSnapshot>): Core | undefined => undefined
  let stored: Option.Option<Storage.ReplicaSnapshot> = Option.none()
  let core: Core | undefined
  const step = (...inputs: Array<Replica.Input>) => {
    if (core === undefined) return ["dropped: crashed"]
    for (const input of inputs) core.step(input)
    const r = core.out.drain()
    for (const snapshot of r.persist) stored = Option.some({ ...snapshot, state: codecs.encodeState(snapshot.state) })
    return ready(r, {
      record: (s) =>
        `snapshot slotOut=${s.slotOut} clients=${N.list(s.clients.map((c) => c.client))} state=${kv(s.state)}`
    })
  }
  return (cmd) => {
    switch (cmd.name) {
      case "init": {
        const config = ClusterConfig.make({
          acceptors: ["a1", "a2", "a3"],
          leaders: ["l1", "l2"],
          replicas: ids(cmd.get("replicas", "r1,r2")),
          window: cmd.int("window", 3),
          snapshotEvery: cmd.int("snapshotEvery", 1000),
          snapshotBytes: cmd.int("snapshotBytes", 1 << 20),
          snapshotRatio: cmd.int("snapshotRatio", 2),
          snapshotMaxBytes: cmd.int("snapshotMaxBytes", 1 << 26),
          // the scripts written before eagerSlots fill their whole window as commands come
          batch: {
            maxSize: cmd.int("maxSize", 2),
            lingerMs: cmd.int("linger", 0),
            eagerSlots: cmd.int("eagerSlots", 16)
          },
          timeouts
        })
        const maxMessageBytes = cmd.int("maxMessageBytes", 8192)
        const id = cmd.get("id", "r1")
        make = (snapshot) =>
          new Replica.ReplicaCore(id, config, Kv.machine, snapshot, { now: clock.read, maxMessageBytes })
        stored = Option.none()
        core = make(stored)
        return []
      }
      case "time":
        return clock.set(cmd)
      case "deliver":
        return step(...replicaInputs(cmd))
      case "tick":
        return step({ _tag: "Tick" })
      case "wake":
        return step({ _tag: "Wake" })
      case "saved":
        return step({ _tag: "Saved", slotOut: cmd.int("slotOut", 1) })
      case "status": {
        if (core === undefined) return ["crashed"]
        const lines = [
          `slotIn=${core.slotIn} slotOut=${core.slotOut} durable=${core.durable} knownMax=${core.knownMax}` +
            ` watermark=${core.watermark} leader=${core.leader === undefined ? "-" : Address.id(core.leader)}` +
            ` performed=${core.performedCommands} resent=${core.resent} refused=${core.refused}` +
            (core.wakeAt() === undefined ? "" : ` wakeAt=${core.wakeAt()}`),
          `state: ${kv(core.state)}`
        ]
        if (core.pending.size > 0) lines.push(`pending: ${[...core.pending.keys()].join(" ")}`)
        if (core.proposals.size > 0) lines.push(`proposals: ${N.slots(core.proposals, N.value).join(" ")}`)
        if (core.decisions.size > 0) lines.push(`decisions: ${N.slots(core.decisions, N.value).join(" ")}`)
        return lines
      }
      case "crash":
        core = undefined
        return []
      case "restart":
        core = make(stored)!
        return [`restarted slotOut=${core.slotOut} state=${kv(core.state)}`]
      default:
        throw new ScriptError(`unknown replica command ${cmd.name}`)
    }
  }
}

/**
 * A tally's harness: `init ...` makes it, `deliver <acceptor> <Tag> ...` prints its step
 * (`Continue`, `NextPage acceptor=a1`, `Voted acceptor=a1`, `Adopted ...`, `Decided ...`,
 * `Preempted ballot= by=`), `status` who has not answered yet; `own` handles the rest.
 */
const tally =
  <T extends { readonly tally: Quorum.Tally }>(
    what: string,
    takes: "P1b" | "P2b",
    make: (cmd: Cmd) => T,
    feed: (t: T, acceptor: string, message: Message.P1b & Message.P2b) => Scout.Step | Commander.Step,
    own: (t: T, cmd: Cmd) => ReadonlyArray<string> | undefined
  ) =>
  (): Handler => {
    let current: T | undefined
    return (cmd) => {
      if (cmd.name === "init") {
        current = make(cmd)
        return []
      }
      const t = current
      if (t === undefined) throw new ScriptError("init first")
      switch (cmd.name) {
        case "deliver":
          return deliveries(cmd).map(({ from, message }) => {
            if (message._tag !== takes) throw new ScriptError(`a ${what} takes ${takes}`)
            return fields(feed(t, Address.id(from), message as Message.P1b & Message.P2b))
          })
        case "status":
          return [`missing=${N.list(t.tally.missing())} counted=${t.tally.size}`]
      }
      const out = own(t, cmd)
      if (out === undefined) throw new ScriptError(`unknown ${what} command ${cmd.name}`)
      return out
    }
  }

/** The scout's tally: `init ballot= from= before= acceptors=`, `p1a <acceptor>` (the P1a it would send now). */
export const scout = tally(
  "scout",
  "P1b",
  (cmd) => {
    const acceptors = ids(cmd.get("acceptors", "a1,a2,a3"))
    const before = cmd.has("before") ? cmd.int("before", 1) : undefined
    return new Scout.ScoutTally(
      N.parseBallot(cmd.get("ballot")),
      acceptors,
      cmd.int("from", 1),
      false,
      [acceptors],
      undefined,
      before
    )
  },
  (t, acceptor, message) => t.p1b(acceptor, message),
  (t, cmd) => (cmd.name === "p1a" ? [N.message(t.p1a(cmd.arg(0, "acceptor")))] : undefined)
)

/** The commander's tally: `init ballot= slot= value= acceptors=`, `p2a`. */
export const commander = tally(
  "commander",
  "P2b",
  (cmd) =>
    new Commander.CommanderTally(
      N.parseBallot(cmd.get("ballot")),
      cmd.int("slot"),
      N.parseValue(cmd.get("value")),
      ids(cmd.get("acceptors", "a1,a2,a3"))
    ),
  (t, acceptor, message) => t.p2b(acceptor, message),
  (t, cmd) => (cmd.name === "p2a" ? [N.message(t.p2a())] : undefined)
)

/** The harness of each script, by the file name's prefix (`leader_*.txt`, ...). */
export const harnesses: Readonly<Record<string, () => Handler>> = { leader, acceptor, replica, scout, commander }

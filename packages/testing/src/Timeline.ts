/**
 * What a simulation run looked like, for its space-time view (`SpaceTime.ts`): every
 * message with its send and arrival time (drops, duplicates and replays marked), every
 * fault as an interval over the processes it hit, the nemesis's and clients' notes, and
 * the first invariant violation. The simulator fills one when asked (`RunOptions.timeline`);
 * nothing is recorded otherwise.
 *
 * Bounded: at most `maxMessages` messages and `maxNotes` notes are kept (the first ones);
 * how many more there were is counted, and the page says so.
 *
 * @since 0.2.0
 */
import { Command, type InMemoryBus, type Message } from "@synod/core"
import { Effect } from "effect"

/** A message as drawn: `d` delivered, `x` dropped, `o` oversized (dropped), `u` nobody listening. */
export interface Arrow {
  readonly sent: number
  readonly time: number
  readonly from: string
  readonly to: string
  readonly tag: string
  readonly event: "d" | "x" | "o" | "u"
  readonly copy?: "duplicate" | "replay"
  /** Ballot, slot and value, as far as the message has them. */
  readonly info?: string
  /** The slot the message is about, if one. */
  readonly slot?: number
}

/** A fault over time: `targets` are addresses or node ids (empty: the whole network). */
export interface Fault {
  readonly kind: "crash" | "isolate" | "partition" | "cut" | "network" | "corrupt"
  readonly label: string
  readonly targets: ReadonlyArray<string>
  readonly start: number
  end: number | undefined
}

export interface Note {
  readonly time: number
  readonly text: string
}

const events: Record<InMemoryBus.TraceEntry["event"], Arrow["event"] | undefined> = {
  deliver: "d",
  drop: "x",
  oversized: "o",
  undeliverable: "u",
  "decode-error": undefined
}

const short = (s: string, n = 60) => (s.length > n ? `${s.slice(0, n)}…` : s)

/** What the message says about ballots, slots and values, in a few words. */
export const describe = (m: Message.Message): { readonly info: string; readonly slot?: number } => {
  switch (m._tag) {
    case "P1a":
      return { info: `ballot ${m.ballot}${m.from === undefined ? "" : ` from slot ${m.from}`}` }
    case "P1b":
      return {
        info:
          `promise ${m.ballot} (asked ${m.request}), ${m.accepted.length} accepted` +
          (m.watermark === undefined ? "" : `, watermark ${m.watermark}`) +
          (m.next === undefined ? "" : `, next page from ${m.next}`)
      }
    case "P2a":
      return { info: `ballot ${m.ballot} slot ${m.slot}: ${short(Command.valueKey(m.value))}`, slot: m.slot }
    case "P2b":
      return {
        info:
          `slot ${m.slot}: ${m.ballot.round === m.request.round && m.ballot.leader === m.request.leader ? "accepted" : `rejected, promised ${m.ballot}`} (asked ${m.request})` +
          (m.watermark === undefined ? "" : `, watermark ${m.watermark}`),
        slot: m.slot
      }
    case "Propose":
      return { info: `slot ${m.slot}: ${short(Command.valueKey(m.value))}`, slot: m.slot }
    case "Decision":
      return { info: `slot ${m.slot} at ${m.ballot}: ${short(Command.valueKey(m.value))}`, slot: m.slot }
    case "Chosen":
      return { info: `slot ${m.slot} at ${m.ballot}: the value its acceptor holds`, slot: m.slot }
    case "Request":
      return { info: `${m.command.client}#${m.command.seq}` }
    case "Response":
      return { info: `seq ${m.seq}, slot ${m.slot}`, slot: m.slot }
    case "Heartbeat":
      return {
        info: `${m.active ? "active" : "passive"} at ${m.ballot}, decided ${m.decided}, slot ${m.slot}, watermark ${m.watermark}`
      }
    case "Progress":
      return {
        info: `durable below ${m.slotOut}${m.history === undefined ? "" : `, ${m.history.length} configurations`}`
      }
    case "History":
      return { info: `configurations ${m.history.map((e) => `from ${e.from}`).join(", ")} after slot ${m.slotOut - 1}` }
    case "StateRequest":
      return { info: `at slot ${m.slotOut}${m.chunks.length > 0 ? `, chunks ${m.chunks.join(",")}` : ""}` }
    case "StateChunk":
      return { info: `chunk ${m.index + 1} of ${m.count} (snapshot at ${m.transfer.slotOut})` }
    case "Read":
      return { info: `${m.client} read ${m.id}` }
    case "ReadResponse":
      return { info: `read ${m.id} at slot ${m.slot}${m.error === undefined ? "" : `: ${short(m.error)}`}` }
    case "ReadIndex":
      return { info: `read index? ${m.id}` }
    case "ReadIndexReply":
      return { info: `read index ${m.id}: slot ${m.slot} (confirmed at ${m.ballot})`, slot: m.slot }
    case "Confirm":
      return { info: `still promised at most ${m.ballot}? (round ${m.round})` }
    case "Confirmed":
      return { info: `promise ${m.ballot} (asked ${m.request}, round ${m.round})` }
    case "Digest":
      return {
        info: `state digest ${m.digest.slice(0, 12)}… at slot ${m.slot}${m.heard ? "" : ", asks for yours"}`,
        slot: m.slot
      }
  }
}

export class Timeline {
  readonly arrows: Array<Arrow> = []
  readonly faults: Array<Fault> = []
  readonly notes: Array<Note> = []
  /** Messages and notes past the bounds: not kept. */
  omittedArrows = 0
  omittedNotes = 0
  violation: Note | undefined
  stall: Note | undefined
  end = 0

  readonly maxMessages: number
  readonly maxNotes: number

  constructor(maxMessages = 20_000, maxNotes = 5_000) {
    this.maxMessages = maxMessages
    this.maxNotes = maxNotes
  }

  /** A bus trace entry (`InMemoryBus.Options.onTrace`). */
  readonly message = (e: InMemoryBus.TraceEntry): void => {
    const event = events[e.event]
    if (event === undefined) return
    if (this.arrows.length >= this.maxMessages) {
      this.omittedArrows++
      return
    }
    const about = e.message === undefined ? undefined : describe(e.message)
    this.arrows.push({
      sent: e.sent,
      time: e.time,
      from: e.from,
      to: e.to,
      tag: e.tag,
      event,
      ...(e.copy === undefined ? {} : { copy: e.copy }),
      ...(about === undefined ? {} : { info: about.info }),
      ...(about?.slot === undefined ? {} : { slot: about.slot })
    })
  }

  note(time: number, text: string): void {
    if (this.notes.length >= this.maxNotes) this.omittedNotes++
    else this.notes.push({ time, text })
  }

  /** A fault starts; it lasts until `close` ends it (or the run ends). */
  open(time: number, kind: Fault["kind"], label: string, targets: ReadonlyArray<string>): void {
    this.faults.push({ kind, label, targets, start: time, end: undefined })
  }

  /** Ends the open faults `which` selects. */
  close(time: number, which: (f: Fault) => boolean): void {
    for (const f of this.faults) if (f.end === undefined && which(f)) f.end = time
  }
}

/** The bus's fault controls, recording each fault into `timeline` as it is set and healed. */
export const observeBus = (
  bus: InMemoryBus.InMemoryBus["Service"],
  timeline: Timeline,
  now: () => number
): InMemoryBus.InMemoryBus["Service"] => {
  const at = <A>(effect: Effect.Effect<A>, record: () => void): Effect.Effect<A> =>
    Effect.andThen(
      Effect.sync(() => record()),
      effect
    )
  const linkFaults = (f: Fault) => f.kind === "isolate" || f.kind === "partition" || f.kind === "cut"
  return {
    ...bus,
    setFaults: (faults) =>
      at(bus.setFaults(faults), () => {
        timeline.close(now(), (f) => f.kind === "network")
        const parts = [
          faults.lossRate ? `loss ${faults.lossRate.toFixed(2)}` : "",
          faults.duplicateRate ? `duplicates ${faults.duplicateRate.toFixed(2)}` : "",
          faults.maxDelay !== undefined ? `delay ≤ ${faults.maxDelay} ms` : "",
          faults.maxReplayDelay ? `late copies ≤ ${faults.maxReplayDelay} ms` : ""
        ].filter((p) => p !== "")
        timeline.open(now(), "network", `network: ${parts.join(", ") || "no faults"}`, [])
      }),
    cut: (from, to) => at(bus.cut(from, to), () => timeline.open(now(), "cut", `cut ${from} → ${to}`, [from])),
    partition: (groups) =>
      at(bus.partition(groups), () => {
        timeline.close(now(), (f) => f.kind === "partition")
        timeline.open(
          now(),
          "partition",
          `partition ${groups.map((g) => `[${g.join(",")}]`).join(" | ")}`,
          groups[0] ?? []
        )
      }),
    isolate: (node) => at(bus.isolate(node), () => timeline.open(now(), "isolate", `isolate ${node}`, [node])),
    reconnect: (node) =>
      at(bus.reconnect(node), () =>
        timeline.close(now(), (f) => f.kind === "isolate" && f.targets.length === 1 && f.targets[0] === node)
      ),
    heal: at(bus.heal, () => timeline.close(now(), linkFaults))
  }
}

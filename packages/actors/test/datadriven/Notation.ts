/**
 * The compact text notation of the data-driven scripts, both ways:
 *
 * - ballots `2.l1` (round.leader), `bottom` for ⊥;
 * - commands `c1#3` (client#seq): a key-value Put of `c1 := "3"`; `c1#3+2000` pads the
 *   value with 2000 characters (for limits counted in bytes);
 * - slot values `noop` or `c1#1,c2#3` (a batch);
 * - pvalues `slot@ballot=value`, lists of them joined by `;`;
 * - messages `<Tag> field=value ...` in the schema's field order, absent fields left out,
 *   e.g. `P1b ballot=2.l1 request=2.l1 accepted=3@1.l2=c1#1 next=5`.
 */
import { Address, Ballot, Command, Message } from "@synod/core"
import { ScriptError } from "./Driver.ts"

export const ballot = (b: Ballot.Ballot): string =>
  Ballot.equals(b, Ballot.bottom) ? "bottom" : `${b.round}.${b.leader}`

export const parseBallot = (text: string): Ballot.Ballot => {
  if (text === "bottom") return Ballot.bottom
  const m = /^(\d+)\.([A-Za-z0-9_-]+)$/.exec(text)
  if (m === null) throw new ScriptError(`not a ballot: ${text} (write round.leader, e.g. 2.l1)`)
  return Ballot.make(Number(m[1]), m[2]!)
}

export const command = (c: Command.Command): string => {
  const op = c.op as { readonly _tag?: unknown; readonly value?: unknown } | null
  const seq = String(c.seq)
  const padded =
    op?._tag === "Put" && typeof op.value === "string" && op.value.startsWith(seq) ? op.value.length - seq.length : 0
  return padded > 0 ? `${Command.commandKey(c)}+${padded}` : Command.commandKey(c)
}

export const parseCommand = (text: string): Command.Command => {
  const m = /^([A-Za-z0-9_-]+)#(\d+)(?:\+(\d+))?$/.exec(text)
  if (m === null) throw new ScriptError(`not a command: ${text} (write client#seq, e.g. c1#1)`)
  const [, client, seq, pad] = m
  const value = seq! + "x".repeat(Number(pad ?? 0))
  return new Command.Command({ client: client!, seq: Number(seq), acked: 0, op: { _tag: "Put", key: client!, value } })
}

export const value = (v: Command.SlotValue): string =>
  v._tag === "Batch" ? v.commands.map(command).join(",") : Command.valueKey(v)

export const parseValue = (text: string): Command.SlotValue =>
  text === "noop" ? Command.noop : new Command.Batch({ commands: text.split(",").map(parseCommand) })

export const pvalue = (pv: Command.PValue): string => `${pv.slot}@${ballot(pv.ballot)}=${value(pv.value)}`

/** `slot@ballot=value`, or `first..last@ballot=value` for the same pvalue in consecutive slots. */
export const parsePValues = (text: string): Array<Command.PValue> =>
  text === ""
    ? []
    : text.split(";").flatMap((item) => {
        const m = /^(\d+)(?:\.\.(\d+))?@([^=]+)=(.+)$/.exec(item)
        if (m === null) throw new ScriptError(`not a pvalue: ${item} (write slot@ballot=value, e.g. 3@1.l2=c1#1)`)
        const [first, last, ballot, value] = [Number(m[1]), Number(m[2] ?? m[1]), parseBallot(m[3]!), parseValue(m[4]!)]
        return Array.from(
          { length: last - first + 1 },
          (_, i) => new Command.PValue({ slot: first + i, ballot, value })
        )
      })

/** Pvalues in slot order, joined by `;`; three or more alike in consecutive slots as `first..last@ballot=value`. */
export const pvalues = (pvs: Iterable<Command.PValue>): string => {
  const bySlot = new Map([...pvs].map((pv) => [pv.slot, pv] as const))
  return slots(bySlot, (pv) => pvalue(pv).slice(pvalue(pv).indexOf("@")))
    .map((item) => item.replace("=@", "@"))
    .join(";")
}

/** One field of a message (or of anything else the scripts print). */
export const field = (v: unknown): string => {
  if (v instanceof Ballot.Ballot) return ballot(v)
  if (v instanceof Command.PValue) return pvalue(v)
  if (v instanceof Command.Command) return command(v)
  if (v instanceof Command.Batch || v instanceof Command.Noop) return value(v)
  if (Array.isArray(v)) return v.every((x) => x instanceof Command.PValue) ? pvalues(v) : v.map(field).join(",")
  if (typeof v === "object" && v !== null) return JSON.stringify(v)
  return String(v)
}

/** A message as `Tag field=value ...`; empty lists are left out. */
export const message = (m: Message.Message): string => {
  const parts: Array<string> = [m._tag]
  for (const [k, v] of Object.entries(m)) {
    if (k === "_tag" || v === undefined || (Array.isArray(v) && v.length === 0)) continue
    parts.push(`${k}=${field(v)}`)
  }
  return parts.join(" ")
}

/** How each message field the scripts can write is read. */
const readers: Record<string, (text: string) => unknown> = {
  ballot: parseBallot,
  request: parseBallot,
  slot: Number,
  id: Number,
  round: Number,
  from: Number,
  before: Number,
  next: Number,
  watermark: Number,
  decided: Number,
  held: Number,
  slotOut: Number,
  to: String,
  active: (t) => {
    if (t !== "true" && t !== "false") throw new ScriptError(`active=${t}: write true or false`)
    return t === "true"
  },
  value: parseValue,
  accepted: parsePValues,
  command: parseCommand,
  history: (t) => JSON.parse(t)
}

const constructors = {
  P1a: Message.P1a,
  P1b: Message.P1b,
  P2a: Message.P2a,
  P2b: Message.P2b,
  Propose: Message.Propose,
  Decision: Message.Decision,
  Chosen: Message.Chosen,
  ReadIndex: Message.ReadIndex,
  Confirmed: Message.Confirmed,
  Request: Message.Request,
  Heartbeat: Message.Heartbeat,
  Progress: Message.Progress,
  History: Message.History
} as const

/** A message from its tag and `field=value` arguments (lists default to empty). */
export const parseMessage = (tag: string, fields: ReadonlyArray<readonly [string, string]>): Message.Message => {
  const make = (constructors as Record<string, new (fields: any) => Message.Message>)[tag]
  if (make === undefined) throw new ScriptError(`no message ${tag} (one of ${Object.keys(constructors).join(", ")})`)
  const input: Record<string, unknown> = tag === "P1b" ? { accepted: [] } : {}
  for (const [k, v] of fields) {
    const read = readers[k]
    if (read === undefined) throw new ScriptError(`${tag}: unknown field ${k}=`)
    input[k] = read(v)
  }
  try {
    return new make(input)
  } catch (e) {
    throw new ScriptError(`${tag}: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/** Who sends a message of this tag, when the script names only the id. */
const senderRole: Record<string, Address.Role> = {
  P1a: "leader",
  P2a: "leader",
  P1b: "acceptor",
  P2b: "acceptor",
  Propose: "replica",
  Progress: "replica",
  History: "replica",
  Decision: "leader",
  Chosen: "leader",
  ReadIndex: "replica",
  Confirmed: "acceptor",
  Heartbeat: "leader",
  Request: "client"
}

/** `a1` (role from the message: P1b comes from an acceptor) or a full address `replica/r1`. */
export const sender = (text: string, tag: string): Address.Address =>
  text.includes("/") ? text : Address.make(senderRole[tag] ?? "client", text)

/** Sends as lines, the same message to several addresses in a row folded into one line. */
export const sends = (
  out: ReadonlyArray<{ readonly to: string; readonly message: Message.Message }>
): Array<string> => {
  const lines: Array<string> = []
  let last: { text: string; to: Array<string> } | undefined
  const flush = () => {
    if (last !== undefined) lines.push(`send ${last.to.join(",")} ${last.text}`)
  }
  for (const { to, message: m } of out) {
    const text = message(m)
    if (last !== undefined && last.text === text) last.to.push(to)
    else {
      flush()
      last = { text, to: [to] }
    }
  }
  flush()
  return lines
}

/** A comma-separated list, `-` when empty. */
export const list = (items: Iterable<unknown>): string => {
  const out = [...items].map(field)
  return out.length === 0 ? "-" : out.join(",")
}

/**
 * Slots and what each holds, in slot order: `1=c1#1 2..40=noop`, consecutive slots with
 * the same text as one range; with `show` absent just the slots (`3 5..9`).
 */
export const slots = <V>(entries: ReadonlyMap<number, V>, show?: (v: V) => string): Array<string> => {
  const sorted = [...entries].map(([slot, v]) => [slot, show?.(v)] as const).sort(([a], [b]) => a - b)
  const out: Array<string> = []
  for (let i = 0; i < sorted.length; ) {
    const [first, text] = sorted[i]!
    let j = i + 1
    while (j < sorted.length && sorted[j]![0] === sorted[j - 1]![0] + 1 && sorted[j]![1] === text) j++
    const items = j - i > 2 ? [`${first}..${sorted[j - 1]![0]}`] : sorted.slice(i, j).map(([s]) => `${s}`)
    for (const item of items) out.push(text === undefined ? item : `${item}=${text}`)
    i = j
  }
  return out
}

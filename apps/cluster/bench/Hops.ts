/**
 * `pnpm bench nats --hops`: where one client's time goes, hop by hop. The client and
 * the three servers write a hop log (`@synod/core` `HopLog`); this reads the logs back,
 * merges them by time and follows each command from the client's start to its end
 * through the milestones of its critical path — for each milestone the first event after
 * the previous one that matches it, in whichever process — and prints the median and
 * 90th percentile of each step across the commands.
 *
 * The steps are the protocol's, as the leader hint leaves them (docs/protocol.md#client):
 * the client's request reaches the replica next to the leader, phase 2 crosses the
 * network once each way, and the decision is local to that replica.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { percentile } from "./Cluster.ts"

interface Event {
  readonly us: number
  readonly process: string
  readonly text: string
}

interface Milestone {
  /** What the step up to this milestone is, as printed. */
  readonly step: string
  readonly match: RegExp
  /** Only events of the client process (the bench itself). */
  readonly client?: true
  /** The command did not take this path if such an event comes between the previous milestone and this one. */
  readonly unless?: RegExp
}

/** A write's critical path (`Put`). */
const write: ReadonlyArray<Milestone> = [
  { step: "client: submit → request sent", match: /^send replica\/\S+ Request( \d+)?$/, client: true },
  { step: "NATS: request → replica's process", match: /^recv replica\/\S+ Request$/ },
  { step: "replica → leader (in process)", match: /^step leader\/\S+ Propose$/ },
  { step: "leader: P2a sent", match: /^send acceptor\/\S+ P2a( \d+)?$/ },
  { step: "NATS: P2a → an acceptor's process", match: /^recv acceptor\/\S+ P2a$/ },
  { step: "acceptor: write + fsync", match: /^persist- acceptor\// },
  { step: "acceptor: P2b sent", match: /^send leader\/\S+ P2b( \d+)?$/ },
  { step: "NATS: P2b → leader's process", match: /^recv leader\/\S+ P2b$/ },
  { step: "a majority of P2bs, decision → replica", match: /^step replica\/\S+ (Decision|Chosen)$/ },
  { step: "replica: perform, answer sent", match: /^send client\/\S+ Response( \d+)?$/ },
  { step: "NATS: answer → client's process", match: /^recv client\/\S+ Response$/, client: true },
  { step: "client: answer → caller", match: /^C done$/, client: true }
]

/** A linearizable read's critical path under the leader's read lease (`Get`, no round trip to the acceptors). */
const leasedRead: ReadonlyArray<Milestone> = [
  { step: "client: read → request sent", match: /^send replica\/\S+ Read( \d+)?$/, client: true },
  { step: "NATS: request → replica's process", match: /^recv replica\/\S+ Read$/ },
  { step: "replica → leader (in process)", match: /^step leader\/\S+ ReadIndex$/ },
  {
    step: "leader: read index → replica",
    match: /^step replica\/\S+ ReadIndexReply$/,
    unless: /^send acceptor\/\S+ Confirm( \d+)?$/
  },
  { step: "replica: query, answer sent", match: /^send client\/\S+ ReadResponse( \d+)?$/ },
  { step: "NATS: answer → client's process", match: /^recv client\/\S+ ReadResponse$/, client: true },
  { step: "client: answer → caller", match: /^C done$/, client: true }
]

/** A linearizable read's critical path with a confirmation round (`Get` by read index, no lease held). */
const read: ReadonlyArray<Milestone> = [
  { step: "client: read → request sent", match: /^send replica\/\S+ Read( \d+)?$/, client: true },
  { step: "NATS: request → replica's process", match: /^recv replica\/\S+ Read$/ },
  { step: "replica → leader (in process)", match: /^step leader\/\S+ ReadIndex$/ },
  { step: "leader: Confirm sent", match: /^send acceptor\/\S+ Confirm( \d+)?$/ },
  { step: "NATS: Confirm → an acceptor's process", match: /^recv acceptor\/\S+ Confirm$/ },
  { step: "acceptor: Confirmed sent", match: /^send leader\/\S+ Confirmed( \d+)?$/ },
  { step: "NATS: Confirmed → leader's process", match: /^recv leader\/\S+ Confirmed$/ },
  { step: "read index → replica (in process)", match: /^step replica\/\S+ ReadIndexReply$/ },
  { step: "replica: query, answer sent", match: /^send client\/\S+ ReadResponse( \d+)?$/ },
  { step: "NATS: answer → client's process", match: /^recv client\/\S+ ReadResponse$/, client: true },
  { step: "client: answer → caller", match: /^C done$/, client: true }
]

/** Every process's hop log in `dir`, merged in time order. */
const load = (dir: string): Array<Event> => {
  const events: Array<Event> = []
  for (const name of readdirSync(dir)) {
    if (!name.endsWith(".log")) continue
    const process = name.slice(0, -4)
    for (const line of readFileSync(join(dir, name), "utf8").split("\n")) {
      const space = line.indexOf(" ")
      if (space < 0) continue
      events.push({ us: Number(line.slice(0, space)), process, text: line.slice(space + 1) })
    }
  }
  return events.sort((a, b) => a.us - b.us)
}

/** The steps of each command of kind `op` (the client's `C start` … `C done` windows), in ms. */
const steps = (events: ReadonlyArray<Event>, client: string, path: ReadonlyArray<Milestone>, request: RegExp) => {
  const starts: Array<number> = []
  events.forEach((e, i) => {
    if (e.process === client && e.text === "C start") starts.push(i)
  })
  const rows: Array<Array<number>> = []
  for (let k = 0; k + 1 < starts.length; k++) {
    const window = events.slice(starts[k], starts[k + 1])
    // the command's kind: its client's first request
    const first = window.find((e) => e.process === client && e.text.startsWith("send replica/"))
    if (first === undefined || !request.test(first.text)) continue
    const row: Array<number> = []
    let at = window[0]!.us
    let j = 0
    for (const m of path) {
      const from = j
      while (
        j < window.length &&
        !(window[j]!.us >= at && m.match.test(window[j]!.text) && (m.client !== true || window[j]!.process === client))
      ) {
        j++
      }
      if (j >= window.length) break
      const unless = m.unless
      if (unless !== undefined && window.slice(from, j).some((e) => unless.test(e.text))) break
      row.push((window[j]!.us - at) / 1000)
      at = window[j]!.us
    }
    if (row.length === path.length) rows.push(row)
  }
  return rows
}

/** Prints the breakdown of the writes and the reads logged in `dir` by the client process `client` (its pid). */
export const print = (dir: string, client: string, out: (line: string) => void): void => {
  const events = load(dir)
  for (const [name, path, request] of [
    ["write", write, /Request( \d+)?$/],
    ["read under the lease", leasedRead, /Read( \d+)?$/],
    ["read with a confirmation round", read, /Read( \d+)?$/]
  ] as const) {
    const rows = steps(events, client, path, request)
    if (rows.length === 0) {
      out(`${name}: no command followed its whole path (was the leader's replica asked?)`)
      continue
    }
    const totals = rows.map((r) => r.reduce((a, b) => a + b, 0)).sort((a, b) => a - b)
    out(
      `${name}: ${rows.length} commands followed end to end, p50 ${percentile(totals, 50).toFixed(2)} ms (sum of the steps)`
    )
    out("  step                                      p50 ms   p90 ms")
    path.forEach((m, i) => {
      const column = rows.map((r) => r[i]!).sort((a, b) => a - b)
      out(
        `  ${m.step.padEnd(40)} ${percentile(column, 50).toFixed(2).padStart(7)} ${percentile(column, 90).toFixed(2).padStart(8)}`
      )
    })
  }
}

/**
 * How much a listener logs about the messages it drops. Anybody who may publish on a
 * subject can send a server garbage as fast as NATS carries it, and a warning line for
 * each (about 200 a second per server, measured with junk at 6,800 messages a second)
 * would fill its log and its disk with the same line: so each kind of line is written at
 * most `perWindow` times in `windowMs`, and the rest are counted and summed up in one
 * line when the window ends. The metrics still count every message.
 *
 * Pure: the caller passes the time, takes the lines due and writes them.
 *
 * @since 0.2.0
 */

/** One log line: `kind` is what the budget counts by (one per kind of problem). */
export interface Line {
  readonly kind: string
  readonly message: string
  readonly fields: Readonly<Record<string, unknown>>
  /** How many messages the line stands for (1, or the count of an overflow). */
  readonly count: number
}

/** A window's summary: the last line counted, and how many messages the counted lines stood for. */
export interface Summary {
  readonly line: Line
  readonly more: number
  readonly windowMs: number
}

interface Window {
  readonly start: number
  logged: number
  more: number
  last: Line | undefined
}

export class LogBudget {
  private readonly windows = new Map<string, Window>()
  /** Summaries of windows that `admit` found over before `due` gave them. */
  private readonly ended: Array<Summary> = []
  readonly perWindow: number
  readonly windowMs: number
  constructor(perWindow: number, windowMs: number) {
    this.perWindow = perWindow
    this.windowMs = windowMs
  }

  /** Whether `line` is written now; if not, it is counted towards its kind's summary. */
  admit(line: Line, now: number): boolean {
    let w = this.windows.get(line.kind)
    if (w === undefined || now >= w.start + this.windowMs) {
      if (w?.last !== undefined) this.ended.push({ line: w.last, more: w.more, windowMs: this.windowMs })
      w = { start: now, logged: 0, more: 0, last: undefined }
      this.windows.set(line.kind, w)
    }
    if (w.logged < this.perWindow) {
      w.logged++
      return true
    }
    w.more += line.count
    w.last = line
    return false
  }

  /** The summaries of the windows over by `now` that counted lines, each given once. */
  due(now: number): Array<Summary> {
    const out = this.ended.splice(0)
    for (const [kind, w] of this.windows) {
      if (now < w.start + this.windowMs) continue
      this.windows.delete(kind)
      if (w.last !== undefined) out.push({ line: w.last, more: w.more, windowMs: this.windowMs })
    }
    return out
  }

  /** When the next summary is due, if a window counted lines. */
  nextDue(now: number): number | undefined {
    if (this.ended.length > 0) return now
    let at: number | undefined
    for (const w of this.windows.values()) {
      if (w.last !== undefined && (at === undefined || w.start + this.windowMs < at)) at = w.start + this.windowMs
    }
    return at
  }
}

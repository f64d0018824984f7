/**
 * A small data-driven test driver in the manner of cockroachdb/datadriven, as etcd-io/raft
 * uses it for its testdata/*.txt scripts. A script is a sequence of blocks:
 *
 * ```
 * # comments and blank lines between blocks are kept as they are
 * <command> <arg> <key>=<value> ...
 * ----
 * <expected output, one or more lines; "ok" when there is none>
 * <blank line>
 * ```
 *
 * `runScript` feeds each command to a handler and compares what it returns (see
 * `foldRuns`) with the expected block. With `REWRITE=1` in the environment it writes the actual output into
 * the file instead (datadriven's `-rewrite`), so a new script is written without outputs
 * and filled in by one run, and then read and checked by a human.
 */
import * as fs from "node:fs"

/** One command line, split into positional arguments and `key=value` arguments. */
export class Cmd {
  readonly name: string
  readonly positional: ReadonlyArray<string>
  private readonly kv = new Map<string, string>()
  private readonly used = new Set<string>()

  readonly text: string

  constructor(text: string) {
    this.text = text
    const [name = "", ...tokens] = text.trim().split(/\s+/)
    this.name = name
    const positional: Array<string> = []
    for (const t of tokens) {
      const eq = t.indexOf("=")
      if (eq <= 0) positional.push(t)
      else if (this.kv.has(t.slice(0, eq))) throw new ScriptError(`argument ${t.slice(0, eq)} given twice`)
      else this.kv.set(t.slice(0, eq), t.slice(eq + 1))
    }
    this.positional = positional
  }

  /** The `i`th positional argument. */
  arg(i: number, what: string): string {
    const a = this.positional[i]
    if (a === undefined) throw new ScriptError(`${this.name}: missing ${what}`)
    return a
  }

  has(key: string): boolean {
    return this.kv.has(key)
  }

  /** The value of `key=`, or `fallback`; without a fallback the argument is required. */
  get(key: string, fallback?: string): string {
    this.used.add(key)
    const v = this.kv.get(key) ?? fallback
    if (v === undefined) throw new ScriptError(`${this.name}: missing ${key}=`)
    return v
  }

  int(key: string, fallback?: number): number {
    const v = this.get(key, fallback === undefined ? undefined : String(fallback))
    const n = Number(v)
    if (!Number.isInteger(n)) throw new ScriptError(`${this.name}: ${key}=${v} is not an integer`)
    return n
  }

  /** Every `key=value` argument not read yet (for handlers that take arbitrary fields). */
  rest(): Array<[string, string]> {
    const out: Array<[string, string]> = []
    for (const [k, v] of this.kv) if (!this.used.has(k)) out.push([k, v])
    for (const [k] of out) this.used.add(k)
    return out
  }

  /** Throws if an argument was given that the handler never read: a typo in the script. */
  done(): void {
    for (const k of this.kv.keys()) if (!this.used.has(k)) throw new ScriptError(`${this.name}: unknown argument ${k}=`)
  }
}

/** A mistake in the script (not a difference in output): fails the test at once, never rewritten. */
export class ScriptError extends Error {}

/** Runs one command; returns the output lines. */
export type Handler = (cmd: Cmd) => ReadonlyArray<string>

interface Block {
  /** 1-based line of the command. */
  readonly line: number
  readonly command: string
  /** 0-based index of the first expected line, and of the line after the last one. */
  readonly start: number
  readonly end: number
  readonly expected: string
}

export const parse = (file: string, text: string): { lines: Array<string>; blocks: Array<Block> } => {
  const lines = text.split("\n")
  const blocks: Array<Block> = []
  let i = 0
  while (i < lines.length) {
    const line = lines[i]!
    if (line.trim() === "" || line.startsWith("#")) {
      i++
      continue
    }
    if (lines[i + 1] !== "----") throw new ScriptError(`${file}:${i + 1}: "${line}" is not followed by ----`)
    const start = i + 2
    let end = start
    while (end < lines.length && lines[end]!.trim() !== "") end++
    blocks.push({ line: i + 1, command: line, start, end, expected: lines.slice(start, end).join("\n") })
    i = end
  }
  return { lines, blocks }
}

export interface Mismatch {
  readonly where: string
  readonly command: string
  readonly expected: string
  readonly actual: string
}

/** A number standing alone as a value: after `=`, `|` or a space, before a space, `,`, `;`, `@` or the end. */
const value = /(?<=[=| ])\d+(?=[ ,;@]|$)/g

/** A line as its text around the standalone numbers, and those numbers. */
const shape = (line: string) => ({
  text: line.split(value).join("\u0000"),
  numbers: (line.match(value) ?? []).map(Number)
})

/** The one place where `b`'s numbers differ from `a`'s, by exactly +1 (else undefined). */
const successor = (a: ReturnType<typeof shape>, b: ReturnType<typeof shape>): number | undefined => {
  if (a.text !== b.text || a.numbers.length !== b.numbers.length) return undefined
  let at: number | undefined
  for (let i = 0; i < a.numbers.length; i++) {
    if (a.numbers[i] === b.numbers[i]) continue
    if (at !== undefined || b.numbers[i] !== a.numbers[i]! + 1) return undefined
    at = i
  }
  return at
}

/**
 * Three or more lines in a row that differ only in one number counting up by one are
 * printed as one, with the range `first..last` in its place: `start commander 1.l1|1..40
 * value=noop` stands for 40 lines. Then three or more equal lines in a row are printed
 * as one with ` (xN)` after it.
 */
export const foldRuns = (lines: ReadonlyArray<string>): Array<string> => {
  const out: Array<string> = []
  for (const line of foldRanges(lines)) {
    const last = out[out.length - 1]
    const m = last === undefined ? null : /^(.*) \(x(\d+)\)$/.exec(last)
    if (m !== null && m[1] === line) out[out.length - 1] = `${line} (x${Number(m[2]) + 1})`
    else if (last === line && out[out.length - 2] === line) out.splice(-2, 2, `${line} (x3)`)
    else out.push(line)
  }
  return out
}

const foldRanges = (lines: ReadonlyArray<string>): Array<string> => {
  const out: Array<string> = []
  const shapes = lines.map(shape)
  let i = 0
  while (i < lines.length) {
    const at = i + 1 < lines.length ? successor(shapes[i]!, shapes[i + 1]!) : undefined
    let j = i + 1
    if (at !== undefined) while (j < lines.length && successor(shapes[j - 1]!, shapes[j]!) === at) j++
    if (at === undefined || j - i < 3) {
      out.push(lines[i]!)
      i++
      continue
    }
    let n = 0
    const first = shapes[i]!.numbers[at]!
    const last = shapes[j - 1]!.numbers[at]!
    out.push(lines[i]!.replace(value, (m) => (n++ === at ? `${first}..${last}` : m)))
    i = j
  }
  return out
}

const render = (output: ReadonlyArray<string>): string => {
  if (output.length === 0) return "ok"
  for (const l of output) if (l.trim() === "") throw new Error("an output line is blank")
  return foldRuns(output).join("\n")
}

/**
 * Runs the script at `path` with a fresh handler; returns the blocks whose output differs
 * (all of them, each against the output the script expects). With `rewrite` it writes the
 * actual outputs into the file and returns none.
 */
export const runScript = (path: string, handler: Handler, rewrite: boolean): Array<Mismatch> => {
  const { lines, blocks } = parse(path, fs.readFileSync(path, "utf8"))
  const mismatches: Array<Mismatch> = []
  const outputs: Array<string> = []
  for (const block of blocks) {
    let actual: string
    try {
      const cmd = new Cmd(block.command)
      actual = render(handler(cmd))
      cmd.done()
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e)
      const error = new Error(`${path}:${block.line}: ${block.command}\n${message}`)
      if (!(e instanceof ScriptError) && e instanceof Error) error.stack = `${error.message}\n${e.stack}`
      throw error
    }
    outputs.push(actual)
    if (actual !== block.expected) {
      mismatches.push({ where: `${path}:${block.line}`, command: block.command, expected: block.expected, actual })
    }
  }
  if (!rewrite) return mismatches
  const out: Array<string> = []
  let at = 0
  blocks.forEach((block, i) => {
    out.push(...lines.slice(at, block.start), outputs[i]!)
    at = block.end
  })
  out.push(...lines.slice(at))
  const text = out.join("\n")
  fs.writeFileSync(path, text.endsWith("\n") ? text : `${text}\n`)
  return []
}

/** A readable report of the first differing block (later ones usually follow from it). */
export const report = (mismatches: ReadonlyArray<Mismatch>): string => {
  const [first, ...others] = mismatches
  if (first === undefined) return ""
  const more =
    others.length === 0
      ? ""
      : `\n(${others.length} later blocks differ too: ${others.map((m) => m.where.slice(m.where.lastIndexOf(":") + 1)).join(", ")})`
  return (
    `${first.where}: ${first.command}\n` +
    `expected:\n${first.expected}\n` +
    `actual:\n${first.actual}\n` +
    `(REWRITE=1 writes the actual outputs into the script)${more}`
  )
}

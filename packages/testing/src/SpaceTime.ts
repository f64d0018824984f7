/**
 * A simulation run as one self-contained HTML page (`pnpm sim --seed S --html FILE`): a
 * space-time diagram with each process as a horizontal line and each message as an arrow
 * from its sending to its arrival, in a colour per message type (drops end in a red ×,
 * duplicates are dashed, replays dotted), faults shaded over the processes they hit
 * (crashes, isolation, cuts, partitions; the network's loss and delay in a band on top),
 * the nemesis's and clients' notes on a line of their own, and the first invariant
 * violation as a red line with the processes it names and its slot's messages picked out.
 * A slider moves a window over the simulated time.
 *
 * The page loads nothing: its data, style and script are inline. What it holds is bounded
 * by the `Timeline` (the first 20,000 messages), and a window draws at most `maxDrawn`
 * arrows; the page says when either bound cut something.
 *
 * @since 0.2.0
 */
import type { Timeline } from "./Timeline.ts"

export interface PageInfo {
  readonly title: string
  /** One line: the scenario. */
  readonly scenario: string
  /** One line: how the run ended. */
  readonly outcome: string
  readonly failed: boolean
  /** The command that replays the run. */
  readonly replay?: string
}

/** Arrows drawn in one window at most; a wider window says how many it left out. */
export const maxDrawn = 3000

/** JSON safe inside a `<script>` element. */
const scriptJson = (value: unknown): string =>
  JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029")

const escapeHtml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

export const render = (timeline: Timeline, info: PageInfo): string => {
  const data = {
    arrows: timeline.arrows,
    faults: timeline.faults,
    notes: timeline.notes,
    violation: timeline.violation ?? null,
    stall: timeline.stall ?? null,
    end: Math.max(timeline.end, ...timeline.arrows.slice(-1).map((a) => a.time)),
    omittedArrows: timeline.omittedArrows,
    omittedNotes: timeline.omittedNotes,
    maxMessages: timeline.maxMessages,
    maxDrawn,
    failed: info.failed
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(info.title)}</title>
<style>${style}</style>
</head>
<body>
<header>
  <h1>${escapeHtml(info.title)}</h1>
  <p class="scenario">${escapeHtml(info.scenario)}</p>
  <p class="outcome ${info.failed ? "bad" : "good"}" id="outcome">${escapeHtml(info.outcome)}</p>
  ${info.replay === undefined ? "" : `<p class="replay">replay: <code>${escapeHtml(info.replay)}</code></p>`}
  <p id="violation" hidden></p>
  <p id="bounds" hidden></p>
</header>
<div id="controls">
  <label>time <input id="time" type="range" min="0" max="0" step="1" value="0"></label>
  <label>window <select id="span">
    <option value="20">20 ms</option><option value="50">50 ms</option><option value="100" selected>100 ms</option>
    <option value="250">250 ms</option><option value="1000">1 s</option><option value="5000">5 s</option>
    <option value="0">the whole run</option>
  </select></label>
  <button id="prev" type="button" title="earlier (←)">◀</button><button id="next" type="button" title="later (→)">▶</button>
  <button id="to-violation" type="button" hidden>go to the violation</button>
  <span id="window"></span>
</div>
<div id="legend"></div>
<div id="diagram"><svg id="view" xmlns="http://www.w3.org/2000/svg"></svg></div>
<p id="drawn"></p>
<h2>Notes in this window</h2>
<ol id="notes"></ol>
<script type="application/json" id="data">${scriptJson(data)}</script>
<script>${script}</script>
</body>
</html>
`
}

const style = `
body { font: 13px/1.4 system-ui, sans-serif; margin: 12px 16px; color: #222; background: #fff; }
h1 { font-size: 18px; margin: 0 0 4px; } h2 { font-size: 14px; margin: 12px 0 4px; }
header p { margin: 2px 0; } .scenario { color: #555; } code { font-size: 12px; }
.outcome.good { color: #1b7d2b; } .outcome.bad { color: #b00020; font-weight: 600; }
#violation { background: #fde8ea; border: 2px solid #d0021b; color: #8a0014; padding: 6px 8px; font-weight: 600; }
#bounds { color: #8a5a00; }
#controls { display: flex; gap: 10px; align-items: center; margin: 8px 0; flex-wrap: wrap; }
#time { width: 480px; }
#legend { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 6px; }
#legend label { display: inline-flex; gap: 4px; align-items: center; }
#legend .swatch { display: inline-block; width: 18px; height: 4px; border-radius: 2px; }
#diagram { border: 1px solid #ccc; overflow-x: hidden; }
svg text { font: 11px system-ui, sans-serif; }
.row-label { fill: #333; } .row-label.suspect { fill: #d0021b; font-weight: 700; }
.row-line { stroke: #bbb; stroke-width: 1; } .row-line.suspect { stroke: #d0021b; stroke-width: 2; }
.msg { stroke-width: 1.4; fill: none; } .msg.hot { stroke-width: 3.2; }
.msg.duplicate { stroke-dasharray: 5 3; } .msg.replay { stroke-dasharray: 1.5 2.5; }
.drop-mark { stroke: #d0021b; stroke-width: 2; }
.fault { opacity: 0.35; } .fault.crash { fill: #777; opacity: 0.45; } .fault.isolate { fill: #e57373; }
.fault.cut { fill: #ffb74d; } .fault.partition { fill: #fff176; opacity: 0.55; } .fault.network { fill: #90a4ae; } .fault.corrupt { fill: #ba68c8; }
.note-tick { stroke: #555; stroke-width: 1.5; } .note-tick.client { stroke: #c2185b; }
#violation-line { stroke: #d0021b; stroke-width: 2.5; }
#notes { max-height: 260px; overflow-y: auto; font-family: ui-monospace, monospace; font-size: 12px; }
#notes li.violation { color: #b00020; font-weight: 700; }
`

// The page's script: plain browser JavaScript, no dependencies.
const script = `
"use strict";
(() => {
const data = JSON.parse(document.getElementById("data").textContent);
const colours = { P1a: "#1f5fbf", P1b: "#17a2c8", P2a: "#2e9e3e", P2b: "#e08a00", Decision: "#8e3fb0", Chosen: "#b07cc6",
  Propose: "#8c564b", Request: "#d63384", Response: "#f06292", Heartbeat: "#c8c8c8", Progress: "#9e9e9e",
  StateRequest: "#00796b", StateChunk: "#26a69a", Read: "#ad1457", ReadResponse: "#ec407a", ReadIndex: "#5d4037",
  ReadIndexReply: "#a1887f", Confirm: "#0d47a1", Confirmed: "#4fc3f7",
  Digest: "#6d4c41", History: "#7cb342" };
const order = ["P1a", "P1b", "P2a", "P2b", "Decision", "Chosen", "Propose", "Request", "Response", "Heartbeat", "Progress", "StateRequest", "StateChunk",
  "Read", "ReadResponse", "ReadIndex", "ReadIndexReply", "Confirm", "Confirmed", "Digest", "History"];
const roleRank = { client: 0, replica: 1, leader: 2, acceptor: 3, learner: 4 };
const SVG = "http://www.w3.org/2000/svg";
const el = (name, attrs, parent) => { const e = document.createElementNS(SVG, name); for (const k in attrs) e.setAttribute(k, attrs[k]); if (parent) parent.appendChild(e); return e; };
const idOf = (a) => a.slice(a.indexOf("/") + 1);

// processes: every address that sent, received or crashed, by role then id
const procs = new Set();
for (const a of data.arrows) { procs.add(a.from); procs.add(a.to); }
for (const f of data.faults) if (f.kind === "crash") for (const t of f.targets) procs.add(t);
const rows = [...procs].sort((a, b) => {
  const ra = roleRank[a.slice(0, a.indexOf("/"))] ?? 9, rb = roleRank[b.slice(0, b.indexOf("/"))] ?? 9;
  return ra - rb || idOf(a).localeCompare(idOf(b), "en", { numeric: true });
});
const rowOf = new Map(rows.map((r, i) => [r, i]));
const tags = order.filter((t) => data.arrows.some((a) => a.tag === t)).concat([...new Set(data.arrows.map((a) => a.tag))].filter((t) => !order.includes(t)));
const shown = new Set(tags);

// the violation: the processes it names and the slot it is about
const violation = data.violation;
const suspects = new Set();
let hotSlot;
if (violation) {
  for (const r of rows) { const id = idOf(r); if (new RegExp("(^|[^A-Za-z0-9_-])" + id + "([^A-Za-z0-9_-]|$)").test(violation.text)) suspects.add(r); }
  const m = /slot (\\d+)/.exec(violation.text); if (m) hotSlot = Number(m[1]);
  const v = document.getElementById("violation");
  v.hidden = false; v.textContent = "Invariant violated at " + violation.time + " ms: " + violation.text;
  document.getElementById("to-violation").hidden = false;
}
if (data.omittedArrows > 0 || data.omittedNotes > 0) {
  const b = document.getElementById("bounds"); b.hidden = false;
  b.textContent = "This page holds the first " + data.maxMessages + " messages of the run; " + data.omittedArrows +
    " later messages" + (data.omittedNotes > 0 ? " and " + data.omittedNotes + " later notes" : "") + " are not drawn.";
}

// legend: one checkbox per message type
const legend = document.getElementById("legend");
for (const t of tags) {
  const l = document.createElement("label");
  const c = document.createElement("input"); c.type = "checkbox"; c.checked = true; c.dataset.tag = t;
  c.addEventListener("change", () => { if (c.checked) shown.add(t); else shown.delete(t); draw(); });
  const s = document.createElement("span"); s.className = "swatch"; s.style.background = colours[t] || "#444";
  l.append(c, s, document.createTextNode(" " + t + " (" + data.arrows.filter((a) => a.tag === t).length + ")"));
  legend.appendChild(l);
}
const extra = document.createElement("span");
extra.textContent = "· dashed: duplicate · dotted: replayed · red ×: dropped · grey: crashed · red: isolated · orange: cut · yellow: partitioned";
legend.appendChild(extra);

const slider = document.getElementById("time"), span = document.getElementById("span");
slider.max = String(data.end);
const svg = document.getElementById("view");
const labelW = 120, top = 34, rowH = 24;
const spanMs = () => Number(span.value) || Math.max(1, data.end);

function draw() {
  const width = Math.max(600, document.getElementById("diagram").clientWidth);
  const height = top + rows.length * rowH + 8;
  svg.setAttribute("width", width); svg.setAttribute("height", height);
  svg.replaceChildren();
  const w = spanMs();
  const t0 = Number(span.value) === 0 ? 0 : Math.min(Number(slider.value), Math.max(0, data.end - w));
  const t1 = t0 + w;
  const x = (t) => labelW + ((t - t0) / w) * (width - labelW - 10);
  const y = (r) => top + rowOf.get(r) * rowH + rowH / 2;
  const clip = el("clipPath", { id: "plot" }, el("defs", {}, svg));
  el("rect", { x: labelW, y: 0, width: width - labelW, height }, clip);
  const defs = svg.firstChild;
  for (const t of tags) {
    const m = el("marker", { id: "head-" + t, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z", fill: colours[t] || "#444" }, m);
  }
  // time axis
  const step = Math.pow(10, Math.floor(Math.log10(w / 5)));
  const tick = w / step > 10 ? step * 2 : step;
  for (let t = Math.ceil(t0 / tick) * tick; t <= t1; t += tick) {
    el("line", { x1: x(t), x2: x(t), y1: 12, y2: height, stroke: "#eee" }, svg);
    el("text", { x: x(t) + 2, y: 10, fill: "#777" }, svg).textContent = t + " ms";
  }
  const plot = el("g", { "clip-path": "url(#plot)" }, svg);
  // faults
  for (const f of data.faults) {
    const end = f.end ?? data.end;
    if (end < t0 || f.start > t1) continue;
    const hit = f.kind === "network" ? [] : rows.filter((r) => f.targets.some((t) => t === r || t === idOf(r)));
    const title = f.label + " (" + f.start + "–" + (f.end ?? "end") + " ms)";
    if (f.kind === "network") {
      const r = el("rect", { class: "fault network", x: x(f.start), y: 14, width: Math.max(1, x(end) - x(f.start)), height: 8 }, plot);
      el("title", {}, r).textContent = title;
    }
    for (const p of hit) {
      const r = el("rect", { class: "fault " + f.kind, x: x(f.start), y: y(p) - rowH / 2 + 2, width: Math.max(1, x(end) - x(f.start)), height: rowH - 4 }, plot);
      el("title", {}, r).textContent = title;
    }
  }
  // process lines
  for (const r of rows) {
    const s = suspects.has(r) ? " suspect" : "";
    el("line", { class: "row-line" + s, x1: labelW, x2: width, y1: y(r), y2: y(r) }, svg);
    el("text", { class: "row-label" + s, x: 4, y: y(r) + 4 }, svg).textContent = r;
  }
  // notes on the top line
  for (const n of data.notes) {
    if (n.time < t0 || n.time > t1) continue;
    const t = el("line", { class: "note-tick" + (n.text.startsWith("client") ? " client" : ""), x1: x(n.time), x2: x(n.time), y1: 22, y2: 30 }, plot);
    el("title", {}, t).textContent = n.time + " ms: " + n.text;
  }
  // arrows
  let drawn = 0, inWindow = 0;
  for (const a of data.arrows) {
    if (a.time < t0 || a.sent > t1 || !shown.has(a.tag)) continue;
    inWindow++;
    if (drawn >= data.maxDrawn) continue;
    drawn++;
    const hot = hotSlot !== undefined && a.slot === hotSlot;
    const x1 = x(a.sent), y1 = y(a.from);
    let x2 = x(a.time), y2 = y(a.to);
    const lost = a.event !== "d";
    if (lost) { x2 = x1 + (x2 - x1) / 2 + 6; y2 = y1 + (y2 - y1) / 2; }
    if (x2 - x1 < 4 && !lost) x2 = x1 + 4;
    const cls = "msg tag-" + a.tag + (a.copy ? " " + a.copy : "") + (lost ? " lost" : "") + (hot ? " hot" : "");
    const line = el("line", { class: cls, x1, y1, x2, y2, stroke: colours[a.tag] || "#444" }, plot);
    if (!lost) line.setAttribute("marker-end", "url(#head-" + a.tag + ")");
    el("title", {}, line).textContent = a.tag + " " + a.from + " → " + a.to + ", sent " + a.sent + " ms, " +
      (a.event === "d" ? "delivered " + a.time + " ms" : a.event === "x" ? "dropped" : a.event === "o" ? "dropped: larger than a message" : "nobody listening") +
      (a.copy ? " (" + a.copy + ")" : "") + (a.info ? "\\n" + a.info : "");
    if (lost) {
      el("path", { class: "drop-mark", d: "M" + (x2 - 4) + "," + (y2 - 4) + "l8,8 m0,-8 l-8,8" }, plot);
    }
  }
  if (violation && violation.time >= t0 && violation.time <= t1) {
    const v = el("line", { id: "violation-line", x1: x(violation.time), x2: x(violation.time), y1: 12, y2: height }, svg);
    el("title", {}, v).textContent = violation.text;
  }
  document.getElementById("window").textContent = "showing " + t0 + "–" + Math.min(t1, data.end) + " ms of " + data.end + " ms";
  document.getElementById("drawn").textContent = drawn + " messages drawn" +
    (inWindow > drawn ? " (" + (inWindow - drawn) + " more in this window are not drawn: narrow the window)" : "");
  // the notes of the window
  const list = document.getElementById("notes");
  list.replaceChildren();
  const items = data.notes.filter((n) => n.time >= t0 && n.time <= t1).slice(0, 500);
  if (violation && violation.time >= t0 && violation.time <= t1) items.push({ time: violation.time, text: "VIOLATION " + violation.text, violation: true });
  for (const n of items) {
    const li = document.createElement("li");
    li.textContent = n.time + " ms  " + n.text;
    if (n.violation) li.className = "violation";
    list.appendChild(li);
  }
}

const move = (by) => { slider.value = String(Math.max(0, Math.min(data.end, Number(slider.value) + by))); draw(); };
slider.addEventListener("input", draw);
span.addEventListener("change", draw);
document.getElementById("prev").addEventListener("click", () => move(-spanMs() / 2));
document.getElementById("next").addEventListener("click", () => move(spanMs() / 2));
document.getElementById("to-violation").addEventListener("click", () => { slider.value = String(Math.max(0, violation.time - Math.floor(spanMs() * 0.8))); draw(); });
document.addEventListener("keydown", (e) => { if (e.target === slider) return; if (e.key === "ArrowLeft") move(-spanMs() / 2); if (e.key === "ArrowRight") move(spanMs() / 2); });
window.addEventListener("resize", draw);
// a failing run opens on its violation
if (violation) slider.value = String(Math.max(0, violation.time - Math.floor(spanMs() * 0.8)));
draw();
})();
`

/**
 * The dashboard's page (`GET /ui`): one HTML document with its style and script inline,
 * fed by the Server-Sent Events of `/ui/events` (see `Dashboard.ts`). Charts are SVG drawn
 * by the script: nothing is fetched from anywhere else, and there is no build step.
 *
 * @since 0.2.0
 */

const style = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 16px 20px; color: #1d232b; background: #f6f7f9; }
h1 { font-size: 20px; margin: 0; } h2 { font-size: 15px; margin: 0 0 8px; }
header { display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; margin-bottom: 12px; }
#live { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #ddd; }
#live.on { background: #d4f5dc; color: #176b2c; } #live.off { background: #fde2e2; color: #a01818; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 14px; }
.card { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 12px 14px; }
.wide { grid-column: 1 / -1; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eef0f2; white-space: nowrap; }
th { font-weight: 600; color: #56606b; font-size: 12px; }
td.num { text-align: right; }
.active { color: #176b2c; font-weight: 700; } .passive { color: #6b7480; }
.big { font-size: 26px; font-weight: 700; } .unit { color: #6b7480; font-size: 13px; }
.stats { display: flex; gap: 22px; margin-bottom: 6px; }
svg text { font: 11px system-ui, sans-serif; fill: #6b7480; }
#events { list-style: none; padding: 0; margin: 0; max-height: 240px; overflow-y: auto; font-size: 13px; }
#events li { padding: 2px 0; border-bottom: 1px solid #f0f1f3; } #events time { color: #6b7480; margin-right: 8px; }
.bar { height: 10px; background: #4a7fd4; border-radius: 2px; display: inline-block; vertical-align: middle; }
.legend span { margin-right: 12px; font-size: 12px; } .legend i { display: inline-block; width: 12px; height: 3px; vertical-align: middle; margin-right: 4px; }
`

const script = `
"use strict";
(() => {
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const el = (name, attrs, parent) => { const e = document.createElementNS(SVG, name); for (const k in attrs) e.setAttribute(k, attrs[k]); if (parent) parent.appendChild(e); return e; };
let samples = [], events = [], historySeconds = 300;
const colours = { P1a: "#1f5fbf", P1b: "#17a2c8", P2a: "#2e9e3e", P2b: "#e08a00", Decision: "#8e3fb0", Chosen: "#b07cc6", Propose: "#8c564b",
  Request: "#d63384", Response: "#f06292", Heartbeat: "#9aa0a6", Progress: "#6b7480", StateRequest: "#00796b", StateChunk: "#26a69a",
  Read: "#ad1457", ReadResponse: "#ec407a", ReadIndex: "#5d4037", ReadIndexReply: "#a1887f", Confirm: "#0d47a1", Confirmed: "#4fc3f7",
  Digest: "#6d4c41" };

/** A line chart of series [{name, colour, values: [[t, v]]}] over the last historySeconds. */
function chart(svg, series, unit) {
  const w = svg.clientWidth || 500, h = 150, left = 46, bottom = 18;
  svg.setAttribute("height", h); svg.replaceChildren();
  const now = samples.length ? samples[samples.length - 1].time : Date.now();
  const t0 = now - historySeconds * 1000;
  let max = 0;
  for (const s of series) for (const [, v] of s.values) if (v > max) max = v;
  max = max <= 0 ? 1 : max * 1.15;
  const x = (t) => left + ((t - t0) / (now - t0)) * (w - left - 6);
  const y = (v) => h - bottom - (v / max) * (h - bottom - 8);
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    el("line", { x1: left, x2: w, y1: y(v), y2: y(v), stroke: "#eef0f2" }, svg);
    el("text", { x: 2, y: y(v) + 4 }, svg).textContent = (v >= 100 ? Math.round(v) : v.toFixed(1)) + (i === 4 ? " " + unit : "");
  }
  for (let m = 0; m <= historySeconds / 60; m++) {
    const t = now - m * 60000;
    el("text", { x: x(t) - 14, y: h - 3 }, svg).textContent = m === 0 ? "now" : "-" + m + " min";
  }
  for (const s of series) {
    if (s.values.length === 0) continue;
    const d = s.values.map(([t, v], i) => (i ? "L" : "M") + x(t).toFixed(1) + "," + y(v).toFixed(1)).join("");
    el("path", { d, fill: "none", stroke: s.colour, "stroke-width": 1.8, "data-series": s.name }, svg);
    // a few points make no visible line: mark them
    const dots = s.values.length < 30 ? s.values : s.values.slice(-1);
    for (const [t, v] of dots) el("circle", { cx: x(t), cy: y(v), r: 2.5, fill: s.colour }, svg);
  }
}

function ballotRound(b) { const i = b.indexOf("."); return i < 0 ? 0 : Number(b.slice(0, i)); }

function renderServers(s) {
  const rows = s.servers.map((v) => {
    const l = v.leader, a = v.acceptor, r = v.replica;
    return "<tr data-server='" + v.id + "'>" +
      "<td><b>" + v.id + "</b></td>" +
      "<td class='" + (l ? (l.active ? "active" : "passive") : "") + "' data-field='leader'>" + (l ? (l.active ? "active" : "passive") : "–") + "</td>" +
      "<td data-field='ballot'>" + (l ? l.ballot : "–") + "</td>" +
      "<td class='num' data-field='timeout'>" + (l ? l.timeoutMs + " ms" : "–") + "</td>" +
      "<td data-field='promised'>" + (a ? a.promised : "–") + "</td>" +
      "<td class='num' data-field='accepted'>" + (a ? a.accepted : "–") + "</td>" +
      "<td class='num' data-field='watermark'>" + (a ? a.watermark : "–") + "</td>" +
      "<td class='num' data-field='slotOut'>" + (r ? r.slotOut : "–") + "</td>" +
      "<td class='num' data-field='lag'>" + (r ? r.lag : "–") + "</td>" +
      "<td class='num' data-field='window'>" + (r ? (r.pending + " / " + (r.window ?? "?")) : "–") + "</td>" +
      "<td class='num' data-field='committed'>" + (r ? r.committed : "–") + "</td>" +
      "<td data-field='following'>" + (r ? (r.following ?? "none") : "–") + "</td></tr>";
  });
  $("servers").innerHTML = rows.join("");
  const active = s.servers.filter((v) => v.leader && v.leader.active).sort((a, b) => ballotRound(b.leader.ballot) - ballotRound(a.leader.ballot))[0];
  const followed = s.servers.map((v) => v.replica && v.replica.following).find((f) => f);
  $("leader").textContent = active ? active.id + " at ballot " + active.leader.ballot : followed ? followed + " (as the replicas hear it)" : "none known";
}

function renderRates(s) {
  const recent = samples.slice(-5);
  const avg = {};
  for (const x of recent) for (const k in x.rates) avg[k] = (avg[k] || 0) + x.rates[k] / recent.length;
  const tags = Object.keys(avg).sort((a, b) => avg[b] - avg[a]);
  const top = Math.max(1, ...tags.map((t) => avg[t]));
  $("rates").innerHTML = tags.map((t) => "<tr data-tag='" + t + "'><td>" + t + "</td><td class='num'>" + Math.round(avg[t]) + "/s</td><td><span class='bar' style='width:" +
    Math.round((avg[t] / top) * 220) + "px;background:" + (colours[t] || "#4a7fd4") + "'></span></td></tr>").join("") ||
    "<tr><td>no messages yet</td></tr>";
}

function renderEvents() {
  $("events").innerHTML = events.slice().reverse().map((e) =>
    "<li><time>" + new Date(e.time).toLocaleTimeString() + "</time>" + e.text.replace(/[<&]/g, "") + "</li>").join("") || "<li>none yet</li>";
}

function render() {
  const s = samples[samples.length - 1];
  if (!s) return;
  renderServers(s);
  $("commits").textContent = String(s.commitsPerSecond);
  // the latest second with requests among the last five, as the rates average them: an
  // idle second between two bursts does not blank the figures
  const last = samples.slice(-5).reverse().find((x) => x.latency);
  $("p50").textContent = last ? last.latency.p50.toFixed(1) : "–";
  $("p99").textContent = last ? last.latency.p99.toFixed(1) : "–";
  $("updated").textContent = "updated " + new Date(s.time).toLocaleTimeString();
  chart($("commits-chart"), [{ name: "commits", colour: "#2e9e3e", values: samples.map((x) => [x.time, x.commitsPerSecond]) }], "/s");
  const lat = samples.filter((x) => x.latency);
  chart($("latency-chart"), [
    { name: "p50", colour: "#4a7fd4", values: lat.map((x) => [x.time, x.latency.p50]) },
    { name: "p90", colour: "#e08a00", values: lat.map((x) => [x.time, x.latency.p90]) },
    { name: "p99", colour: "#c62828", values: lat.map((x) => [x.time, x.latency.p99]) }
  ], "ms");
  renderRates(s);
  renderEvents();
}

function connect() {
  const source = new EventSource("/ui/events");
  source.addEventListener("init", (e) => {
    const d = JSON.parse(e.data);
    historySeconds = d.historySeconds; samples = d.samples; events = d.events;
    $("cluster").textContent = "cluster " + d.cluster + " · " + (d.transport === "nats" ? "NATS" : "in-memory bus");
    $("live").textContent = "live"; $("live").className = "on";
    render();
  });
  source.addEventListener("sample", (e) => {
    const s = JSON.parse(e.data);
    samples.push(s);
    const cut = s.time - historySeconds * 1000;
    while (samples.length && samples[0].time < cut) samples.shift();
    events.push(...s.events); if (events.length > 100) events.splice(0, events.length - 100);
    render();
  });
  source.onerror = () => { $("live").textContent = "reconnecting…"; $("live").className = "off"; };
}
window.addEventListener("resize", render);
connect();
})();
`

export const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>synod dashboard</title>
<style>${style}</style>
</head>
<body>
<header>
  <h1>synod</h1>
  <span id="cluster"></span>
  <span>active leader: <b id="leader">…</b></span>
  <span id="live">connecting…</span>
  <span id="updated"></span>
</header>
<div class="grid">
  <section class="card wide">
    <h2>Servers in this process</h2>
    <table>
      <thead><tr><th>server</th><th>leader</th><th>ballot</th><th>timeout</th><th>promised</th><th>accepted</th><th>GC watermark</th>
      <th>slotOut</th><th>lag</th><th>pending / window</th><th>committed</th><th>follows</th></tr></thead>
      <tbody id="servers"></tbody>
    </table>
  </section>
  <section class="card">
    <h2>Commits</h2>
    <div class="stats"><div><span class="big" id="commits">–</span> <span class="unit">commands/s</span></div></div>
    <svg id="commits-chart" width="100%" height="150"></svg>
  </section>
  <section class="card">
    <h2>Latency of this API's key-value requests</h2>
    <div class="stats"><div>p50 <span class="big" id="p50">–</span> <span class="unit">ms</span></div>
    <div>p99 <span class="big" id="p99">–</span> <span class="unit">ms</span></div></div>
    <svg id="latency-chart" width="100%" height="150"></svg>
    <div class="legend"><span><i style="background:#4a7fd4"></i>p50</span><span><i style="background:#e08a00"></i>p90</span><span><i style="background:#c62828"></i>p99</span></div>
  </section>
  <section class="card">
    <h2>Messages sent by this process, by type (last 5 s)</h2>
    <table><tbody id="rates"></tbody></table>
  </section>
  <section class="card">
    <h2>Leadership events</h2>
    <ul id="events"></ul>
  </section>
</div>
<script>${script}</script>
</body>
</html>
`

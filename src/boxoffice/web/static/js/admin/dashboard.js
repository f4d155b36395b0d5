// The live sales dashboard: a snapshot (with the chosen range's series), then one SSE frame a
// second from the hub (tiles, the last seconds' points, the seat heat when it changed).
import uPlot from "../../vendor/uplot/uPlot.esm.js";
import { getJSON, moneyFormatter, t } from "../app.js";
import { SeatMap } from "../seatmap.js";

const root = document.getElementById("dashboard");
const formatMoney = moneyFormatter(root);
const showId = root.dataset.showId;
const errorBox = document.getElementById("dash-error");
const liveState = document.getElementById("live-state");
const updatedAt = document.getElementById("updated-at");

const HEAT = { A: "#22c55e", T: "#f59e0b", R: "#ef4444" };
const CODES = ["A", "T", "R"];
const NAMES = { A: "AVAILABLE", T: "TEMP_RESERVED", R: "RESERVED" };

// The shared canvas component, coloured by status instead of price tier.
class HeatMap extends SeatMap {
  _color(i) { return HEAT[CODES[this.status[i]]] || "#475569"; }
}
const heat = new HeatMap(document.getElementById("heat-map"), { selectable: false, stageLabel: t("STAGE") });
let heatReady = false;
let pendingHeat = null;

const CHARTS = {
  holds: { el: "chart-holds", series: [["holds_won", t("won"), "#16a34a"], ["holds_refused", t("refused"), "#dc2626"], ["holds_expired", t("expired"), "#a16207"]] },
  payments: { el: "chart-payments", series: [["payments_succeeded", t("paid"), "#2563eb"], ["payments_failed", t("failed"), "#db2777"], ["admitted", t("admitted"), "#7c3aed"]] },
  latency: { el: "chart-latency", series: [["hold_p50", "hold p50", "#16a34a"], ["hold_p99", "hold p99", "#86efac"], ["payment_p50", "pay p50", "#2563eb"], ["payment_p99", "pay p99", "#93c5fd"]] },
};
let range = "5m";
let data = null; // {t: [...], name: [...]} of the current range
const plots = {};

function width(el) { return Math.max(280, el.clientWidth - 4); }

function build() {
  for (const [key, spec] of Object.entries(CHARTS)) {
    const el = document.getElementById(spec.el);
    const opts = {
      width: width(el), height: 220,
      // Latency points stand alone (a second with no hold has no latency): draw them as dots too.
      series: [{}, ...spec.series.map(([, label, stroke]) => ({
        label, stroke, width: 2, spanGaps: key === "latency",
        points: { show: key === "latency" ? true : undefined, size: 5, fill: stroke },
      }))],
      axes: [{}, { size: 64 }],
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      legend: { live: true },
    };
    plots[key] = new uPlot(opts, columns(spec), el);
  }
}

function columns(spec) {
  return [data.t, ...spec.series.map(([name]) => data[name])];
}

function redraw() {
  for (const [key, spec] of Object.entries(CHARTS)) plots[key].setData(columns(spec));
}

function merge(recent) {
  // Per-second range: put the frame's last seconds in place by time, keep the last 300 s.
  for (let i = 0; i < recent.t.length; i++) {
    const t = recent.t[i];
    let at = data.t.indexOf(t);
    if (at === -1) {
      if (data.t.length && t < data.t[data.t.length - 1]) continue;
      for (const name of Object.keys(data)) data[name].push(null);
      at = data.t.length - 1;
    }
    for (const name of Object.keys(data)) data[name][at] = recent[name][i];
  }
  const extra = data.t.length - 300;
  if (extra > 0) for (const name of Object.keys(data)) data[name].splice(0, extra);
}

const FORMATS = {
  money: (v) => formatMoney(v),
  rate: (v) => (v == null ? "–" : `${v.toFixed(1)}/s`),
  eta: (v) => (v == null ? t("unknown") : v === 0 ? t("now") : v < 90 ? t("{n} s", { n: v }) : t("{n} min", { n: Math.round(v / 60) })),
  ms: (v) => (v == null ? "–" : `${v >= 100 ? Math.round(v).toLocaleString() : v} ms`),
  paused: (v) => (v ? t("Paused") : t("Admitting")),
  // A show admitting at its static rate (its own setting, or no target): no loop, no target.
  chosen: (v, q) => (v != null ? `${v.toFixed(1)}/s` : q && q.buyer_p99_target_ms == null ? t("static") : "–"),
  target: (v) => (v == null ? t("off") : `${v >= 100 ? Math.round(v).toLocaleString() : v} ms`),
};

function tiles(frame) {
  for (const el of root.querySelectorAll("[data-k]")) {
    const value = el.dataset.k.split(".").reduce((o, k) => (o == null ? o : o[k]), frame);
    const fmt = FORMATS[el.dataset.fmt];
    el.textContent = fmt ? fmt(value, frame.queue) : value == null ? "–" : Number(value).toLocaleString();
  }
  updatedAt.textContent = new Date(frame.at).toLocaleTimeString();
}

function applyHeat(h) {
  if (!h) return;
  if (!heatReady) { pendingHeat = h; return; }
  const groups = { A: [], T: [], R: [] };
  for (let i = 0; i < h.status.length; i++) {
    const code = h.status[i];
    if (groups[code]) groups[code].push(h.base + i);
  }
  for (const code of CODES) heat.setStatus(groups[code], NAMES[code]);
}

async function load() {
  const snap = await getJSON(`/web/admin/shows/${showId}/dashboard?range=${range}`);
  data = snap.series;
  if (!plots.holds) build(); else redraw();
  tiles(snap);
  applyHeat(snap.heat);
}

async function loadSeats() {
  const map = await getJSON(`/web/admin/shows/${showId}/seats`);
  heat.setSeats(map.seats);
  heatReady = true;
  if (pendingHeat) applyHeat(pendingHeat);
}

function connect() {
  const source = new EventSource(`/web/admin/shows/${showId}/dashboard/stream`);
  source.addEventListener("frame", (event) => {
    const frame = JSON.parse(event.data);
    liveState.textContent = t("live");
    liveState.className = "badge live";
    tiles(frame);
    if (frame.heat) applyHeat(frame.heat);
    if (range === "5m" && data) { merge(frame.recent); redraw(); }
  });
  source.addEventListener("error", () => {
    liveState.textContent = t("reconnecting…");
    liveState.className = "badge down";
  });
}

for (const button of document.querySelectorAll("[data-range]")) {
  button.addEventListener("click", async () => {
    range = button.dataset.range;
    for (const b of document.querySelectorAll("[data-range]")) b.setAttribute("aria-pressed", String(b === button));
    try { await load(); errorBox.textContent = ""; } catch (err) { errorBox.textContent = err.message; }
  });
}
// Longer ranges are re-read every 10 s (their steps are coarser than the stream's seconds).
setInterval(() => { if (range !== "5m") load().catch(() => {}); }, 10000);
window.addEventListener("resize", () => {
  for (const [key, spec] of Object.entries(CHARTS)) {
    const el = document.getElementById(spec.el);
    plots[key]?.setSize({ width: width(el), height: 220 });
  }
});

Promise.all([load(), loadSeats()]).catch((err) => { errorBox.textContent = err.message; }).finally(connect);

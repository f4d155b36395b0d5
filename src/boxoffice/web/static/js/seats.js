// The seat map page: the canvas SeatMap (the layout once, then statuses only) fed by the seat SSE
// stream (resumed by the browser with Last-Event-ID; `reset` -> the statuses again), an accessible list mode sharing the same selection, holds of
// chosen seats or "best available", then on to the checkout.
import { ApiError, getJSON, moneyFormatter, number, postJSON, show, t } from "./app.js";
import { SeatMap } from "./seatmap.js";

const app = document.getElementById("seat-app");
const showId = Number(app.dataset.showId);
const maxSelect = Number(app.dataset.max);
const formatMoney = moneyFormatter(app);
const message = document.getElementById("seat-message");
const tooltip = document.getElementById("seat-tooltip");
const holdButton = document.getElementById("hold-button");
const STATUS_WORDS = { AVAILABLE: t("available"), TEMP_RESERVED: t("held by someone"), RESERVED: t("sold") };
const seatWords = (s) => t("{section} · Row {row} · Seat {number}", { section: s.section, row: s.row, number: s.number });

let loaded = false;
let buffered = [];
let holdKey = null; // one Idempotency-Key per attempt, reused if the same attempt is retried
let holding = false;

const map = new SeatMap(document.getElementById("seat-canvas"), {
  stageLabel: t("STAGE"),
  maxSelect,
  onSelect: renderSelection,
  onHover(seat, x, y) {
    if (!seat) {
      tooltip.hidden = true;
      return;
    }
    tooltip.textContent = `${seatWords(seat)} · ${formatMoney(seat.price)} · ${STATUS_WORDS[seat.status]}`;
    tooltip.style.left = `${Math.min(x + 14, map.cssWidth - 220)}px`;
    tooltip.style.top = `${y + 14}px`;
    tooltip.hidden = false;
  },
});
window.boxofficeSeatMap = map; // for the benchmark and the browser tests

// ------------------------------------------------------------------ live updates

function applyChange(change) {
  if (!loaded) {
    buffered.push(change);
    return;
  }
  map.setStatus(change.seat_ids || [], change.status);
  refreshListRow(change.seat_ids || []);
}

let source = null;
function listen() {
  source = new EventSource(`/web/shows/${showId}/seats/stream`);
  source.addEventListener("seats", (e) => applyChange(JSON.parse(e.data)));
  source.addEventListener("reset", () => {
    // Changes were missed: the whole map again; what arrives meanwhile is applied on top of it.
    loaded = false;
    load();
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      // Refused (the admission expired) or the server is gone: check which, by reloading.
      load().then(() => setTimeout(listen, 3000));
    }
  });
}

// The layout (public, immutable for its digest: the browser keeps it) is fetched once; after that
// only the statuses (one character per seat id, ETag: a 304 while nothing changed).
const STATUS_BY_CHAR = { A: "AVAILABLE", T: "TEMP_RESERVED", R: "RESERVED" };
let layout = null;

async function load() {
  try {
    const status = await getJSON(`/web/shows/${showId}/seats/status`);
    const pending = buffered;
    buffered = [];
    if (!layout || layout.layout !== status.layout) {
      layout = await getJSON(`/api/shows/${showId}/seats/layout?v=${status.layout}`);
      performance.mark("seatmap-data");
      map.setSeats(layout.seats.map((s) => ({ ...s, status: STATUS_BY_CHAR[status.status[s.id - status.base]] || "RESERVED" })));
      performance.mark("seatmap-laid-out");
    } else {
      const groups = { A: [], T: [], R: [] };
      for (const s of layout.seats) {
        const c = status.status[s.id - status.base];
        if (groups[c]) groups[c].push(s.id);
      }
      for (const [c, ids] of Object.entries(groups)) map.setStatus(ids, STATUS_BY_CHAR[c]);
    }
    loaded = true;
    for (const change of pending) map.setStatus(change.seat_ids || [], change.status);
    renderLegend();
    listBuilt = false;
    if (!document.getElementById("list-view").hidden) buildList();
    let free = 0;
    for (const c of status.status) if (c === "A") free++;
    if (free) {
      show(message, t("{free} seats available. Click seats on the map (up to {max}), or use the list.", { free: number(free), max: maxSelect }), "info");
    } else if (status.waitlist) {
      show(message, t("Every seat is taken or owed to fans on the waitlist: seats that come back go to them first, in the order they joined."), "warn");
    } else {
      show(message, t("All seats are taken right now; seats of expiring holds come back here live."), "warn");
    }
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      show(message, err.message + " " + t("Your turn to choose seats has ended; go back to the waiting room."), "error");
      const link = document.createElement("a");
      link.href = `/shows/${showId}/queue`;
      link.textContent = " " + t("Back to the waiting room");
      message.append(link);
      if (source) source.close();
      throw err;
    }
    show(message, err.message, "error");
  }
}

// ------------------------------------------------------------------ selection panel

function renderSelection(ids) {
  const list = document.getElementById("selection");
  list.replaceChildren();
  let total = 0;
  for (const id of ids) {
    const s = map.seat(id);
    if (!s) continue;
    total += s.price;
    const li = document.createElement("li");
    li.textContent = `${seatWords(s)} — ${formatMoney(s.price)}`;
    list.append(li);
  }
  if (!ids.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = t("No seats chosen yet.");
    list.append(li);
  }
  document.getElementById("total").textContent = formatMoney(total);
  holdButton.disabled = ids.length === 0 || holding;
  holdButton.textContent = ids.length ? (ids.length > 1 ? t("Hold {count} seats", { count: ids.length }) : t("Hold 1 seat")) : t("Hold these seats");
  holdKey = null; // a different selection is a different request
  syncListChecks();
}

function renderLegend() {
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  const add = (color, text) => {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = color;
    li.append(sw, text);
    legend.append(li);
  };
  for (const tier of map.legend()) add(tier.color, formatMoney(tier.price));
  add("#475569", t("Taken"));
  add("#fbbf24", t("Your choice"));
}

// ------------------------------------------------------------------ list mode

const sectionSelect = document.getElementById("list-section");
const rowSelect = document.getElementById("list-row");
const checks = document.getElementById("list-checks");
let rows = new Map(); // section -> row -> [seat ids]
let listBuilt = false; // built when the list is first shown (not on the way to the first draw)

function buildList() {
  listBuilt = true;
  rows = new Map();
  for (let i = 0; i < map.n; i++) {
    const section = map.sections[map.sec[i]].name;
    if (!rows.has(section)) rows.set(section, new Map());
    const byRow = rows.get(section);
    if (!byRow.has(map.row[i])) byRow.set(map.row[i], []);
    byRow.get(map.row[i]).push(map.ids[i]);
  }
  const current = sectionSelect.value;
  sectionSelect.replaceChildren(...[...rows.keys()].map((name) => new Option(name, name)));
  if (current && rows.has(current)) sectionSelect.value = current;
  fillRows();
}

function fillRows() {
  const byRow = rows.get(sectionSelect.value) || new Map();
  const current = rowSelect.value;
  rowSelect.replaceChildren(
    ...[...byRow.keys()].sort((a, b) => a - b).map((r) => {
      const free = byRow.get(r).filter((id) => map.seat(id).status === "AVAILABLE").length;
      return new Option(t("Row {row} ({free} free)", { row: r, free }), String(r));
    }),
  );
  if (current && byRow.has(Number(current))) rowSelect.value = current;
  fillSeats();
}

function fillSeats() {
  const ids = (rows.get(sectionSelect.value) || new Map()).get(Number(rowSelect.value)) || [];
  document.getElementById("list-legend").textContent = `${sectionSelect.value}, row ${rowSelect.value}`;
  checks.replaceChildren();
  for (const id of [...ids].sort((a, b) => map.seat(a).number - map.seat(b).number)) {
    const s = map.seat(id);
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = String(id);
    box.checked = s.selected;
    box.disabled = s.status !== "AVAILABLE";
    box.setAttribute("aria-label", [t("Seat {number}", { number: s.number }), formatMoney(s.price), STATUS_WORDS[s.status]].join(", "));
    box.addEventListener("change", () => {
      if (!map.toggle(id)) {
        box.checked = map.seat(id).selected;
        show(message, t("You can choose at most {max} seats.", { max: maxSelect }), "warn");
      }
    });
    const text = document.createElement("span");
    text.textContent = String(s.number);
    label.append(box, text);
    checks.append(label);
  }
}

function syncListChecks() {
  for (const box of checks.querySelectorAll("input[type=checkbox]")) {
    const s = map.seat(Number(box.value));
    if (!s) continue;
    box.checked = s.selected;
    box.disabled = s.status !== "AVAILABLE";
  }
}

function refreshListRow(ids) {
  if (document.getElementById("list-view").hidden) return;
  const shown = new Set([...checks.querySelectorAll("input")].map((b) => Number(b.value)));
  if (ids.some((id) => shown.has(id))) syncListChecks();
}

sectionSelect.addEventListener("change", fillRows);
rowSelect.addEventListener("change", fillSeats);

function setMode(list) {
  document.getElementById("list-view").hidden = !list;
  document.getElementById("map-view").hidden = list;
  document.getElementById("mode-list").setAttribute("aria-pressed", String(list));
  document.getElementById("mode-map").setAttribute("aria-pressed", String(!list));
  if (list) {
    if (!listBuilt && loaded) buildList();
    else fillRows();
  } else {
    map.resize();
  }
}
document.getElementById("mode-list").addEventListener("click", () => setMode(true));
document.getElementById("mode-map").addEventListener("click", () => setMode(false));
document.getElementById("zoom-in").addEventListener("click", () => map.zoomBy(1.5));
document.getElementById("zoom-out").addEventListener("click", () => map.zoomBy(1 / 1.5));
document.getElementById("zoom-reset").addEventListener("click", () => map.resetView());

// ------------------------------------------------------------------ holding

async function hold(body) {
  if (holding) return;
  holding = true;
  holdButton.disabled = true;
  holdKey = holdKey || crypto.randomUUID();
  show(message, t("Holding your seats…"), "info");
  try {
    const answer = await postJSON("/web/reservations", { show_id: showId, ...body }, { "Idempotency-Key": holdKey });
    show(message, t("Held {count} seat(s). Taking you to the checkout…", { count: answer.seats.length }), "ok");
    window.location.assign(answer.checkout_url);
    return;
  } catch (err) {
    holdKey = null;
    holding = false;
    if (err instanceof ApiError && err.code === "SEATS_TAKEN" && err.problem.seat_ids) {
      map.setStatus(err.problem.seat_ids, "TEMP_RESERVED");
    }
    show(message, err.message, "error");
    if (err instanceof ApiError && err.code === "HOLD_EXISTS" && err.problem.reservation_id) {
      const link = document.createElement("a");
      link.href = `/reservations/${err.problem.reservation_id}/checkout`;
      link.textContent = " " + t("Go to your hold");
      message.append(link);
    }
    renderSelection(map.selected());
  }
}

holdButton.addEventListener("click", () => hold({ seat_ids: map.selected() }));
document.getElementById("best-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const body = { quantity: Number(document.getElementById("best-quantity").value) };
  const section = document.getElementById("best-section").value;
  if (section) body.section = section;
  hold(body);
});

listen();
load();

// The scanner page (/door/{show}): camera or typed code -> a big answer, online and offline.
// Online: every scan asks the server (POST /web/door/{show}/scan: exactly one scan of a ticket is
// VALID, PostgreSQL decides). Offline (a request fails for the network): the page decides alone
// from the downloaded door list and public keys: it verifies the payload's Ed25519 signature with
// WebCrypto, refuses VOID tickets and tickets it (or the list) saw used, remembers its own scans in
// localStorage, and syncs them when the network is back; a ticket that entered elsewhere
// meanwhile comes back as a CONFLICT, which the console shows.
import { getJSON, postJSON, t } from "./app.js";

const root = document.getElementById("door");
const showId = Number(root.dataset.showId);
const STORE = `bo-door-${showId}`;
const $ = (id) => document.getElementById(id);
const gateInput = $("door-gate");
const WORDS = {
  VALID: t("VALID"),
  ALREADY_USED: t("ALREADY USED"),
  VOID: t("VOID"),
  WRONG_SHOW: t("WRONG SHOW"),
  NOT_A_TICKET: t("NOT A TICKET"),
  CONFLICT: t("CONFLICT"),
};
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const SYNC_BATCH = 50; // the server's limit per sync request (its largest body fits 64 KiB)

const state = loadState();
const door = { state, online: true, lastAnswer: null, answers: 0, synced: null, decoder: null };
window.boxofficeDoor = door;

function loadState() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORE) || "null");
    if (saved && saved.tickets && saved.pending) return saved;
  } catch {
    /* a broken entry is replaced */
  }
  return { keys: [], tickets: {}, pending: [], used: {}, gate: "" };
}

function persist() {
  localStorage.setItem(STORE, JSON.stringify(state));
  $("door-pending").textContent = state.pending.length === 1 ? t("1 scan waiting to sync") : t("{count} scans waiting to sync", { count: state.pending.length });
  $("door-list-size").textContent = t("{count} tickets on this device", { count: Object.keys(state.tickets).length });
}

function setOnline(value) {
  door.online = value;
  const badge = $("door-network");
  badge.textContent = value ? t("online") : t("offline");
  badge.classList.toggle("offline", !value);
}

function hhmm(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function render(answer) {
  door.lastAnswer = answer;
  door.answers += 1;
  const box = $("door-answer");
  box.className = `door-answer door-${answer.result}`;
  box.dataset.result = answer.result;
  $("door-word").textContent = WORDS[answer.result] || answer.result;
  let detail = "";
  if (answer.result === "VALID") detail = [answer.seat, answer.holder].filter(Boolean).join(" · ");
  else if (answer.result === "ALREADY_USED" || answer.result === "CONFLICT")
    detail = (answer.used_gate ? t("Used at {time} at {gate}", { time: hhmm(answer.used_at), gate: answer.used_gate }) : t("Used at {time}", { time: hhmm(answer.used_at) })) + (answer.seat ? ` · ${answer.seat}` : "");
  else if (answer.result === "VOID") detail = t("Cancelled or refunded") + (answer.seat ? ` · ${answer.seat}` : "");
  else if (answer.result === "WRONG_SHOW") detail = t("A ticket for another show");
  else detail = answer.detail || t("Not one of our tickets");
  $("door-detail").textContent = detail + (answer.offline ? " " + t("(offline)") : "");
  signal(answer.result === "VALID");
}

function signal(ok) {
  try {
    if (navigator.vibrate) navigator.vibrate(ok ? 80 : [200, 80, 200]);
  } catch {
    /* not allowed here */
  }
  try {
    const ctx = signal.ctx || (signal.ctx = new AudioContext());
    const osc = ctx.createOscillator();
    osc.frequency.value = ok ? 880 : 220;
    osc.connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + (ok ? 0.12 : 0.35));
  } catch {
    /* no sound without a gesture: fine */
  }
}

// ---- the list (for offline) and local verification

async function loadList() {
  const list = await getJSON(`/web/door/${showId}/list`);
  state.keys = list.keys;
  const tickets = {};
  for (const t of list.tickets) tickets[t.code] = t;
  state.tickets = tickets;
  persist();
}

function b64url(text) {
  const s = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(s + "=".repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

async function verifyLocally(payload) {
  const parts = payload.trim().split(".");
  if (parts.length !== 3 || parts[0] !== "BO1" || payload.length > 1024) return null;
  let claims;
  try {
    claims = JSON.parse(new TextDecoder().decode(b64url(parts[1])));
  } catch {
    return null;
  }
  const key = state.keys.find((k) => k.key_id === claims.k);
  if (!key || !crypto.subtle) return null;
  try {
    const pub = await crypto.subtle.importKey("raw", b64url(key.public_key), { name: "Ed25519" }, false, ["verify"]);
    const ok = await crypto.subtle.verify(
      { name: "Ed25519" },
      pub,
      b64url(parts[2]),
      new TextEncoder().encode(`${parts[0]}.${parts[1]}`),
    );
    return ok ? claims : null;
  } catch {
    return null;
  }
}

function normalizeCode(typed) {
  const map = { O: "0", I: "1", L: "1" };
  const code = typed.toUpperCase().replace(/[\s-]/g, "").replace(/[OIL]/g, (c) => map[c]);
  return code.length === 16 && [...code].every((c) => CROCKFORD.includes(c)) ? code : null;
}

async function offlineCheck(input, gate) {
  const now = new Date().toISOString();
  let code;
  let seat = null;
  let holder = null;
  if (input.payload) {
    const claims = await verifyLocally(input.payload);
    if (!claims) return { result: "NOT_A_TICKET", offline: true };
    if (claims.sh !== showId) return { result: "WRONG_SHOW", offline: true };
    code = claims.c;
    seat = t("{section} · Row {row} · Seat {number}", { section: claims.sec, row: claims.r, number: claims.n });
    holder = claims.h;
  } else {
    code = normalizeCode(input.code || "");
    if (!code || !state.tickets[code]) return { result: "NOT_A_TICKET", offline: true };
  }
  const known = state.tickets[code];
  seat = seat || (known && known.seat);
  if (known && known.status === "VOID") return { result: "VOID", seat, offline: true };
  const mine = state.used[code];
  if (mine) return { result: "ALREADY_USED", seat, used_at: mine.at, used_gate: mine.gate, offline: true };
  if (known && known.status === "USED")
    return { result: "ALREADY_USED", seat, used_at: known.used_at, used_gate: known.used_gate, offline: true };
  state.used[code] = { at: now, gate };
  state.pending.push({ ...(input.payload ? { payload: input.payload } : { code: input.code }), scanned_at: now });
  persist();
  return { result: "VALID", seat, holder, offline: true };
}

// ---- a scan

async function check(input) {
  const gate = gateInput.value.trim() || t("Gate 1");
  if (door.online) {
    try {
      const answer = await postJSON(`/web/door/${showId}/scan`, { ...input, gate });
      render(answer);
      refreshEntries();
      return answer;
    } catch (err) {
      if (err.status !== 0) {
        render({ result: "NOT_A_TICKET", detail: err.message });
        return null;
      }
      setOnline(false);
    }
  }
  const answer = await offlineCheck(input, gate);
  render(answer);
  return answer;
}
door.check = check;

// One sync at a time (the retry timer and the button may ask at once). A batch whose answer is
// lost is sent again: the server recognises its own gate's scan at the same time as the same
// admission, not as a conflict.
function sync() {
  if (!door.syncing) door.syncing = syncOnce().finally(() => (door.syncing = null));
  return door.syncing;
}

async function syncOnce() {
  if (!state.pending.length) {
    await loadList();
    setOnline(true);
    return { results: [], conflicts: 0 };
  }
  const gate = gateInput.value.trim() || t("Gate 1");
  const batch = state.pending.slice(0, SYNC_BATCH);
  const result = await postJSON(`/web/door/${showId}/sync`, { gate, scans: batch });
  state.pending.splice(0, batch.length);
  if (!state.pending.length) state.used = {};
  persist();
  setOnline(true);
  door.synced = result;
  const said = t("Synced {scans} offline scans: {conflicts} conflict(s)", { scans: result.results.length, conflicts: result.conflicts });
  if (result.conflicts) {
    render({ result: "CONFLICT", used_at: null, used_gate: null });
    $("door-detail").textContent = said + " " + t("(a ticket entered at two gates; see the console)");
  } else {
    const box = $("door-answer");
    box.className = "door-answer door-idle";
    $("door-word").textContent = t("SYNCED");
    $("door-detail").textContent = said;
  }
  refreshEntries();
  if (state.pending.length) return syncOnce(); // more batches: the answer is the last one's
  await loadList();
  return result;
}
door.sync = sync;

async function retry() {
  if (door.online) return;
  try {
    await sync();
  } catch (err) {
    if (err.status && err.status !== 0) setOnline(true); // the server answered: online again
  }
}

async function refreshEntries() {
  if (!door.online) return;
  try {
    const e = await getJSON(`/web/door/${showId}/entries`);
    $("door-entries").textContent = t("{admitted} admitted · {inside} inside · {conflicts} conflicts", e);
  } catch {
    /* the next tick tries again */
  }
}

// ---- the camera

async function startCamera() {
  const video = $("door-video");
  const canvas = $("door-canvas");
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  video.srcObject = stream;
  video.hidden = false;
  await video.play();
  let detector = null;
  if ("BarcodeDetector" in window) {
    try {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      if (formats.includes("qr_code")) detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    } catch {
      detector = null;
    }
  }
  door.decoder = detector ? "BarcodeDetector" : "jsQR";
  let last = "";
  let lastAt = 0;
  let busy = false;
  const tick = async () => {
    if (!busy && video.readyState >= 2) {
      busy = true;
      try {
        let text = null;
        if (detector) {
          const codes = await detector.detect(video);
          text = codes.length ? codes[0].rawValue : null;
        } else if (window.jsQR) {
          const w = video.videoWidth;
          const h = video.videoHeight;
          canvas.width = w;
          canvas.height = h;
          const ctx = canvas.getContext("2d", { willReadFrequently: true });
          ctx.drawImage(video, 0, 0, w, h);
          const found = window.jsQR(ctx.getImageData(0, 0, w, h).data, w, h, { inversionAttempts: "dontInvert" });
          text = found ? found.data : null;
        }
        const now = Date.now();
        if (text && (text !== last || now - lastAt > 4000)) {
          last = text;
          lastAt = now;
          await check(text.startsWith("BO1.") ? { payload: text } : { code: text });
        }
      } finally {
        busy = false;
      }
    }
    setTimeout(tick, 150);
  };
  tick();
}

// ---- wiring

gateInput.value = state.gate || gateInput.value;
gateInput.addEventListener("change", () => {
  state.gate = gateInput.value.trim();
  persist();
});
$("door-gate-form").addEventListener("submit", (e) => e.preventDefault());
$("door-code-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const code = $("door-code").value.trim();
  if (!code) return;
  await check({ code });
  $("door-code").value = "";
  $("door-code").focus();
});
$("door-camera").addEventListener("click", () => {
  startCamera().catch((err) => {
    $("door-detail").textContent = t("The camera is not available: {reason}", { reason: err.message });
  });
});
$("door-sync").addEventListener("click", () => {
  sync().catch(() => setOnline(false));
});
window.addEventListener("online", retry);
setInterval(retry, 4000);
setInterval(refreshEntries, 5000);
persist();
loadList()
  .then(() => {
    door.ready = true;
    refreshEntries();
  })
  .catch(() => {
    setOnline(false);
    door.ready = true;
  });

// Shared browser helpers for every page (an ES module; no inline script anywhere: CSP).
// - postJSON / getJSON: same-origin fetch with the page's CSRF token; a problem+json answer
//   becomes an Error whose message is the problem's human `detail`.
// - [data-countdown-to="<ISO time>"]: a live "mm:ss" / "1d 02:03:04" countdown; when it reaches
//   zero the element fires a "countdown-done" event (pages listen, e.g. the checkout).

// The page's strings for our JS, from the server's gettext catalogs (web/render.py js_messages:
// a <script type="application/json" id="i18n-messages"> block; the CSP allows data blocks). Ask
// with t("English message", { name: value }): the msgid is what `make lint` extracts.
let messages = null;
export function t(message, values = {}) {
  if (messages === null) {
    const block = document.getElementById("i18n-messages");
    try { messages = block ? JSON.parse(block.textContent) : {}; } catch { messages = {}; }
  }
  const text = messages[message] || message;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

// Numbers as the page's language writes them.
export function number(n) {
  return Number(n).toLocaleString(document.documentElement.lang || "en");
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || t("Something went wrong; please try again."));
    this.status = status;
    this.code = (problem && problem.code) || "ERROR";
    this.problem = problem || {};
  }
}

async function parse(response) {
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export async function getJSON(url) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch {
    throw new ApiError(0, { detail: t("The connection failed; check your network and try again."), code: "NETWORK" });
  }
  return parse(response);
}

export async function postJSON(url, body, headers = {}) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrfToken(), ...headers },
      body: JSON.stringify(body || {}),
    });
  } catch {
    throw new ApiError(0, { detail: t("The connection failed; check your network and try again."), code: "NETWORK" });
  }
  return parse(response);
}

// Money as kit/money.py formats it: `el` carries the show's ISO 4217 code (data-currency) and its
// ISO 4217 minor-unit digits (data-currency-digits), both written by the server (web/render.py).
export function moneyFormatter(el) {
  const currency = el.dataset.currency;
  const digits = Number(el.dataset.currencyDigits);
  const lang = document.documentElement.lang || "en";
  const nf = new Intl.NumberFormat(lang, {
    style: "currency",
    currency,
    currencyDisplay: "narrowSymbol",
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
  return (minor) => nf.format(Number(minor) * 10 ** -digits);
}

export function formatDuration(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (d > 0) return t("{days}d {time}", { days: d, time: `${pad(h)}:${pad(m)}:${pad(s)}` });
  if (h > 0) return `${h}:${pad(m)}:${pad(s)}`;
  return `${pad(m)}:${pad(s)}`;
}

export function show(el, text, kind = "info") {
  if (!el) return;
  el.textContent = text || "";
  el.className = `notice ${kind}`;
}

function startCountdowns() {
  const nodes = [...document.querySelectorAll("[data-countdown-to]")];
  if (!nodes.length) return;
  const tick = () => {
    const now = Date.now();
    for (const el of nodes) {
      const left = Date.parse(el.dataset.countdownTo) - now;
      el.textContent = formatDuration(left);
      if (left <= 0 && !el.dataset.done) {
        el.dataset.done = "1";
        el.dispatchEvent(new CustomEvent("countdown-done", { bubbles: true }));
      }
    }
  };
  tick();
  setInterval(tick, 1000);
}

// Buttons of forms marked data-once are disabled after the first submit (the server is
// idempotent anyway; this only spares a second round trip).
function guardForms() {
  for (const form of document.querySelectorAll("form[data-once]")) {
    form.addEventListener("submit", () => {
      for (const b of form.querySelectorAll("button[type=submit]")) {
        setTimeout(() => { b.disabled = true; }, 0);
      }
    });
  }
}

// A wide table scrolls sideways on a phone (app.css); a keyboard must reach it too.
function focusableScrollers() {
  for (const table of document.querySelectorAll("table.data")) {
    if (table.scrollWidth > table.clientWidth) table.tabIndex = 0;
    else table.removeAttribute("tabindex");
  }
}

startCountdowns();
guardForms();
focusableScrollers();
window.addEventListener("resize", focusableScrollers);

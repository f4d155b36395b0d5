// The waiting room: live position from the queue's SSE stream, a polling fallback that honours
// poll_after_seconds, and READY -> the admission cookie -> the seat map, by itself.
import { getJSON, number, postJSON, show, t } from "./app.js";
import { fetchChallenge, payload, solve } from "./toll.js";

const box = document.getElementById("queue");
const showId = box && box.dataset.showId;
const query = box ? `?concert_id=${box.dataset.concertId}` : "";
const message = document.getElementById("queue-message");
let finished = false;
let pollTimer = null;
let source = null;

function etaRange(seconds) {
  if (seconds === null || seconds === undefined) return t("We cannot estimate the wait right now.");
  if (seconds <= 5) return t("Estimated wait: a few seconds.");
  const low = Math.max(1, Math.floor(seconds * 0.8));
  const high = Math.ceil(seconds * 1.3) + 5;
  const fmt = (s) => (s < 90 ? t("{n} s", { n: s }) : t("{n} min", { n: Math.round(s / 60) }));
  return t("Estimated wait: {low} – {high}.", { low: fmt(low), high: fmt(high) });
}

function progressFor(position) {
  const key = `bo-queue-first-${showId}`;
  const first = Math.max(Number(sessionStorage.getItem(key)) || 0, position);
  sessionStorage.setItem(key, String(first));
  return first <= 1 ? 100 : Math.round(((first - position) / (first - 1)) * 100);
}

async function admit() {
  if (finished) return;
  finished = true;
  stop();
  show(message, t("It's your turn! Taking you to the seat map…"), "ok");
  try {
    const answer = await postJSON(`/web/queue/${showId}/admit${query}`, {});
    if (answer.seat_map_url) {
      window.location.assign(answer.seat_map_url);
      return;
    }
    finished = false;
    update(answer);
  } catch (err) {
    finished = false;
    show(message, err.message, "error");
    schedulePoll(3);
  }
}

function update(view) {
  if (finished) return;
  const status = view.status;
  box.dataset.status = status;
  const inLine = document.getElementById("in-line");
  const pre = document.getElementById("pre-queue");
  if (status === "READY") {
    admit();
    return;
  }
  if (status === "SOLD_OUT") {
    finished = true;
    stop();
    if (inLine) inLine.hidden = true;
    show(message, t("Sold out: every seat of this show has been sold while you waited. We're sorry!"), "error");
    return;
  }
  if (status === "NOT_IN_QUEUE") {
    finished = true;
    stop();
    show(message, t("You are no longer in this queue (your turn passed or you left). Reload the page to join again."), "warn");
    return;
  }
  if (status === "LAST_SEATS_HELD") {
    show(message, t("The last seats are being held by other fans. If they are released, the line moves again."), "warn");
  } else if (view.pre_queue) {
    show(message, t("You're in the pre-queue. Your place is drawn when the sale opens."), "info");
  } else {
    show(message, "", "info");
  }
  if (pre && inLine) {
    pre.hidden = !view.pre_queue;
    inLine.hidden = Boolean(view.pre_queue);
  }
  if (view.position !== null && view.position !== undefined) {
    document.getElementById("position").textContent = number(view.position);
    const ahead = Math.max(0, view.position - 1);
    document.getElementById("ahead").textContent =
      ahead === 0 ? t("You are next.") : ahead === 1 ? t("1 person ahead of you") : t("{count} people ahead of you", { count: number(ahead) });
    const pct = progressFor(view.position);
    const bar = document.getElementById("progress");
    bar.value = pct;
    bar.textContent = `${pct}%`;
  }
  const eta = document.getElementById("eta");
  if (eta) eta.textContent = view.pre_queue ? "" : etaRange(view.estimated_wait_seconds);
}

function stop() {
  if (source) source.close();
  source = null;
  if (pollTimer) clearTimeout(pollTimer);
  pollTimer = null;
}

function schedulePoll(seconds) {
  if (finished) return;
  if (pollTimer) clearTimeout(pollTimer);
  pollTimer = setTimeout(poll, Math.max(0.5, seconds) * 1000);
}

async function poll() {
  try {
    const view = await getJSON(`/web/queue/${showId}/status${query}`);
    update(view);
    schedulePoll(view.poll_after_seconds ?? 5);
  } catch (err) {
    show(message, err.message, "error");
    schedulePoll(5);
  }
}

function listen() {
  if (!("EventSource" in window)) {
    poll();
    return;
  }
  source = new EventSource(`/web/queue/${showId}/stream${query}`);
  source.addEventListener("status", (e) => update(JSON.parse(e.data)));
  source.addEventListener("error", (e) => {
    // A server-sent `event: error` (queue unavailable) or a dropped connection: poll instead.
    if (finished) return;
    if (e.data || (source && source.readyState === EventSource.CLOSED)) {
      source.close();
      source = null;
      poll();
    }
  });
}

// The join form with the toll on: solve the challenge first (progress shown), then submit it
// with ALTCHA's payload in the `altcha` field.
const joinForm = document.getElementById("join-form");
const tollKey = `bo-toll-ms-${showId}`;
if (joinForm && "toll" in joinForm.dataset) {
  joinForm.addEventListener("submit", async (event) => {
    if (joinForm.elements.altcha.value) return;
    event.preventDefault();
    const button = joinForm.querySelector("button[type=submit]");
    const panel = document.getElementById("toll");
    const bar = document.getElementById("toll-progress");
    const status = document.getElementById("toll-status");
    button.disabled = true;
    panel.hidden = false;
    try {
      const challenge = await fetchChallenge(showId);
      const solved = await solve(challenge, joinForm.dataset.solver, (share) => {
        const pct = Math.round(share * 100);
        bar.value = pct;
        bar.textContent = `${pct}%`;
      });
      status.textContent = t("Checked in {seconds} s. Joining…", { seconds: (solved.took / 1000).toFixed(1) });
      sessionStorage.setItem(tollKey, String(solved.took));
      joinForm.elements.altcha.value = payload(challenge, solved);
      joinForm.submit();
    } catch (err) {
      button.disabled = false;
      panel.hidden = true;
      show(message, err.message, "error");
    }
  });
}
// Arrived from "Get tickets" (…/queue?join=1): join at once, paying the toll on the way.
if (joinForm && new URLSearchParams(window.location.search).get("join") === "1") {
  history.replaceState(null, "", window.location.pathname);
  joinForm.requestSubmit();
}
const tollTime = document.getElementById("toll-time");
if (tollTime && sessionStorage.getItem(tollKey)) {
  const ms = Number(sessionStorage.getItem(tollKey));
  tollTime.textContent = t("The check before joining took {seconds} s.", { seconds: (ms / 1000).toFixed(1) });
  tollTime.dataset.ms = String(ms);
  tollTime.hidden = false;
}

// The waitlist: a waiting fan's page listens to its stream; the offer arrives the moment it is
// made. Without EventSource, or when the stream fails, the page asks every few seconds instead.
const waitBox = document.getElementById("waitlist");
if (waitBox && waitBox.dataset.status === "WAITING") {
  const waitUrl = `/web/shows/${waitBox.dataset.showId}/waitlist`;
  let waitSource = null;
  const render = (w, via) => {
    if (waitBox.dataset.status !== "WAITING") return true;
    if (w.status === "OFFERED") {
      waitBox.dataset.status = "OFFERED";
      // In the venue's zone and named as the page itself prints times ("06:54 KST"), not the phone's.
      const clock = new Date(w.offer_expires_at).toLocaleTimeString(document.documentElement.lang || "en", {
        timeZone: waitBox.dataset.timeZone || undefined,
        hour: "2-digit",
        minute: "2-digit",
        hourCycle: "h23",
      });
      const when = waitBox.dataset.zone ? `${clock} ${waitBox.dataset.zone}` : clock;
      waitBox.innerHTML = "";
      const p = document.createElement("p");
      p.className = "notice ok";
      p.id = "waitlist-offer";
      p.dataset.via = via;
      p.textContent = t("A seat came back for you! It is held for you until {when}.", { when }) + " ";
      const a = document.createElement("a");
      a.className = "button primary";
      a.href = w.checkout_url;
      a.textContent = t("Pay for it");
      p.append(a);
      waitBox.append(p);
      return true;
    }
    const pos = document.querySelector("#waitlist-position strong");
    if (pos && w.position) pos.textContent = String(w.position);
    return w.status !== "WAITING";
  };
  const ask = async () => {
    try {
      if (render(await getJSON(waitUrl), "poll")) return;
    } catch {
      // a failed ask is retried on the next round
    }
    setTimeout(ask, 3000);
  };
  if ("EventSource" in window) {
    waitSource = new EventSource(`${waitUrl}/stream`);
    waitSource.addEventListener("waitlist", (e) => {
      if (render(JSON.parse(e.data), "stream") && waitSource) {
        waitSource.close();
        waitSource = null;
      }
    });
    waitSource.addEventListener("error", () => {
      // refused (429) or gone for good: ask instead. A dropped stream reconnects by itself.
      if (waitSource && waitSource.readyState === EventSource.CLOSED) {
        waitSource = null;
        setTimeout(ask, 3000);
      }
    });
  } else {
    setTimeout(ask, 3000);
  }
}

if (box && box.dataset.status !== "NOT_IN_QUEUE") {
  if (box.dataset.status === "READY") admit();
  else listen();
}

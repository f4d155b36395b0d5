// The toll at the queue's door: fetch an ALTCHA challenge, solve it with ALTCHA's own solver
// (vendor/altcha/worker.js) in Web Workers, and hand back ALTCHA's base64 payload.
// The search space [0, maxnumber] is cut into chunks shared by a few workers, so the page can show
// how much of it has been searched (a fan finds the number halfway through on average).
import { getJSON, t } from "./app.js";

const CHUNK = 4000;

export async function fetchChallenge(showId) {
  return getJSON(`/web/queue/${showId}/challenge`);
}

export function solve(challenge, solverUrl, onProgress = () => {}) {
  const top = Number(challenge.maxnumber);
  const count = Math.max(1, Math.min(4, navigator.hardwareConcurrency || 2));
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const workers = [];
    let next = 0;
    let searched = 0;
    let busy = 0;
    let done = false;
    const finish = (error, number) => {
      if (done) return;
      done = true;
      for (const w of workers) w.terminate();
      if (error) reject(error);
      else resolve({ number, took: Math.round(performance.now() - started) });
    };
    const give = (w) => {
      if (done) return;
      if (next > top) {
        if (busy === 0) finish(new Error(t("The check could not be completed; please try again.")));
        return;
      }
      const start = next;
      const max = Math.min(top, start + CHUNK - 1);
      next = max + 1;
      w.size = max - start + 1;
      busy += 1;
      w.postMessage({
        type: "work",
        payload: { algorithm: challenge.algorithm, challenge: challenge.challenge, salt: challenge.salt },
        start,
        max,
      });
    };
    for (let i = 0; i < count; i += 1) {
      const w = new Worker(solverUrl);
      w.onmessage = (event) => {
        busy -= 1;
        searched += w.size || 0;
        const found = event.data;
        if (found && typeof found.number === "number") {
          onProgress(1);
          finish(null, found.number);
          return;
        }
        onProgress(Math.min(0.99, searched / (top + 1)));
        give(w);
      };
      w.onerror = () => finish(new Error(t("Your browser could not run the check (Web Workers are needed).")));
      workers.push(w);
    }
    for (const w of workers) give(w);
  });
}

// ALTCHA's payload: what its widget posts as the `altcha` field (and an API client as X-Altcha).
export function payload(challenge, solved) {
  return btoa(
    JSON.stringify({
      algorithm: challenge.algorithm,
      challenge: challenge.challenge,
      number: solved.number,
      salt: challenge.salt,
      signature: challenge.signature,
      took: solved.took,
    }),
  );
}

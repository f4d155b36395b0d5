// The venue form: add/remove sections, and a live preview of the layout on the shared SeatMap
// canvas. The server has the last word (field-level messages on submit); the preview only helps.
import { t } from "../app.js";
import { SeatMap } from "../seatmap.js";

const form = document.getElementById("venue-form");
const box = document.getElementById("sections");
const problem = document.getElementById("preview-problem");
const count = document.getElementById("preview-count");
const map = new SeatMap(document.getElementById("preview-map"), { selectable: false, stageLabel: t("STAGE") });
const MAX_SEATS = 100000;

function renumber() {
  [...box.querySelectorAll("[data-section]")].forEach((fs, i) => {
    fs.querySelector("legend").textContent = t("Section {n}", { n: i + 1 });
    for (const input of fs.querySelectorAll("input")) {
      const part = input.dataset.part;
      input.name = `sections-${i}-${part}`;
      input.id = `f-sections-${i}-${part}`;
      const label = input.closest(".field").querySelector("label");
      if (label) label.htmlFor = input.id;
    }
  });
}

function lengthsOf(fs) {
  const raw = fs.querySelector('[data-part="row_lengths"]').value.trim();
  if (raw) return raw.split(/[,;\s]+/).filter(Boolean).map(Number);
  const rows = Number(fs.querySelector('[data-part="rows"]').value);
  const per = Number(fs.querySelector('[data-part="seats_per_row"]').value);
  return Array.from({ length: Number.isInteger(rows) && rows > 0 && rows <= 200 ? rows : 0 }, () => per);
}

function preview() {
  const sections = [...box.querySelectorAll("[data-section]")];
  const seats = [];
  const names = new Set();
  let issue = "";
  let id = 1;
  sections.forEach((fs, index) => {
    const name = fs.querySelector('[data-part="name"]').value.trim() || t("Section {n}", { n: index + 1 });
    if (names.has(name.toLowerCase())) issue = t("Two sections are called “{name}”.", { name });
    names.add(name.toLowerCase());
    lengthsOf(fs).forEach((n, r) => {
      if (!Number.isInteger(n) || n < 1 || n > 200) { issue = t("{name}: every row needs 1 to 200 seats.", { name }); return; }
      if (seats.length + n > MAX_SEATS) { issue = t("A venue has at most {max} seats.", { max: MAX_SEATS.toLocaleString() }); return; }
      for (let k = 1; k <= n; k++) {
        seats.push({ id: id++, section: name, row: r + 1, number: k, price: sections.length - index, status: "AVAILABLE" });
      }
    });
  });
  map.setSeats(seats);
  count.textContent = "· " + t("{n} seats", { n: seats.length.toLocaleString() });
  problem.textContent = issue;
}

document.getElementById("add-section").addEventListener("click", () => {
  const first = box.querySelector("[data-section]");
  const copy = first.cloneNode(true);
  for (const input of copy.querySelectorAll("input")) { input.value = ""; input.removeAttribute("aria-invalid"); }
  for (const err of copy.querySelectorAll(".field-error")) err.remove();
  for (const f of copy.querySelectorAll(".has-error")) f.classList.remove("has-error");
  box.appendChild(copy);
  renumber();
  copy.querySelector("input").focus();
  preview();
});

box.addEventListener("click", (event) => {
  const button = event.target.closest("[data-remove]");
  if (!button || box.querySelectorAll("[data-section]").length < 2) return;
  button.closest("[data-section]").remove();
  renumber();
  preview();
});

form.addEventListener("input", preview);
renumber();
preview();

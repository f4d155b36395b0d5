// Checkout: when the hold's countdown ends the page reloads (and says the hold expired); a card
// payment whose outcome is not known yet shows "confirming" and polls until it is settled.
import { getJSON, show, t } from "./app.js";

const box = document.getElementById("checkout");
const countdown = document.getElementById("hold-countdown");
if (countdown) {
  countdown.addEventListener("countdown-done", () => setTimeout(() => window.location.reload(), 1500));
}

async function watchPayment(paymentId) {
  const note = document.getElementById("confirming");
  for (;;) {
    await new Promise((r) => setTimeout(r, 2000));
    try {
      const p = await getJSON(`/web/payments/${paymentId}`);
      if (p.status === "SUCCEEDED") {
        window.location.assign(`/tickets?paid=${p.reservation_id}`);
        return;
      }
      if (p.status !== "PENDING") {
        show(note, p.status === "REFUNDED"
          ? t("The hold ended while the card was being charged; the charge was refunded.")
          : t("The card payment did not go through; nothing was charged."), "error");
        setTimeout(() => window.location.reload(), 2500);
        return;
      }
    } catch (err) {
      show(note, err.message, "error");
    }
  }
}

if (box && box.dataset.paymentStatus === "PENDING" && box.dataset.paymentId) watchPayment(box.dataset.paymentId);

"""Payment use cases that own units of work: pay, refund, cancel a reservation, reconcile (a job).

Money moves exactly once:
- BALANCE is one statement (so one transaction, one round trip): debit (conditional UPDATE) +
  ledger row + payment SUCCEEDED + seats RESERVED + events + the Idempotency-Key's answer.
- CARD commits a PENDING payment with a provider idempotency key BEFORE calling the provider, so
  every retry (ours, the reconciler's) reuses that key and the provider never charges twice. The
  payment row moves out of PENDING only by a conditional UPDATE under the reservation's row lock.
- A charge whose hold died meanwhile is refunded at the provider and ends REFUNDED.
No transaction is open across a provider call, and a card payment holds one pool connection at a
time (idempotency's multi-step mode; house rule 3).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
import structlog

from boxoffice import ratelimit
from boxoffice.booking import flows as booking_flows
from boxoffice.booking import repository as booking_repo
from boxoffice.booking import rules, shield
from boxoffice.booking.effects import issue_seat_changes, publish_closed, settle
from boxoffice.booking.service import get_reservation, reservation_of
from boxoffice.db.idempotency import (
    IdempotentResult,
    LeanKey,
    lean_key,
    run_idempotent_steps,
    run_lean_idempotent,
)
from boxoffice.db.outbox import emit
from boxoffice.db.uow import LeanUnitOfWork, unit_of_work
from boxoffice.errors import (
    CurrencyMismatch,
    HoldExpired,
    InsufficientBalance,
    PaymentDeclined,
    PaymentInProgress,
    PaymentNotFound,
    PaymentRequired,
    RefundClosed,
    ReservationExpired,
    ReservationNotFound,
    UserNotFound,
)
from boxoffice.kit import trace
from boxoffice.payments import ledger, repository
from boxoffice.payments.provider import Charge, ProviderClient, ProviderUnavailable
from boxoffice.payments.rules import PaymentMethod, PaymentStatus
from boxoffice.payments.service import (
    check_no_live_payment,
    check_payable,
    confirm_in,
    payment_body,
    reconcile_grace,
    refuse_live_payment,
)
from boxoffice.runtime import Runtime
from boxoffice.salestats.recorder import sale_stats
from boxoffice.tickets import repository as tickets_repo
from boxoffice.tickets import service as tickets_service
from boxoffice.tickets.keys import keyring
from boxoffice.waiting_room.service import issue_release_lease

log = structlog.get_logger("boxoffice.payments")

PAY_SCOPE = "POST /api/payments"
RECONCILE_BATCH = 100


@dataclass
class _Confirmed:
    """What to do after the confirming transaction committed."""

    runtime: Runtime
    show_id: int
    user_id: int
    seat_ids: list[int]
    method: str

    async def __call__(self) -> None:
        runtime = self.runtime
        runtime.metrics.confirmations.inc()
        runtime.metrics.payments.labels(self.method, PaymentStatus.SUCCEEDED).inc()
        # The shield's sold marks, the seat map's patch and the lease's release in one write: one
        # wait for Redis, not three (nor three tasks: under load each task start waits a pass of
        # the event loop, longer than a round trip). Nobody waits on them (they follow the
        # answer, or a provider's settlement): batched with the pass's other effects.
        with runtime.hot_redis.one_write(batched=True):
            changes = issue_seat_changes(runtime, self.show_id, self.user_id, self.seat_ids, rules.RESERVED)
            lease = issue_release_lease(runtime.hot_redis, self.show_id, self.user_id)
        await settle(runtime, changes)
        try:  # the buyer is done: free the queue place for the next fan
            await lease
        except Exception as exc:
            log.warning("queue_lease_release_failed", show_id=self.show_id, error=type(exc).__name__)


# ---------------------------------------------------------------- BALANCE


@dataclass
class _BalanceWork:
    """The balance payment's one statement (payments.repository.pay_from_balance) on a lean unit
    of work: debit, ledger row, payment SUCCEEDED, seats and reservation RESERVED, their signed
    tickets and the order mail, events and the key's answer, or nothing. `show_id` is known once
    the statement found the reservation."""

    runtime: Runtime
    user_id: int
    reservation_id: int
    key: LeanKey
    first: PayFirstRound  # the rate-limit count (judged before the statement) and the payable entry
    show_id: int | None = None

    async def __call__(self, uow: LeanUnitOfWork) -> IdempotentResult:
        # No BEGIN/COMMIT: sign the hold's seats' tickets, then the one statement pays, sells and
        # writes those tickets together, or does nothing. The seats come from the hold's Redis
        # entry, which arrived with the rate limit's reply; without one (or when it was not the
        # hold's: the statement checks), from PostgreSQL first: one round trip more.
        seats = await self.first.payable if self.first.payable is not None else None
        await self.first.limit.enforce()
        if seats is not None:
            done = await self._sign_and_pay(uow, seats)
            if not done.signatures_refused:
                return self._settled(uow, done)
        seats = await tickets_repo.seats_to_sell(uow.conn, self.reservation_id, self.user_id)
        return self._settled(uow, await self._sign_and_pay(uow, seats))

    async def _sign_and_pay(self, uow: LeanUnitOfWork, seats: list[Any]) -> repository.BalancePayment:
        signed = tickets_service.sign(keyring(self.runtime), seats, self.key.now)
        try:
            return await repository.pay_from_balance(
                uow.conn, self.key.args, reservation_id=self.reservation_id, now=self.key.now, tickets=signed
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "payments_one_live_uq":
                raise  # the key's (replayed by the caller), or a seat's second live ticket (a bug)
            # A card payment of this hold went PENDING meanwhile.
            raise PaymentInProgress("A payment for this reservation is being processed") from None

    def _settled(self, uow: LeanUnitOfWork, done: repository.BalancePayment) -> IdempotentResult:
        replayed = self.key.replay(done.prior)
        if replayed is not None:
            return replayed
        res = check_payable(done.reservation, self.user_id, self.key.now)
        self.show_id = res["show_id"]
        if done.answer is None:
            refuse_live_payment(done.live_payment)
            if done.held_seats < res["seat_count"]:
                raise HoldExpired("The hold lost its seats; nothing was charged")
            if not done.user_exists:
                raise UserNotFound("User not found")
            if not done.same_currency:
                raise CurrencyMismatch(
                    "The show is priced in another currency than your balance; nothing was charged"
                )
            if not done.signed:  # the hold changed between the read and the statement
                raise PaymentInProgress(
                    "The reservation changed while paying; nothing was charged, try again"
                )
            raise InsufficientBalance("The balance does not cover this payment")
        uow.after_commit(
            _Confirmed(self.runtime, res["show_id"], self.user_id, done.sold, PaymentMethod.BALANCE)
        )
        return IdempotentResult(201, msgspec.json.decode(done.answer), replayed=False)


# ---------------------------------------------------------------- CARD


async def _mark_failed(
    runtime: Runtime, payment_id: int, code: str, reference: str | None
) -> dict[str, Any] | None:
    async with unit_of_work(runtime.sessions) as uow:
        row = await repository.settle(
            uow.session,
            payment_id,
            from_status=PaymentStatus.PENDING,
            to_status=PaymentStatus.FAILED,
            now=runtime.clock.now(),
            reference=reference,
            failure_code=code,
        )
        if row is not None:
            await emit(
                uow.session,
                "payment.failed",
                aggregate_type="payment",
                aggregate_id=payment_id,
                payload={"payment_id": payment_id, "reservation_id": row["reservation_id"], "code": code},
            )
    if row is not None:
        runtime.metrics.payments.labels(PaymentMethod.CARD, PaymentStatus.FAILED).inc()
    return row


class _NeedsRefund(Exception):
    """The charge succeeded but the hold is gone: roll back and refund."""


async def settle_charged(runtime: Runtime, payment_id: int, charge: Charge) -> dict[str, Any]:
    """A PENDING card payment whose charge succeeded: confirm the hold, or refund if it died.

    Used by the request and by the reconciler; whoever comes second finds it settled already.
    """
    async with runtime.sessions() as session:
        peek = await repository.get_payment(session, payment_id)
    if peek is None:
        raise PaymentNotFound("Payment not found")
    try:
        async with unit_of_work(runtime.sessions) as uow:
            now = runtime.clock.now()
            # Lock order everywhere: reservation, then payment.
            res = await booking_repo.lock_reservation(uow.session, peek["reservation_id"])
            payment = await repository.lock_payment(uow.session, payment_id)
            if res is None or payment is None:
                raise PaymentNotFound("Payment not found")
            if payment["status"] != PaymentStatus.PENDING:
                return payment
            if not rules.hold_is_live(res["status"], res["expires_at"], now):
                raise _NeedsRefund
            seat_ids = await confirm_in(uow.session, res, payment_id, now)
            if seat_ids is None:
                raise _NeedsRefund
            settled = await repository.settle(
                uow.session,
                payment_id,
                from_status=PaymentStatus.PENDING,
                to_status=PaymentStatus.SUCCEEDED,
                now=now,
                reference=charge.id,
            )
            assert settled is not None  # we hold the row lock and saw PENDING
            # TICKETS: one signed ticket per sold seat, in the confirming transaction.
            await tickets_service.issue(
                await tickets_repo.driver(uow.session), keyring(runtime), res["id"], now
            )
            uow.after_commit(
                _Confirmed(runtime, res["show_id"], res["user_id"], seat_ids, PaymentMethod.CARD)
            )
    except _NeedsRefund:
        return await _refund_dead_charge(runtime, payment_id, charge)
    return settled


async def _refund_dead_charge(runtime: Runtime, payment_id: int, charge: Charge) -> dict[str, Any]:
    # ProviderUnavailable propagates: the payment stays PENDING and the reconciler retries.
    await ProviderClient(runtime.http, runtime.settings).refund(charge.id)
    async with unit_of_work(runtime.sessions) as uow:
        row = await repository.settle(
            uow.session,
            payment_id,
            from_status=PaymentStatus.PENDING,
            to_status=PaymentStatus.REFUNDED,
            now=runtime.clock.now(),
            reference=charge.id,
            failure_code="HOLD_EXPIRED",
        )
        if row is None:
            current = await repository.get_payment(uow.session, payment_id)
            assert current is not None
            return current
        await emit(
            uow.session,
            "payment.refunded",
            aggregate_type="payment",
            aggregate_id=payment_id,
            payload={
                "payment_id": payment_id,
                "reservation_id": row["reservation_id"],
                "reason": "hold_expired",
            },
        )
    runtime.metrics.payments.labels(PaymentMethod.CARD, PaymentStatus.REFUNDED).inc()
    return row


@dataclass
class _CardWork:
    """The card payment's steps, each its own short unit of work; safe to run again for the same
    Idempotency-Key (a retry finds the attempt the key started and finishes it)."""

    runtime: Runtime
    user_id: int
    reservation_id: int
    idempotency_key: str
    card_number: str | None = None

    async def _pending(self) -> dict[str, Any]:
        """1. The PENDING row and its provider key, committed before the provider hears of it."""
        async with unit_of_work(self.runtime.sessions) as uow:
            now = self.runtime.clock.now()
            locked = await booking_repo.lock_reservation(uow.session, self.reservation_id)
            if locked is not None and locked["user_id"] == self.user_id:
                started = await repository.card_payment_for_key(
                    uow.session, self.reservation_id, self.user_id, self.idempotency_key
                )
                if started is not None:
                    return started
            res = check_payable(locked, self.user_id, now)
            await check_no_live_payment(uow.session, res["id"])
            return await repository.insert_payment(
                uow.session,
                reservation_id=res["id"],
                user_id=self.user_id,
                amount=int(res["total_price"]),
                method=PaymentMethod.CARD,
                status=PaymentStatus.PENDING,
                idempotency_key=self.idempotency_key,
                provider_key=f"bo-pay-{uuid.uuid4().hex}",
                now=now,
            )

    async def __call__(self) -> tuple[int, dict[str, Any]]:
        payment = await self._pending()
        if payment["status"] == PaymentStatus.PENDING:
            # 2. The provider, outside any transaction. An unclear answer (not a timeout) is retried
            #    once with the same key: the provider returns the charge it made, never a second one.
            client = ProviderClient(self.runtime.http, self.runtime.settings)
            key, amount, card = payment["provider_idempotency_key"], payment["amount"], self.card_number
            currency = payment["currency"]
            attempt = await client.charge(key, amount, currency, card)
            if attempt.status == "UNKNOWN" and not attempt.timed_out:
                attempt = await client.charge(key, amount, currency, card)
            if attempt.charge is not None and attempt.charge.card_fingerprint:
                await _note_card(self.runtime, payment["id"], attempt.charge.card_fingerprint)
            # 3. Settle.
            if attempt.status == "FAILED":
                await _mark_failed(
                    self.runtime, payment["id"], "DECLINED", attempt.charge.id if attempt.charge else None
                )
                raise PaymentDeclined("The card was declined; the hold stays until it expires")
            if attempt.status == "UNKNOWN":
                # Left PENDING for the reconciler, which asks the provider by the same key.
                self.runtime.metrics.payments.labels(PaymentMethod.CARD, PaymentStatus.PENDING).inc()
                return 202, payment_body(payment, rules.HOLD)
            assert attempt.charge is not None
            payment = await settle_charged(self.runtime, payment["id"], attempt.charge)
        if payment["status"] == PaymentStatus.REFUNDED:
            raise HoldExpired(
                "The hold expired while the card was charged; the charge was refunded",
                payment_id=payment["id"],
            )
        return 201, payment_body(
            payment, rules.RESERVED if payment["status"] == PaymentStatus.SUCCEEDED else None
        )


async def _note_card(runtime: Runtime, payment_id: int, fingerprint: str) -> None:
    """The provider's fingerprint of the card (declined or not): a console signal of one person
    behind several accounts."""
    async with unit_of_work(runtime.sessions) as uow:
        await repository.set_card_fingerprint(uow.session, payment_id, fingerprint)


@dataclass(frozen=True, slots=True)
class PayFirstRound:
    """The payment's first Redis round, written now and awaited later: the payment route issues
    it with its login check (http.hot first_round), in one write. The rate-limit count, and for a
    balance payment the hold's payable entry (booking.shield.Payable)."""

    limit: ratelimit.Hit
    payable: shield.Payable | None


def pay_first_round(runtime: Runtime, user_id: int, reservation_id: int, method: str) -> PayFirstRound:
    limit = ratelimit.begin(runtime, "payment", user_id, limit=runtime.settings.limit_payments_per_minute)
    payable = (
        shield.Payable(runtime.hot_redis, reservation_id, user_id)
        if method == PaymentMethod.BALANCE
        else None
    )
    return PayFirstRound(limit, payable)


async def pay(
    runtime: Runtime,
    *,
    user_id: int,
    reservation_id: int,
    method: str,
    idempotency_key: str | None,
    card_number: str | None = None,
    first: PayFirstRound | None = None,
) -> IdempotentResult:
    """POST /api/payments. Only the login is checked: the admission token gates choosing seats, and
    a fan's own live hold stays payable for as long as it lives, even after that token expired.
    Settled outcomes, with their latency, feed the admin dashboard's sale statistics. `first`: the
    payment's first Redis round, already issued (pay_first_round)."""
    first = first or pay_first_round(runtime, user_id, reservation_id, method)
    lean = method == PaymentMethod.BALANCE and idempotency_key is not None
    if not lean:  # the balance payment judges it with its seats (the replies come together)
        with trace.step("pay.rate_limit"):
            await first.limit.enforce()
    started = time.perf_counter()
    fingerprint = {"reservation_id": reservation_id, "method": method}
    show_id: int | None = None
    try:
        if not lean:
            # 404 for anyone else's first (the balance statement finds that out itself).
            show_id = (await reservation_of(runtime, user_id, reservation_id))["show_id"]
        if method == PaymentMethod.BALANCE:
            key = lean_key(
                user_id, PAY_SCOPE, idempotency_key, fingerprint, runtime.clock.now(), required=True
            )
            balance = _BalanceWork(runtime, user_id, reservation_id, key, first)
            try:
                with trace.step("pay.balance"):
                    result = await run_lean_idempotent(runtime, key, balance)
            finally:
                show_id = balance.show_id
        else:
            # The key is required: run_idempotent_steps refuses before any work when it is missing.
            card = _CardWork(runtime, user_id, reservation_id, idempotency_key or "", card_number)
            with trace.step("pay.card"):
                result = await run_idempotent_steps(
                    runtime,
                    user_id=user_id,
                    scope=PAY_SCOPE,
                    key=idempotency_key,
                    fingerprint=fingerprint,
                    work=card,
                )
    except PaymentRequired:
        if show_id is not None:
            elapsed = time.perf_counter() - started
            sale_stats(runtime).outcome(show_id, "payments_failed", "payment", runtime.clock.now(), elapsed)
        raise
    if not result.replayed and result.status == 201 and show_id is not None:
        elapsed = time.perf_counter() - started
        sale_stats(runtime).outcome(show_id, "payments_succeeded", "payment", runtime.clock.now(), elapsed)
    return result


# ---------------------------------------------------------------- refunds and cancelling


async def refund_reservation(
    runtime: Runtime, *, user_id: int, reservation_id: int, by_admin: bool = False
) -> None:
    """Cancel a paid reservation: money back where it came from, seats back on sale.

    Full refund per the show's policy (until its cutoff before the show, 24 h by default), else 409
    REFUND_CLOSED; an administrator refunding on a fan's behalf (audited by the admin domain) is not
    bound by it. A card refund is asked of the provider first (idempotent there); a crash after it
    is finished by repeating the cancel.
    """
    now = runtime.clock.now()
    async with runtime.sessions() as session:
        res = await booking_repo.get_reservation(session, reservation_id)
        if res is None or res["user_id"] != user_id:
            raise ReservationNotFound("Reservation not found")
        policy = await booking_repo.refund_policy(session, res["show_id"])
        payment = await repository.live_payment(session, reservation_id)
    if res["status"] != rules.RESERVED or payment is None or payment["status"] != PaymentStatus.SUCCEEDED:
        return
    if not by_admin and (policy is None or not rules.refund_allowed(policy[0], now, policy[1])):
        cutoff = policy[1] if policy is not None else None
        detail = (
            "This show allows no refunds"
            if cutoff is None
            else f"Refunds close {cutoff} hours before the show"
        )
        raise RefundClosed(detail)
    if payment["method"] == PaymentMethod.CARD and payment["provider_reference"]:
        await ProviderClient(runtime.http, runtime.settings).refund(payment["provider_reference"])
    async with unit_of_work(runtime.sessions) as uow:
        session = uow.session
        res = await booking_repo.lock_reservation(session, reservation_id)
        paid = await repository.lock_succeeded(session, reservation_id)
        if res is None or res["status"] != rules.RESERVED or paid is None:
            return  # a concurrent DELETE finished it
        if paid["method"] == PaymentMethod.BALANCE and paid["amount"] > 0:
            await ledger.credit(
                session, user_id, int(paid["amount"]), "REFUND", f"reservation:{reservation_id}"
            )
        await repository.settle(
            session,
            paid["id"],
            from_status=PaymentStatus.SUCCEEDED,
            to_status=PaymentStatus.REFUNDED,
            now=now,
        )
        closed = await booking_repo.close_reservations(
            session,
            [reservation_id],
            from_status=rules.RESERVED,
            to_status=rules.CANCELLED,
            event="reservation.cancelled",
            reason="refunded",
            now=now,
        )
        # TICKETS: the refunded reservation's tickets are void at once (same transaction).
        await tickets_service.void(await tickets_repo.driver(session), reservation_id, now)
        await emit(
            session,
            "payment.refunded",
            aggregate_type="payment",
            aggregate_id=paid["id"],
            show_id=res["show_id"],
            payload={"payment_id": paid["id"], "reservation_id": reservation_id, "reason": "cancelled"},
        )
        method = str(paid["method"])

        async def refunded() -> None:
            runtime.metrics.payments.labels(method, PaymentStatus.REFUNDED).inc()
            await publish_closed(runtime, closed)

        uow.after_commit(refunded)


async def cancel(
    runtime: Runtime, *, user_id: int, reservation_id: int, by_admin: bool = False
) -> dict[str, Any]:
    """DELETE /api/reservations/{id}: a hold -> CANCELLED (seats freed); a paid reservation ->
    refunded per the show's policy (decided here, downstream of booking). An administrator acting
    for the fan (`by_admin`, audited by the admin domain) is not bound by the policy."""
    while True:
        row = await reservation_of(runtime, user_id, reservation_id)
        if row["status"] == rules.RESERVED:
            await refund_reservation(
                runtime, user_id=user_id, reservation_id=reservation_id, by_admin=by_admin
            )
        elif row["status"] == rules.HOLD:
            if not await booking_flows.cancel_hold(runtime, user_id=user_id, reservation_id=reservation_id):
                continue  # it changed state meanwhile (paid, expired): answer with what it is now
        elif row["status"] == rules.EXPIRED:
            raise ReservationExpired("This hold has expired; its seats are released")
        break
    async with runtime.sessions() as session:
        return await get_reservation(session, user_id, reservation_id)


# ---------------------------------------------------------------- the payment_reconciliation job


async def reconcile_once(runtime: Runtime, limit: int = RECONCILE_BATCH) -> int:
    """Ask the provider about stale PENDING card payments (by their key) and settle each once."""
    now = runtime.clock.now()
    async with unit_of_work(runtime.sessions) as uow:
        leased = await repository.lease_pending(
            uow.session, before=now - reconcile_grace(runtime), now=now, limit=limit
        )
    client = ProviderClient(runtime.http, runtime.settings)
    settled = 0
    for payment in leased:
        try:
            charge = await client.get_charge(payment["provider_idempotency_key"])
            if charge is None:  # the request never reached the provider: nothing was charged
                await _mark_failed(runtime, payment["id"], "NOT_CHARGED", None)
            elif charge.status == "SUCCEEDED":
                await settle_charged(runtime, payment["id"], charge)
            elif charge.status == "FAILED":
                await _mark_failed(runtime, payment["id"], "DECLINED", charge.id)
            elif charge.status == "REFUNDED":
                await _refund_dead_charge(runtime, payment["id"], charge)
            settled += 1
        except ProviderUnavailable as exc:
            log.warning("reconcile_provider_unavailable", payment_id=payment["id"], error=exc.detail)
    return settled


async def reconcile(runtime: Runtime) -> int:
    return await reconcile_once(runtime)

"""Payments: balance and card, confirmation of the hold, refunds, reconciliation (JOBS).

Money moves exactly once:
- BALANCE is one transaction: debit (conditional UPDATE) + payment SUCCEEDED + seats RESERVED.
- CARD commits a PENDING payment with a provider idempotency key BEFORE calling the provider, so
  every retry (ours, the reconciler's) reuses that key and the provider never charges twice. The
  payment row moves out of PENDING only by a conditional UPDATE under the reservation's row lock.
- A charge whose hold died meanwhile is refunded at the provider and ends REFUNDED.
Provider calls never run inside a database transaction (house rule 3).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice import ratelimit
from boxoffice.booking import repository as booking_repo
from boxoffice.booking import rules
from boxoffice.booking.service import publish_closed, publish_seat_changes
from boxoffice.errors import Conflict, NotFound, PaymentRequired
from boxoffice.events import emit
from boxoffice.idempotency import IdempotentResult, run_idempotent
from boxoffice.payments import ledger, repository
from boxoffice.payments.provider import Charge, ProviderClient, ProviderUnavailable
from boxoffice.runtime import Runtime
from boxoffice.waiting_room.service import release_lease
from boxoffice.waiting_room.tokens import check_queue_token
from boxoffice.worker import Job

log = structlog.get_logger("boxoffice.payments")

PAY_SCOPE = "POST /api/payments"
RECONCILE_BATCH = 100


def payment_body(row: dict[str, Any], reservation_status: str | None = None) -> dict[str, Any]:
    return {
        "payment_id": row["id"],
        "reservation_id": row["reservation_id"],
        "amount": row["amount"],
        "method": row["method"],
        "status": row["status"],
        "reservation_status": reservation_status,
        "provider_reference": row["provider_reference"],
        "failure_code": row["failure_code"],
        "created_at": row["created_at"],
        "settled_at": row["settled_at"],
    }


def _check_payable(res: dict[str, Any] | None, user_id: int, now: datetime) -> dict[str, Any]:
    if res is None or res["user_id"] != user_id:
        raise NotFound("Reservation not found", code="RESERVATION_NOT_FOUND")
    if res["status"] == rules.RESERVED:
        raise Conflict("This reservation is already paid", code="ALREADY_PAID", reservation_id=res["id"])
    if not rules.hold_is_live(res["status"], res["expires_at"], now):
        raise Conflict(
            "This hold has expired or was cancelled; nothing was charged",
            code="HOLD_EXPIRED",
            reservation_id=res["id"],
        )
    return res


async def _check_no_live_payment(session: AsyncSession, reservation_id: int) -> None:
    live = await repository.live_payment(session, reservation_id)
    if live is None:
        return
    if live["status"] == "SUCCEEDED":
        raise Conflict("This reservation is already paid", code="ALREADY_PAID", payment_id=live["id"])
    raise Conflict(
        "A card payment for this reservation is being processed",
        code="PAYMENT_IN_PROGRESS",
        payment_id=live["id"],
    )


@dataclass
class _Confirmed:
    """What to do after the confirming transaction committed."""

    show_id: int
    user_id: int
    seat_ids: list[int]
    method: str


async def _after_confirm(runtime: Runtime, done: _Confirmed) -> None:
    runtime.metrics.confirmations.inc()
    runtime.metrics.payments.labels(done.method, "SUCCEEDED").inc()
    await publish_seat_changes(runtime, done.show_id, done.user_id, done.seat_ids, rules.RESERVED)
    try:  # the buyer is done: free the queue place for the next fan
        await release_lease(runtime.redis, done.show_id, done.user_id)
    except Exception as exc:
        log.warning("queue_lease_release_failed", show_id=done.show_id, error=type(exc).__name__)


async def _confirm_in(
    session: AsyncSession, res: dict[str, Any], payment_id: int, now: datetime
) -> list[int] | None:
    seat_ids = await booking_repo.confirm(session, res["id"], now)
    if seat_ids is None:
        return None
    await emit(
        session,
        "payment.succeeded",
        aggregate_type="payment",
        aggregate_id=payment_id,
        show_id=res["show_id"],
        payload={"payment_id": payment_id, "reservation_id": res["id"], "user_id": res["user_id"]},
    )
    return seat_ids


# ---------------------------------------------------------------- BALANCE


@dataclass
class _BalanceWork:
    runtime: Runtime
    user_id: int
    reservation_id: int
    idempotency_key: str | None
    done: list[_Confirmed] = field(default_factory=list)

    async def __call__(self, session: AsyncSession) -> tuple[int, dict[str, Any]]:
        now = self.runtime.clock.now()
        res = _check_payable(
            await booking_repo.lock_reservation(session, self.reservation_id), self.user_id, now
        )
        await _check_no_live_payment(session, res["id"])
        amount = int(res["total_price"])
        if amount > 0:
            await ledger.debit(session, self.user_id, amount, "PAYMENT", f"reservation:{res['id']}")
        payment = await repository.insert_payment(
            session,
            reservation_id=res["id"],
            user_id=self.user_id,
            amount=amount,
            method="BALANCE",
            status="SUCCEEDED",
            idempotency_key=self.idempotency_key,
            provider_key=None,
            now=now,
        )
        seat_ids = await _confirm_in(session, res, payment["id"], now)
        if seat_ids is None:  # unreachable while the hold is live; rolls the debit back if it happens
            raise Conflict("The hold lost its seats; nothing was charged", code="HOLD_EXPIRED")
        self.done.append(_Confirmed(res["show_id"], self.user_id, seat_ids, "BALANCE"))
        return 201, payment_body(payment, rules.RESERVED)


# ---------------------------------------------------------------- CARD


async def _mark_failed(
    runtime: Runtime, payment_id: int, code: str, reference: str | None
) -> dict[str, Any] | None:
    async with runtime.sessions() as session, session.begin():
        row = await repository.settle(
            session,
            payment_id,
            from_status="PENDING",
            to_status="FAILED",
            now=runtime.clock.now(),
            reference=reference,
            failure_code=code,
        )
        if row is not None:
            await emit(
                session,
                "payment.failed",
                aggregate_type="payment",
                aggregate_id=payment_id,
                payload={"payment_id": payment_id, "reservation_id": row["reservation_id"], "code": code},
            )
    if row is not None:
        runtime.metrics.payments.labels("CARD", "FAILED").inc()
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
        raise NotFound("Payment not found", code="PAYMENT_NOT_FOUND")
    done: _Confirmed | None = None
    try:
        async with runtime.sessions() as session, session.begin():
            now = runtime.clock.now()
            # Lock order everywhere: reservation, then payment.
            res = await booking_repo.lock_reservation(session, peek["reservation_id"])
            payment = await repository.lock_payment(session, payment_id)
            if res is None or payment is None:
                raise NotFound("Payment not found", code="PAYMENT_NOT_FOUND")
            if payment["status"] != "PENDING":
                return payment
            if not rules.hold_is_live(res["status"], res["expires_at"], now):
                raise _NeedsRefund
            seat_ids = await _confirm_in(session, res, payment_id, now)
            if seat_ids is None:
                raise _NeedsRefund
            settled = await repository.settle(
                session,
                payment_id,
                from_status="PENDING",
                to_status="SUCCEEDED",
                now=now,
                reference=charge.id,
            )
            assert settled is not None  # we hold the row lock and saw PENDING
            done = _Confirmed(res["show_id"], res["user_id"], seat_ids, "CARD")
    except _NeedsRefund:
        return await _refund_dead_charge(runtime, payment_id, charge)
    await _after_confirm(runtime, done)
    return settled


async def _refund_dead_charge(runtime: Runtime, payment_id: int, charge: Charge) -> dict[str, Any]:
    # ProviderUnavailable propagates: the payment stays PENDING and the reconciler retries.
    await ProviderClient(runtime.http, runtime.settings).refund(charge.id)
    async with runtime.sessions() as session, session.begin():
        row = await repository.settle(
            session,
            payment_id,
            from_status="PENDING",
            to_status="REFUNDED",
            now=runtime.clock.now(),
            reference=charge.id,
            failure_code="HOLD_EXPIRED",
        )
        if row is None:
            current = await repository.get_payment(session, payment_id)
            assert current is not None
            return current
        await emit(
            session,
            "payment.refunded",
            aggregate_type="payment",
            aggregate_id=payment_id,
            payload={
                "payment_id": payment_id,
                "reservation_id": row["reservation_id"],
                "reason": "hold_expired",
            },
        )
    runtime.metrics.payments.labels("CARD", "REFUNDED").inc()
    return row


@dataclass
class _CardWork:
    runtime: Runtime
    user_id: int
    reservation_id: int
    idempotency_key: str | None

    async def __call__(self, session: AsyncSession) -> tuple[int, dict[str, Any]]:
        # 1. The PENDING row and its provider key are committed before the provider hears of it.
        async with self.runtime.sessions() as own, own.begin():
            now = self.runtime.clock.now()
            res = _check_payable(
                await booking_repo.lock_reservation(own, self.reservation_id), self.user_id, now
            )
            await _check_no_live_payment(own, res["id"])
            payment = await repository.insert_payment(
                own,
                reservation_id=res["id"],
                user_id=self.user_id,
                amount=int(res["total_price"]),
                method="CARD",
                status="PENDING",
                idempotency_key=self.idempotency_key,
                provider_key=f"bo-pay-{uuid.uuid4().hex}",
                now=now,
            )
        # 2. The provider, outside any transaction. An unclear answer (not a timeout) is retried
        #    once with the same key: the provider returns the charge it made, never a second one.
        client = ProviderClient(self.runtime.http, self.runtime.settings)
        attempt = await client.charge(payment["provider_idempotency_key"], payment["amount"])
        if attempt.status == "UNKNOWN" and not attempt.timed_out:
            attempt = await client.charge(payment["provider_idempotency_key"], payment["amount"])
        # 3. Settle.
        if attempt.status == "FAILED":
            await _mark_failed(
                self.runtime, payment["id"], "DECLINED", attempt.charge.id if attempt.charge else None
            )
            raise PaymentRequired(
                "The card was declined; the hold stays until it expires", code="PAYMENT_DECLINED"
            )
        if attempt.status == "UNKNOWN":
            # Left PENDING for the reconciler, which asks the provider by the same key.
            self.runtime.metrics.payments.labels("CARD", "PENDING").inc()
            return 202, payment_body(payment, rules.HOLD)
        assert attempt.charge is not None
        final = await settle_charged(self.runtime, payment["id"], attempt.charge)
        if final["status"] == "REFUNDED":
            raise Conflict(
                "The hold expired while the card was charged; the charge was refunded",
                code="HOLD_EXPIRED",
                payment_id=final["id"],
            )
        return 201, payment_body(final, rules.RESERVED if final["status"] == "SUCCEEDED" else None)


async def pay(
    runtime: Runtime,
    *,
    user_id: int,
    reservation_id: int,
    method: str,
    queue_token: str | None,
    idempotency_key: str | None,
) -> IdempotentResult:
    """POST /api/payments."""
    await ratelimit.enforce(runtime, "payment", user_id, limit=runtime.settings.limit_payments_per_minute)
    async with runtime.sessions() as session:
        res = await booking_repo.get_reservation(session, reservation_id)
    if res is None or res["user_id"] != user_id:
        raise NotFound("Reservation not found", code="RESERVATION_NOT_FOUND")
    await check_queue_token(runtime, user_id, res["show_id"], queue_token)
    fingerprint = {"reservation_id": reservation_id, "method": method}
    if method == "BALANCE":
        balance = _BalanceWork(runtime, user_id, reservation_id, idempotency_key)
        result = await run_idempotent(
            runtime,
            user_id=user_id,
            scope=PAY_SCOPE,
            key=idempotency_key,
            fingerprint=fingerprint,
            work=balance,
        )
        for done in balance.done if not result.replayed else []:
            await _after_confirm(runtime, done)
        return result
    card = _CardWork(runtime, user_id, reservation_id, idempotency_key)
    return await run_idempotent(
        runtime, user_id=user_id, scope=PAY_SCOPE, key=idempotency_key, fingerprint=fingerprint, work=card
    )


async def get_payment(session: AsyncSession, user_id: int, payment_id: int) -> dict[str, Any]:
    row = await repository.get_payment(session, payment_id)
    if row is None or row["user_id"] != user_id:
        raise NotFound("Payment not found", code="PAYMENT_NOT_FOUND")
    return payment_body(row)


# ---------------------------------------------------------------- refunds


async def refund_reservation(runtime: Runtime, *, user_id: int, reservation_id: int) -> None:
    """Cancel a paid reservation: money back where it came from, seats back on sale.

    Full refund until 24 h before the show, else 409 REFUND_CLOSED. A card refund is asked of the
    provider first (idempotent there); a crash after it is finished by repeating the DELETE.
    """
    now = runtime.clock.now()
    async with runtime.sessions() as session:
        res = await booking_repo.get_reservation(session, reservation_id)
        if res is None or res["user_id"] != user_id:
            raise NotFound("Reservation not found", code="RESERVATION_NOT_FOUND")
        starts_at = await booking_repo.show_starts_at(session, res["show_id"])
        payment = await repository.live_payment(session, reservation_id)
    if res["status"] != rules.RESERVED or payment is None or payment["status"] != "SUCCEEDED":
        return
    if starts_at is None or not rules.refund_allowed(starts_at, now):
        raise Conflict("Refunds close 24 hours before the show", code="REFUND_CLOSED")
    if payment["method"] == "CARD" and payment["provider_reference"]:
        await ProviderClient(runtime.http, runtime.settings).refund(payment["provider_reference"])
    async with runtime.sessions() as session, session.begin():
        res = await booking_repo.lock_reservation(session, reservation_id)
        paid = await repository.lock_succeeded(session, reservation_id)
        if res is None or res["status"] != rules.RESERVED or paid is None:
            return  # a concurrent DELETE finished it
        if paid["method"] == "BALANCE" and paid["amount"] > 0:
            await ledger.credit(
                session, user_id, int(paid["amount"]), "REFUND", f"reservation:{reservation_id}"
            )
        await repository.settle(session, paid["id"], from_status="SUCCEEDED", to_status="REFUNDED", now=now)
        closed = await booking_repo.close_reservations(
            session,
            [reservation_id],
            from_status=rules.RESERVED,
            to_status=rules.CANCELLED,
            event="reservation.cancelled",
            reason="refunded",
            now=now,
        )
        await emit(
            session,
            "payment.refunded",
            aggregate_type="payment",
            aggregate_id=paid["id"],
            show_id=res["show_id"],
            payload={"payment_id": paid["id"], "reservation_id": reservation_id, "reason": "cancelled"},
        )
    runtime.metrics.payments.labels(paid["method"], "REFUNDED").inc()
    await publish_closed(runtime, closed)


# ---------------------------------------------------------------- reconciliation


def reconcile_grace(runtime: Runtime) -> timedelta:
    """A PENDING payment younger than this may still have its provider call in flight."""
    return timedelta(seconds=2 * runtime.settings.payment_provider_timeout_seconds + 1)


async def reconcile_once(runtime: Runtime, limit: int = RECONCILE_BATCH) -> int:
    """Ask the provider about stale PENDING card payments (by their key) and settle each once."""
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        leased = await repository.lease_pending(
            session, before=now - reconcile_grace(runtime), now=now, limit=limit
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


JOBS: list[Job] = [Job("payment_reconciliation", 5.0, reconcile)]

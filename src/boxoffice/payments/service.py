"""Payment domain operations on a session given to them (they never commit): the answer's shape,
the payability checks, confirming a hold, reading a payment. The use cases (pay, refund, cancel,
reconcile) and their units of work are in `payments/flows.py`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.booking import rules
from boxoffice.errors import (
    AlreadyPaid,
    HoldExpired,
    PaymentInProgress,
    PaymentNotFound,
    ReservationNotFound,
)
from boxoffice.payments import repository
from boxoffice.payments.rules import PaymentStatus
from boxoffice.runtime import Runtime


def payment_body(row: dict[str, Any], reservation_status: str | None = None) -> dict[str, Any]:
    return {
        "payment_id": row["id"],
        "reservation_id": row["reservation_id"],
        "amount": row["amount"],
        "currency": row["currency"],
        "method": row["method"],
        "status": row["status"],
        "reservation_status": reservation_status,
        "provider_reference": row["provider_reference"],
        "failure_code": row["failure_code"],
        "created_at": row["created_at"],
        "settled_at": row["settled_at"],
    }


def check_payable(res: dict[str, Any] | None, user_id: int, now: datetime) -> dict[str, Any]:
    if res is None or res["user_id"] != user_id:
        raise ReservationNotFound("Reservation not found")
    if res["status"] == rules.RESERVED:
        raise AlreadyPaid("This reservation is already paid", reservation_id=res["id"])
    if not rules.hold_is_live(res["status"], res["expires_at"], now):
        raise HoldExpired(
            "This hold has expired or was cancelled; nothing was charged",
            reservation_id=res["id"],
        )
    return res


async def check_no_live_payment(session: AsyncSession, reservation_id: int) -> None:
    refuse_live_payment(await repository.live_payment(session, reservation_id))


def refuse_live_payment(live: dict[str, Any] | None) -> None:
    """409 when the reservation has a payment in flight (PENDING) or done (SUCCEEDED)."""
    if live is None:
        return
    if live["status"] == PaymentStatus.SUCCEEDED:
        raise AlreadyPaid("This reservation is already paid", payment_id=live["id"])
    raise PaymentInProgress(
        "A card payment for this reservation is being processed",
        payment_id=live["id"],
    )


async def confirm_in(
    session: AsyncSession, res: dict[str, Any], payment_id: int, now: datetime
) -> list[int] | None:
    """The hold's seats and the reservation -> RESERVED with their events (the same SQL as the
    balance payment's statement); None if any seat was lost."""
    return await repository.confirm(session, res["id"], payment_id, now)


async def get_payment(session: AsyncSession, user_id: int, payment_id: int) -> dict[str, Any]:
    row = await repository.get_payment(session, payment_id)
    if row is None or row["user_id"] != user_id:
        raise PaymentNotFound("Payment not found")
    return payment_body(row)


async def payment_of_reservation(
    session: AsyncSession, user_id: int, reservation_id: int
) -> dict[str, Any] | None:
    """The reservation's live payment (PENDING or SUCCEEDED) if it is this user's, else None."""
    row = await repository.live_payment(session, reservation_id)
    if row is None or row["user_id"] != user_id:
        return None
    return payment_body(row)


def reconcile_grace(runtime: Runtime) -> timedelta:
    """A PENDING payment younger than this may still have its provider call in flight."""
    return timedelta(seconds=2 * runtime.settings.payment_provider_timeout_seconds + 1)

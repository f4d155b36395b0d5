"""Admin use cases that write: the audited cancel-and-refund on a fan's behalf; the browsers a fan
logs in from (a console signal)."""

from __future__ import annotations

from typing import Any

from boxoffice.admin import repository, rules
from boxoffice.booking import rules as booking_rules
from boxoffice.db.uow import unit_of_work
from boxoffice.errors import DomainError, NotCancellable, ReservationNotFound
from boxoffice.payments.flows import cancel
from boxoffice.runtime import Runtime


async def cancel_for_fan(
    runtime: Runtime, *, admin_id: int, reservation_id: int, reason: str
) -> dict[str, Any]:
    """Cancel a fan's hold or refund their paid reservation on their behalf, audited.

    The audit row (who, when, why) commits as REQUESTED before anything changes and is marked DONE
    or FAILED after, so a crash in between leaves a trace rather than an unaudited refund. The
    refund itself is the payments domain's (same flow as the fan's cancel, not bound by the show's
    fan refund cutoff: that is the point of asking the promoter).
    """
    async with runtime.sessions() as session:
        res = await repository.reservation_owner(session, reservation_id)
    if res is None:
        raise ReservationNotFound("Reservation not found")
    if res["status"] not in (booking_rules.HOLD, booking_rules.RESERVED):
        raise NotCancellable(
            f"Reservation {reservation_id} is {res['status']}: there is nothing to cancel or refund",
            status_now=res["status"],
        )
    async with unit_of_work(runtime.sessions) as uow:
        action_id = await repository.insert_action(
            uow.session,
            {
                "admin_id": admin_id,
                "action": "reservation.cancel_refund",
                "target_type": "reservation",
                "target_id": reservation_id,
                "user_id": res["user_id"],
                "reason": reason,
                "details": {
                    "previous_status": res["status"],
                    "total_price": res["total_price"],
                    "currency": res["currency"],
                },
            },
        )
    try:
        after = await cancel(runtime, user_id=res["user_id"], reservation_id=reservation_id, by_admin=True)
    except DomainError as exc:
        await _finish(runtime, action_id, "FAILED", {"code": exc.code, "detail": exc.detail})
        raise
    except BaseException:
        await _finish(runtime, action_id, "FAILED", {"code": "INTERNAL_ERROR"})
        raise
    if after["status"] == res["status"]:  # e.g. a card payment still settling: nothing moved
        await _finish(runtime, action_id, "FAILED", {"code": "NOT_CANCELLABLE"})
        raise NotCancellable(
            f"Reservation {reservation_id} could not be cancelled now; nothing changed",
            status_now=after["status"],
        )
    refunded = res["total_price"] if res["status"] == booking_rules.RESERVED else 0
    await _finish(runtime, action_id, "DONE", {"status": after["status"], "refunded": refunded})
    return {
        "reservation_id": reservation_id,
        "user_id": res["user_id"],
        "previous_status": res["status"],
        "status": after["status"],
        "refunded": refunded,
        "audit_id": action_id,
    }


async def _finish(runtime: Runtime, action_id: int, outcome: str, details: dict[str, Any]) -> None:
    async with unit_of_work(runtime.sessions) as uow:
        await repository.finish_action(uow.session, action_id, outcome, details)


async def note_device(runtime: Runtime, user_id: int, device_id: str) -> None:
    """A fan logged in from this browser (its device cookie): kept hashed, for the console's
    signals of one person behind several accounts."""
    async with unit_of_work(runtime.sessions) as uow:
        await repository.note_device(uow.session, user_id, rules.device_hash(device_id), runtime.clock.now())

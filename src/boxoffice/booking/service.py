"""Booking domain operations: the show's hold rules, reading reservations, the live seat stream.

No transaction is opened here: the use cases that write (hold, cancel a hold, expire) are in
`booking/flows.py`; reads take the request's session or a short read-only one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.booking import repository, rules, shield
from boxoffice.booking.rules import RuleViolation, ShowRules
from boxoffice.errors import DomainError, ReservationNotFound, ShowNotFound, error_class
from boxoffice.runtime import Runtime


def domain_error(err: RuleViolation) -> DomainError:
    """The pure rules' refusal as the domain error of its code (422s located like validation)."""
    extra: dict[str, Any] = dict(err.extra)
    loc = extra.pop("loc", None)
    cls = error_class(err.code)
    assert cls.status == err.status, f"{err.code} is a {cls.status}, not a {err.status}"
    if err.status == 422:
        extra["errors"] = [{"loc": loc or ["body"], "msg": err.detail, "type": err.code.lower()}]
    return cls(err.detail, **extra)


async def load_rules(runtime: Runtime, show_id: int) -> ShowRules:
    """The show's hold rules: 2 s in this process (one load at a time, so a burst of cold holds
    reads them once), then a few seconds' Redis cache shared by all processes, else PostgreSQL."""
    rules_: ShowRules = await runtime.show_rules.get_or_load(
        show_id, lambda: _load_shared_rules(runtime, show_id)
    )
    return rules_


async def _load_shared_rules(runtime: Runtime, show_id: int) -> ShowRules:
    cached = await shield.cached_rules(runtime.redis, show_id)
    if cached is not None:
        return cached
    async with runtime.sessions() as session:
        found = await repository.fetch_show_rules(session, show_id)
    if found is None:
        raise ShowNotFound(f"Show {show_id} not found", show_id=show_id)
    await shield.cache_rules(runtime.redis, found)
    return found


# ---------------------------------------------------------------- reading


def reservation_body(row: dict[str, Any], seats: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "reservation_id": row["id"],
        "show_id": row["show_id"],
        "status": row["status"],
        "seats": seats,
        "total_price": row["total_price"],
        "expires_at": row["expires_at"],
        "created_at": row["created_at"],
        "confirmed_at": row["confirmed_at"],
        "closed_at": row["closed_at"],
    }


async def reservation_of(runtime: Runtime, user_id: int, reservation_id: int) -> dict[str, Any]:
    """The user's reservation row (a short read), else 404 RESERVATION_NOT_FOUND."""
    async with runtime.sessions() as session:
        row = await repository.get_reservation(session, reservation_id)
    if row is None or row["user_id"] != user_id:
        raise ReservationNotFound("Reservation not found")
    return row


async def get_reservation(session: AsyncSession, user_id: int, reservation_id: int) -> dict[str, Any]:
    row = await repository.get_reservation(session, reservation_id)
    if row is None or row["user_id"] != user_id:
        raise ReservationNotFound("Reservation not found")
    seats = await repository.seats_of_reservations(session, [reservation_id])
    return reservation_body(row, seats[reservation_id])


async def list_reservations(
    session: AsyncSession, user_id: int, *, before: int | None, limit: int | None
) -> dict[str, Any]:
    size = rules.clamp_page_size(limit)
    rows = await repository.list_reservations(session, user_id, before=before, limit=size)
    seats = await repository.seats_of_reservations(session, [r["id"] for r in rows])
    items = [reservation_body(r, seats[r["id"]]) for r in rows]
    next_before = rows[-1]["id"] if len(rows) == size else None
    return {"items": items, "next_before": next_before}


# ---------------------------------------------------------------- live seats


async def seat_event_stream(
    runtime: Runtime, show_id: int, last_event_id: str | None
) -> AsyncIterator[bytes]:
    """Server-Sent Events of one show's seat changes, read from its Redis stream (at least once)."""
    cursor = last_event_id if last_event_id and shield.valid_stream_id(last_event_id) else None
    yield b"retry: 1000\n: connected\n\n"
    idle = 0
    while True:
        try:
            if cursor is None:
                cursor = await shield.latest_event_id(runtime.redis, show_id)
            entries = await shield.read_show_events(runtime.redis, show_id, cursor, block_ms=1000)
        except shield.REDIS_ERRORS:
            yield b": redis unavailable, retrying\n\n"
            await asyncio.sleep(1)
            continue
        if not entries:
            idle += 1
            if idle >= 15:  # keep proxies from closing an idle stream
                idle = 0
                yield b": keep-alive\n\n"
            continue
        idle = 0
        for entry_id, fields in entries:
            cursor = entry_id
            event_type = fields.get("type", "")
            if not event_type.startswith("seat."):
                continue
            payload = json.loads(fields.get("payload") or "{}")
            data = {
                "event_id": fields.get("event_id"),
                "type": event_type,
                "show_id": show_id,
                "seat_ids": payload.get("seat_ids", []),
                "status": payload.get("status"),
                "reservation_id": payload.get("reservation_id"),
                "created_at": fields.get("created_at"),
            }
            encoded = json.dumps(data, separators=(",", ":"))
            yield f"id: {entry_id}\nevent: seats\ndata: {encoded}\n\n".encode()

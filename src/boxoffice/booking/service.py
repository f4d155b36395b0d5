"""Booking domain operations: the show's hold rules, reading reservations, the live seat stream.

No transaction is opened here: the use cases that write (hold, cancel a hold, expire) are in
`booking/flows.py`; reads take the request's session or a short read-only one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.booking import repository, rules, shield
from boxoffice.booking.rules import RuleViolation, ShowRules
from boxoffice.errors import DomainError, ReservationNotFound, ShowNotFound, error_class
from boxoffice.runtime import Runtime

log = structlog.get_logger("boxoffice.booking")


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


@dataclass(frozen=True, slots=True)
class SeatEvent:
    """One seat change read from the show's event stream; `stream_id` is where to resume."""

    stream_id: str
    event_id: str | None
    type: str
    show_id: int
    seat_ids: list[int]
    status: str | None
    reservation_id: int | None
    created_at: str | None

    def as_json(self) -> str:
        data = {
            "event_id": self.event_id,
            "type": self.type,
            "show_id": self.show_id,
            "seat_ids": self.seat_ids,
            "status": self.status,
            "reservation_id": self.reservation_id,
            "created_at": self.created_at,
        }
        return json.dumps(data, separators=(",", ":"))


async def seat_events(
    runtime: Runtime, show_id: int, last_event_id: str | None
) -> AsyncIterator[SeatEvent | None]:
    """One show's seat changes from its Redis stream (at least once), resumable after a stream id.

    Yields None after each quiet second (or a Redis outage, retried every second), so a front door
    can send keep-alives; the SSE endpoint and the gRPC WatchSeats both read this."""
    cursor = last_event_id if last_event_id and shield.valid_stream_id(last_event_id) else None
    while True:
        try:
            if cursor is None:
                cursor = await shield.latest_event_id(runtime.redis, show_id)
            entries = await shield.read_show_events(runtime.redis, show_id, cursor, block_ms=1000)
        except shield.REDIS_ERRORS as exc:
            log.warning("seat_stream_redis_unavailable", show_id=show_id, error=type(exc).__name__)
            await asyncio.sleep(1)
            yield None
            continue
        if not entries:
            yield None
            continue
        for entry_id, fields in entries:
            cursor = entry_id
            event_type = fields.get("type", "")
            if not event_type.startswith("seat."):
                continue
            payload = json.loads(fields.get("payload") or "{}")
            yield SeatEvent(
                stream_id=entry_id,
                event_id=fields.get("event_id"),
                type=event_type,
                show_id=show_id,
                seat_ids=[int(s) for s in payload.get("seat_ids", [])],
                status=payload.get("status"),
                reservation_id=payload.get("reservation_id"),
                created_at=fields.get("created_at"),
            )


async def seat_event_stream(
    runtime: Runtime, show_id: int, last_event_id: str | None
) -> AsyncIterator[bytes]:
    """Server-Sent Events of `seat_events`; a comment every 15 quiet seconds keeps proxies open.

    A watcher that reconnects with a Last-Event-ID the stream no longer holds (trimmed, or Redis
    lost it) gets `event: reset` first: changes were missed, reload the whole map."""
    yield b"retry: 1000\n: connected\n\n"
    if last_event_id and shield.valid_stream_id(last_event_id):
        try:
            if not await shield.resumable(runtime.redis, show_id, last_event_id):
                last_event_id = await shield.latest_event_id(runtime.redis, show_id)
                yield f"id: {last_event_id}\nevent: reset\ndata: {{}}\n\n".encode()
        except shield.REDIS_ERRORS:
            last_event_id = None
            yield b"event: reset\ndata: {}\n\n"
    idle = 0
    async for event in seat_events(runtime, show_id, last_event_id):
        if event is None:
            idle += 1
            if idle >= 15:
                idle = 0
                yield b": keep-alive\n\n"
            continue
        idle = 0
        yield f"id: {event.stream_id}\nevent: seats\ndata: {event.as_json()}\n\n".encode()

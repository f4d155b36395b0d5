"""Booking domain operations: the show's hold rules, reading reservations, the live seat stream.

No transaction is opened here: the use cases that write (hold, cancel a hold, expire) are in
`booking/flows.py`; reads take the request's session or a short read-only one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.booking import repository, rules, shield
from boxoffice.booking.rules import RuleViolation, ShowRules
from boxoffice.db.outbox import show_stream
from boxoffice.errors import DomainError, ReservationNotFound, ShowNotFound, error_class
from boxoffice.redis.client import RedisClient
from boxoffice.redis.streams import Listener, Resync, stream_id_key
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
    cached = await shield.cached_rules(runtime.hot_redis, show_id)
    if cached is not None:
        return cached
    async with runtime.sessions() as session:
        found = await repository.fetch_show_rules(session, show_id)
    if found is None:
        raise ShowNotFound(f"Show {show_id} not found", show_id=show_id)
    await shield.cache_rules(runtime.hot_redis, found)
    return found


# ---------------------------------------------------------------- reading


def reservation_body(row: dict[str, Any], seats: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "reservation_id": row["id"],
        "show_id": row["show_id"],
        "status": row["status"],
        "seats": seats,
        "total_price": row["total_price"],
        "currency": row["currency"],
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


@dataclass(frozen=True)
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
    # A waitlist offer's fan (never sent to seat watchers): their waitlist stream wakes on it.
    offered_to: int | None = None

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

    @cached_property
    def sse(self) -> bytes:
        """The Server-Sent Event, rendered once for every stream the hub hands this event to."""
        return f"id: {self.stream_id}\nevent: seats\ndata: {self.as_json()}\n\n".encode()


def _seat_event(show_id: int, entry_id: str, fields: dict[str, str]) -> SeatEvent | None:
    event_type = fields.get("type", "")
    if not event_type.startswith("seat."):
        return None
    payload = json.loads(fields.get("payload") or "{}")
    return SeatEvent(
        stream_id=entry_id,
        event_id=fields.get("event_id"),
        type=event_type,
        show_id=show_id,
        seat_ids=[int(s) for s in payload.get("seat_ids", [])],
        status=payload.get("status"),
        reservation_id=payload.get("reservation_id"),
        created_at=fields.get("created_at"),
        offered_to=int(payload["user_id"]) if payload.get("reason") == "waitlist_offer" else None,
    )


@dataclass(frozen=True)
class _ShowEvents:
    """A show's event stream as the stream hub reads it (a Feed): entries parsed once per process,
    None for the events that are not seat changes."""

    redis: RedisClient
    show_id: int

    @property
    def name(self) -> str:
        return show_stream(self.show_id)

    async def latest(self) -> str:
        return await shield.latest_event_id(self.redis, self.show_id)

    async def read(self, cursor: str, *, block_ms: int | None) -> list[tuple[str, SeatEvent | None]]:
        entries = await shield.read_show_events(self.redis, self.show_id, cursor, block_ms=block_ms)
        return [(entry_id, _seat_event(self.show_id, entry_id, fields)) for entry_id, fields in entries]

    async def resumable(self, cursor: str) -> bool:
        return await shield.resumable(self.redis, self.show_id, cursor)


SeatUpdate = SeatEvent | Resync | None


@asynccontextmanager
async def watch_seats(
    runtime: Runtime, show_id: int, last_event_id: str | None
) -> AsyncIterator[AsyncIterator[SeatUpdate]]:
    """One show's seat changes (at least once), resumable after a stream id: the SSE endpoint and
    the gRPC WatchSeats both read this. Entered, the watch is established (nothing published after
    that is missed); the updates are SeatEvents, a Resync when changes were missed (a stale
    Last-Event-ID, a watcher too slow, a Redis that lost them: reload the whole map), and None after
    each quiet second (or Redis outage) so a front door can send keep-alives.

    Live changes come from the process's stream hub (one Redis read per show per process, however
    many watch); only the catch-up after `last_event_id` reads Redis for this watcher alone."""
    feed = _ShowEvents(runtime.redis, show_id)
    async with runtime.stream_hub.listen(feed) as listener:
        yield _seat_updates(feed, listener, last_event_id)


async def _seat_updates(
    feed: _ShowEvents, listener: Listener[SeatEvent], last_event_id: str | None
) -> AsyncIterator[SeatUpdate]:
    seen = None  # the last entry given (catch-up): the hub's copies up to it are skipped
    if last_event_id and shield.valid_stream_id(last_event_id):
        try:
            if await feed.resumable(last_event_id):
                seen = last_event_id
                while True:
                    page = await feed.read(seen, block_ms=None)
                    for entry_id, event in page:
                        seen = entry_id
                        if event is not None:
                            yield event
                    if len(page) < shield.EVENTS_PAGE:
                        break
            else:
                seen = await feed.latest()
                yield Resync(seen)
        except shield.REDIS_ERRORS:
            yield Resync(None)
    while True:
        item = await listener.next(1.0)
        if item is None or isinstance(item, Resync):
            yield item
            continue
        entry_id, event = item
        if seen is not None:
            if stream_id_key(entry_id) <= stream_id_key(seen):
                continue
            seen = None
        yield event


async def seat_event_stream(
    runtime: Runtime, show_id: int, last_event_id: str | None
) -> AsyncIterator[bytes]:
    """Server-Sent Events of `watch_seats`; a comment every 15 quiet seconds keeps proxies open.

    `event: reset` (with the id to resume after) says changes were missed: reload the whole map."""
    async with watch_seats(runtime, show_id, last_event_id) as updates:
        yield b"retry: 1000\n: connected\n\n"
        idle = 0
        async for update in updates:
            if update is None:
                idle += 1
                if idle >= 15:
                    idle = 0
                    yield b": keep-alive\n\n"
                continue
            idle = 0
            if isinstance(update, Resync):
                head = f"id: {update.stream_id}\n" if update.stream_id else ""
                yield f"{head}event: reset\ndata: {{}}\n\n".encode()
            else:
                yield update.sse

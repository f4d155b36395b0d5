"""Booking orchestration: holds, cancellations, reading reservations.

Services own no transaction except through `run_idempotent` / `runtime.sessions()` units of work
that the hold and cancel flows need around their Redis and HTTP side effects; side effects (shield
marks, seat-map patches, queue leases) run only after the commit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice import ratelimit
from boxoffice.booking import repository, rules, shield
from boxoffice.booking.rules import RuleViolation, ShowRules
from boxoffice.catalog.cache import apply_seat_changes
from boxoffice.db import sqlstate
from boxoffice.errors import Conflict, DomainError, NotFound, Unprocessable
from boxoffice.idempotency import IdempotentResult, run_idempotent
from boxoffice.runtime import Runtime
from boxoffice.waiting_room.tokens import check_queue_token

log = structlog.get_logger("boxoffice.booking")

HOLD_SCOPE = "POST /api/reservations"
# PostgreSQL said "try again" (deadlock between two overlapping holds, serialization): a clean 409.
_RETRYABLE_SQLSTATES = {"40P01", "40001", "55P03"}


def _domain(err: RuleViolation) -> DomainError:
    extra: dict[str, Any] = dict(err.extra)
    loc = extra.pop("loc", None)
    if err.status == 422:
        errors = [{"loc": loc or ["body"], "msg": err.detail, "type": err.code.lower()}]
        return Unprocessable(err.detail, code=err.code, errors=errors, **extra)
    return DomainError(err.detail, code=err.code, status=err.status, **extra)


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
        raise NotFound(f"Show {show_id} not found", code="SHOW_NOT_FOUND", show_id=show_id)
    await shield.cache_rules(runtime.redis, found)
    return found


# ---------------------------------------------------------------- post-commit side effects


async def publish_seat_changes(
    runtime: Runtime, show_id: int, user_id: int, seat_ids: list[int], status: str
) -> None:
    """After a commit: keep the shield and the catalog's seat map in step. Never fails the caller."""
    if not seat_ids:
        return
    if status == rules.RESERVED:
        await shield.mark_sold(runtime.redis, show_id, user_id, seat_ids)
    elif status == "AVAILABLE":
        await shield.release(runtime.redis, show_id, user_id, seat_ids)
    try:
        await apply_seat_changes(runtime.hot_redis, show_id, [(s, status) for s in seat_ids])
    except Exception as exc:  # the map rebuilds from PostgreSQL; a stale patch is not an error
        log.warning("seat_map_patch_failed", show_id=show_id, error=type(exc).__name__)


async def publish_closed(runtime: Runtime, closed: list[repository.Closed]) -> None:
    for c in closed:
        await publish_seat_changes(runtime, c.show_id, c.user_id, c.seat_ids, "AVAILABLE")


# ---------------------------------------------------------------- holds


@dataclass
class _HoldWork:
    runtime: Runtime
    user_id: int
    show_id: int
    seat_ids: list[int]
    now: datetime
    expires_at: datetime
    closed: list[repository.Closed] = field(default_factory=list)

    async def __call__(self, session: AsyncSession) -> tuple[int, dict[str, Any]]:
        try:
            return await self._run(session)
        except IntegrityError:
            # Only reachable through a race the statement cannot express (e.g. two requests of one
            # user crossing); the seats are someone's: a clean 409, never a 500.
            raise Conflict("Seats were taken meanwhile", code="SEATS_TAKEN", seat_ids=self.seat_ids) from None
        except DBAPIError as exc:
            if sqlstate(exc) in _RETRYABLE_SQLSTATES:
                raise Conflict(
                    "Seats are being taken right now", code="SEATS_TAKEN", seat_ids=self.seat_ids
                ) from None
            raise

    async def _run(self, session: AsyncSession) -> tuple[int, dict[str, Any]]:
        for _attempt in range(2):
            outcome = await repository.hold(
                session,
                user_id=self.user_id,
                show_id=self.show_id,
                seat_ids=self.seat_ids,
                now=self.now,
                expires_at=self.expires_at,
            )
            if not outcome.conflict:
                break
            own = await repository.lock_own_hold(session, self.user_id, self.show_id)
            if own is not None and own[1] > self.now:
                raise Conflict(
                    "You already hold seats for this show; pay for or cancel that hold first",
                    code="HOLD_EXISTS",
                    reservation_id=own[0],
                )
            if own is not None:
                # The user's own dead hold blocks the one-hold-per-show index: expire it here.
                self.closed += await repository.close_reservations(
                    session,
                    [own[0]],
                    from_status=rules.HOLD,
                    to_status=rules.EXPIRED,
                    event="reservation.expired",
                    reason="expired",
                    now=self.now,
                )
        else:
            raise Conflict("You already hold seats for this show", code="HOLD_EXISTS")
        if len(outcome.seats) < len(self.seat_ids):
            in_show = await repository.seats_of_show(session, self.show_id, self.seat_ids)
            missing = [s for s in self.seat_ids if s not in in_show]
            if missing:
                raise Unprocessable(
                    "Some seats do not belong to this show",
                    code="SEATS_NOT_IN_SHOW",
                    seat_ids=missing,
                    errors=[
                        {
                            "loc": ["body", "seat_ids"],
                            "msg": "unknown seat for this show",
                            "type": "value_error",
                        }
                    ],
                )
            taken = rules.taken_seats(self.seat_ids, [s["id"] for s in outcome.seats])
            raise Conflict("Some seats are already taken", code="SEATS_TAKEN", seat_ids=taken)
        return 201, {
            "reservation_id": outcome.reservation_id,
            "show_id": self.show_id,
            "status": rules.HOLD,
            "seats": outcome.seats,
            "total_price": outcome.total_price,
            "expires_at": self.expires_at,
        }


async def place_hold(
    runtime: Runtime,
    *,
    user_id: int,
    show_id: int,
    seat_ids: list[int],
    queue_token: str | None,
    idempotency_key: str | None,
) -> IdempotentResult:
    """POST /api/reservations: the shield first, then PostgreSQL decides, all seats or none."""
    await check_queue_token(runtime, user_id, show_id, queue_token)
    await ratelimit.enforce(runtime, "hold", user_id, limit=runtime.settings.limit_holds_per_minute)
    show = await load_rules(runtime, show_id)
    now = runtime.clock.now()
    try:
        rules.check_sale_open(show, now)
        wanted = rules.check_seat_request(seat_ids, show.max_seats)
    except RuleViolation as err:
        raise _domain(err) from None
    expires_at = rules.hold_expires_at(show, now)
    verdict = await shield.try_mark(
        runtime.hot_redis,
        show_id,
        user_id,
        wanted,
        now=now,
        expires_at=expires_at,
        ttl_ms=rules.shield_ttl_ms(show),
    )
    if not verdict.available:
        runtime.metrics.holds.labels("shield_skipped").inc()
    elif not verdict.ok:
        runtime.metrics.holds.labels("shield_refused").inc()
        raise Conflict("Some seats are already taken", code="SEATS_TAKEN", seat_ids=verdict.taken)
    work = _HoldWork(runtime, user_id, show_id, wanted, now, expires_at)
    try:
        result = await run_idempotent(
            runtime,
            user_id=user_id,
            scope=HOLD_SCOPE,
            key=idempotency_key,
            fingerprint={"show_id": show_id, "seat_ids": seat_ids},
            work=work,
            required=False,
        )
    except BaseException as exc:
        if isinstance(exc, DomainError):
            runtime.metrics.holds.labels("db_refused").inc()
        await shield.release(runtime.redis, show_id, user_id, verdict.marked)
        raise
    if not result.replayed:
        runtime.metrics.holds.labels("won").inc()
        await publish_closed(runtime, work.closed)
        await publish_seat_changes(runtime, show_id, user_id, wanted, rules.HOLD)
    return result


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


async def get_reservation(session: AsyncSession, user_id: int, reservation_id: int) -> dict[str, Any]:
    row = await repository.get_reservation(session, reservation_id)
    if row is None or row["user_id"] != user_id:
        raise NotFound("Reservation not found", code="RESERVATION_NOT_FOUND")
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


# ---------------------------------------------------------------- cancel


async def cancel(runtime: Runtime, *, user_id: int, reservation_id: int) -> dict[str, Any]:
    """A hold -> CANCELLED (seats freed); a paid reservation -> refunded per the show's policy."""
    async with runtime.sessions() as session:
        row = await repository.get_reservation(session, reservation_id)
    if row is None or row["user_id"] != user_id:
        raise NotFound("Reservation not found", code="RESERVATION_NOT_FOUND")
    if row["status"] == rules.RESERVED:
        from boxoffice.payments.service import refund_reservation

        await refund_reservation(runtime, user_id=user_id, reservation_id=reservation_id)
    elif row["status"] == rules.HOLD:
        now = runtime.clock.now()
        async with runtime.sessions() as session, session.begin():
            closed = await repository.close_reservations(
                session,
                [reservation_id],
                from_status=rules.HOLD,
                to_status=rules.CANCELLED,
                event="reservation.cancelled",
                reason="cancelled",
                now=now,
            )
        await publish_closed(runtime, closed)
        if not closed:  # it changed state meanwhile (paid, expired): answer with what it is now
            return await cancel(runtime, user_id=user_id, reservation_id=reservation_id)
    elif row["status"] == rules.EXPIRED:
        raise Conflict("This hold has expired; its seats are released", code="RESERVATION_EXPIRED")
    async with runtime.sessions() as session:
        return await get_reservation(session, user_id, reservation_id)


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

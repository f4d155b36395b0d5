"""Waiting-room SQL (house rule 2): the queue settings persisted on the show row; the waitlist
(its offers of returned seats are booking's: booking.repository)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.db import tables


async def update_queue_settings(session: AsyncSession, show_id: int, now: Any, **values: Any) -> bool:
    """values: any of queue_paused, queue_admit_per_second, queue_max_active. False: no such show."""
    stmt = (
        update(tables.shows)
        .where(tables.shows.c.id == show_id)
        .values(**values, updated_at=now)
        .returning(tables.shows.c.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


_JOIN_WAITLIST = text(
    """
    INSERT INTO waitlist (show_id, user_id, status, joined_at) VALUES (:show_id, :user_id, 'WAITING', :now)
    ON CONFLICT (show_id, user_id) WHERE status IN ('WAITING', 'OFFERED') DO NOTHING
    """
)

# The fan's newest entry and, while WAITING, the fans ahead of them (the waiting index: O(ahead)).
_WAITLIST_ENTRY = text(
    """
    SELECT w.id, w.status, w.reservation_id, r.expires_at AS offer_expires_at,
           CASE WHEN w.status = 'WAITING' THEN
               (SELECT count(*) FROM waitlist a
                WHERE a.show_id = w.show_id AND a.status = 'WAITING' AND a.id < w.id)
           END AS ahead
    FROM waitlist w LEFT JOIN reservations r ON r.id = w.reservation_id
    WHERE w.show_id = :show_id AND w.user_id = :user_id
    ORDER BY w.id DESC LIMIT 1
    """
)

_LEAVE_WAITLIST = text(
    """
    UPDATE waitlist SET status = 'LEFT', closed_at = :now
    WHERE show_id = :show_id AND user_id = :user_id AND status = 'WAITING'
    """
)

_WAITLIST_COUNTS = text(
    """
    SELECT count(*) FILTER (WHERE status = 'WAITING') AS waiting,
           count(*) FILTER (WHERE status <> 'WAITING' AND status <> 'LEFT') AS offers,
           count(*) FILTER (WHERE status = 'OFFERED') AS offered_now,
           count(*) FILTER (WHERE status = 'TAKEN') AS taken,
           count(*) FILTER (WHERE status = 'LAPSED') AS lapsed
    FROM waitlist WHERE show_id = :show_id
    """
)


async def join_waitlist(session: AsyncSession, show_id: int, user_id: int, now: Any) -> None:
    await session.execute(_JOIN_WAITLIST, {"show_id": show_id, "user_id": user_id, "now": now})


async def waitlist_entry(session: AsyncSession, show_id: int, user_id: int) -> dict[str, Any] | None:
    row = (
        (await session.execute(_WAITLIST_ENTRY, {"show_id": show_id, "user_id": user_id})).mappings().first()
    )
    return dict(row) if row is not None else None


async def leave_waitlist(session: AsyncSession, show_id: int, user_id: int, now: Any) -> None:
    await session.execute(_LEAVE_WAITLIST, {"show_id": show_id, "user_id": user_id, "now": now})


async def waitlist_counts(session: AsyncSession, show_id: int) -> dict[str, int]:
    row = (await session.execute(_WAITLIST_COUNTS, {"show_id": show_id})).mappings().one()
    return {k: int(v) for k, v in row.items()}


_WAITLIST_WAITING = text("SELECT count(*) FROM waitlist WHERE show_id = :show_id AND status = 'WAITING'")


async def waitlist_waiting(session: AsyncSession, show_id: int) -> int:
    return int((await session.execute(_WAITLIST_WAITING, {"show_id": show_id})).scalar_one())

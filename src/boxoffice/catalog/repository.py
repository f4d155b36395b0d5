"""All catalog SQL (house rule 2): venues, concerts, shows, seats, inventory."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice import tables

_SHOW_COLUMNS = (
    tables.shows.c.id,
    tables.shows.c.concert_id,
    tables.shows.c.starts_at,
    tables.shows.c.sale_opens_at,
    tables.shows.c.sale_closes_at,
    tables.shows.c.pre_queue_opens_at,
    tables.shows.c.hold_seconds,
    tables.shows.c.max_seats_per_reservation,
    tables.shows.c.queue_admit_per_second,
    tables.shows.c.queue_max_active,
    tables.shows.c.queue_token_ttl_seconds,
    tables.shows.c.queue_oversubscription,
    tables.shows.c.queue_paused,
)


async def fetch_show(session: AsyncSession, show_id: int) -> dict[str, Any] | None:
    stmt = select(*_SHOW_COLUMNS).where(tables.shows.c.id == show_id)
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row is not None else None


async def fetch_remaining(session: AsyncSession, show_id: int) -> int | None:
    stmt = select(tables.inventory.c.remaining).where(tables.inventory.c.show_id == show_id)
    value = (await session.execute(stmt)).scalar_one_or_none()
    return None if value is None else int(value)

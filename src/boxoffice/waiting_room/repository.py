"""Waiting-room SQL (house rule 2): the queue settings persisted on the show row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
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

"""Shared helpers for the waiting-room tests (no tests here): shows inserted directly."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, update

from boxoffice import tables
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import flows


async def make_show(
    runtime: Runtime,
    *,
    opens_in: float = -60,
    closes_in: float | None = 3600,
    pre_queue_in: float | None = None,
    seats: int = 100,
    remaining: int | None = None,
    admit_per_second: float = 10,
    max_active: int | None = None,
    oversubscription: float | None = None,
    token_ttl: int = 600,
) -> dict[str, Any]:
    """A concert + show whose sale opens `opens_in` seconds from the clock's now."""
    now: datetime = runtime.clock.now()
    async with runtime.sessions() as s, s.begin():
        venue_id = (
            await s.execute(insert(tables.venues).values(name="Arena").returning(tables.venues.c.id))
        ).scalar_one()
        concert_id = (
            await s.execute(
                insert(tables.concerts)
                .values(venue_id=venue_id, name="Tour", artist="Band")
                .returning(tables.concerts.c.id)
            )
        ).scalar_one()
        show_id = (
            await s.execute(
                insert(tables.shows)
                .values(
                    concert_id=concert_id,
                    starts_at=now + timedelta(days=30),
                    sale_opens_at=now + timedelta(seconds=opens_in),
                    sale_closes_at=None if closes_in is None else now + timedelta(seconds=closes_in),
                    pre_queue_opens_at=None
                    if pre_queue_in is None
                    else now + timedelta(seconds=pre_queue_in),
                    queue_admit_per_second=admit_per_second,
                    queue_max_active=max_active,
                    queue_oversubscription=oversubscription,
                    queue_token_ttl_seconds=token_ttl,
                )
                .returning(tables.shows.c.id)
            )
        ).scalar_one()
        await s.execute(
            insert(tables.inventory).values(
                show_id=show_id, total=seats, remaining=seats if remaining is None else remaining
            )
        )
    return {"id": show_id, "concert_id": concert_id, "body": {"concert_id": concert_id, "show_id": show_id}}


async def set_remaining(runtime: Runtime, show_id: int, remaining: int) -> None:
    async with runtime.sessions() as s, s.begin():
        await s.execute(
            update(tables.inventory).where(tables.inventory.c.show_id == show_id).values(remaining=remaining)
        )


async def tick(runtime: Runtime, show_id: int) -> Any:
    return await flows.tick_show(runtime, show_id)

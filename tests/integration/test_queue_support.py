"""Shared helpers for the waiting-room tests (no tests here): shows inserted directly."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, update

from boxoffice.db import tables
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import flows
from tests.helpers import shows


async def make_show(
    runtime: Runtime,
    *,
    opens_in: float = -60,
    closes_in: float | None = 3600,
    seats: int = 100,
    admit_per_second: float = 10,
    max_active: int | None = None,
    oversubscription: float | None = None,
    token_ttl: int = 600,
    **more: Any,
) -> dict[str, Any]:
    """The one make_show (tests/helpers/shows.py) with the waiting room's defaults."""
    return await shows.make_show(
        runtime,
        opens_in=opens_in,
        closes_in=closes_in,
        seats=seats,
        admit_per_second=admit_per_second,
        max_active=max_active,
        oversubscription=oversubscription,
        token_ttl=token_ttl,
        **more,
    )


async def set_remaining(runtime: Runtime, show_id: int, remaining: int) -> None:
    async with runtime.sessions() as s, s.begin():
        await s.execute(
            update(tables.inventory).where(tables.inventory.c.show_id == show_id).values(remaining=remaining)
        )


async def sell_out(runtime: Runtime, show_id: int) -> None:
    """Nothing left to sell: remaining 0 and no unsold seat (the queue's SOLD_OUT needs both; with
    seats still AVAILABLE or held it says LAST_SEATS_HELD). The seats go: the queue never reads them."""
    async with runtime.sessions() as s, s.begin():
        await s.execute(delete(tables.seats).where(tables.seats.c.show_id == show_id))
    await set_remaining(runtime, show_id, 0)


async def tick(runtime: Runtime, show_id: int) -> Any:
    return await flows.tick_show(runtime, show_id)

"""Catalog use cases that own a unit of work: the inventory_recount job, the seat gauges."""

from __future__ import annotations

from boxoffice.catalog import repository
from boxoffice.catalog.service import RECOUNT_AFTER_START, refresh_inventory
from boxoffice.db.uow import unit_of_work
from boxoffice.runtime import Runtime


async def recount_on_sale(runtime: Runtime) -> dict[int, int]:
    """Recount the inventory of shows on sale (or started within a day); see `refresh_inventory`."""
    now = runtime.clock.now()
    async with unit_of_work(runtime.sessions) as uow:
        show_ids = await repository.recount_candidates(uow.session, now, now - RECOUNT_AFTER_START)
        if not show_ids:
            return {}
        return await refresh_inventory(uow.session, show_ids, now=now)


async def seat_counts_on_sale(runtime: Runtime) -> dict[tuple[int, str], int]:
    """Seats by show and status (AVAILABLE, TEMP_RESERVED, RESERVED) of the shows on sale: what
    /metrics reports as boxoffice_seats."""
    now = runtime.clock.now()
    async with unit_of_work(runtime.sessions) as uow:
        show_ids = await repository.recount_candidates(uow.session, now, now - RECOUNT_AFTER_START)
        if not show_ids:
            return {}
        return await repository.seat_status_counts(uow.session, show_ids)

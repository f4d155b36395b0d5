"""The hold expiry sweep: dead holds -> EXPIRED, their seats back on sale, events, shield, seat map.

A hold is already dead (unpayable, its seats takeable) the instant expires_at passes; the sweep only
tidies up. Safe with several workers: each batch is claimed with FOR UPDATE SKIP LOCKED.
"""

from __future__ import annotations

from boxoffice.booking import repository, rules
from boxoffice.booking.service import publish_closed
from boxoffice.catalog.service import refresh_inventory
from boxoffice.runtime import Runtime
from boxoffice.worker import Job

BATCH = 500


async def expire_once(runtime: Runtime, limit: int = BATCH) -> int:
    """Expire one batch of dead holds; returns how many reservations were expired."""
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        ids = await repository.pick_expired(session, now, limit)
        if not ids:
            return 0
        closed = await repository.close_reservations(
            session,
            ids,
            from_status=rules.HOLD,
            to_status=rules.EXPIRED,
            event="reservation.expired",
            reason="expired",
            now=now,
        )
        # Inventory follows in the same transaction (the catalog's recount, not a hot counter).
        await refresh_inventory(session, sorted({c.show_id for c in closed}), now=now)
    runtime.metrics.expiries.inc(len(closed))
    for c in closed:
        runtime.sale_stats.count(c.show_id, "holds_expired", now)
    await publish_closed(runtime, closed)
    return len(ids)


async def expire_holds(runtime: Runtime) -> int:
    """Sweep until no dead hold is left (one tick of the job)."""
    total = 0
    while True:
        n = await expire_once(runtime)
        total += n
        if n < BATCH:
            return total


JOBS: list[Job] = [Job("hold_expiry", 1.0, expire_holds)]

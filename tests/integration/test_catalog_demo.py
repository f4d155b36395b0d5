"""`boxoffice seed-demo`: accounts, a venue of >= 2,000 seats, 3 concerts x 2 shows, one on sale now;
a second run (even a concurrent one) creates nothing."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from boxoffice.ops.demo import DEMO_VENUE, seed_demo
from boxoffice.runtime import Runtime

COUNTS = text(
    "SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM venues) AS venues, "
    "(SELECT count(*) FROM concerts) AS concerts, (SELECT count(*) FROM shows) AS shows, "
    "(SELECT count(*) FROM seats) AS seats, (SELECT count(*) FROM inventory) AS inventory, "
    "(SELECT count(*) FROM balance_ledger) AS ledger"
)


async def test_seed_demo_once(runtime: Runtime) -> None:
    summary = await seed_demo(runtime)
    assert "on sale now" in summary
    async with runtime.sessions() as s:
        first = dict((await s.execute(COUNTS)).mappings().one())
        venue_seats = (
            await s.execute(
                text(
                    "SELECT sum(rows * seats_per_row), count(*) FROM venue_sections vs "
                    "JOIN venues v ON v.id = vs.venue_id WHERE v.name = :n"
                ),
                {"n": DEMO_VENUE},
            )
        ).one()
        on_sale = (
            await s.execute(
                text(
                    "SELECT count(*) FROM shows WHERE sale_opens_at <= :now "
                    "AND (sale_closes_at IS NULL OR sale_closes_at > :now)"
                ),
                {"now": runtime.clock.now()},
            )
        ).scalar()
        users = (await s.execute(text("SELECT email, role, balance FROM users ORDER BY id"))).all()
    assert first["venues"] == 1 and first["concerts"] == 3 and first["shows"] == 6
    assert venue_seats[0] >= 2000 and venue_seats[1] >= 3
    assert first["seats"] == 6 * venue_seats[0] and first["inventory"] == 6
    assert on_sale == 1
    async with runtime.sessions() as s:
        tolls = (await s.execute(text("SELECT queue_pow_difficulty FROM shows ORDER BY id"))).scalars().all()
    # the show on sale now is the quickstart's (curl joins it without solving); the rest pay the toll
    assert tolls[0] == 0 and all(t == 100_000 for t in tolls[1:])
    settings = runtime.settings
    assert [(u.email, u.role) for u in users] == [
        (settings.admin_email, "ADMIN"),
        (settings.demo_fan_email, "USER"),
        (settings.demo_door_email, "DOOR"),  # the demo's gate staff, for the door page
    ]
    assert users[1].balance == settings.demo_fan_balance

    again = await seed_demo(runtime)
    assert again.startswith("already seeded")
    async with runtime.sessions() as s:
        assert dict((await s.execute(COUNTS)).mappings().one()) == first


async def test_concurrent_seeders_create_one_demo(runtime: Runtime) -> None:
    results = await asyncio.gather(seed_demo(runtime), seed_demo(runtime))
    assert sum(r.startswith("already seeded") for r in results) == 1
    async with runtime.sessions() as s:
        counts = dict((await s.execute(COUNTS)).mappings().one())
    assert counts["venues"] == 1 and counts["shows"] == 6 and counts["users"] == 3

"""`boxoffice seed-demo`: accounts, a Seoul venue of >= 2,000 seats priced in won (3 concerts x 2
shows, one on sale now) and a Berlin hall priced in euros (1 show); the pages read what the README
says (the fan's ₩5,000,000, the VIP seat's ₩220,000, €80.50 in Berlin's zone); a second run (even a
concurrent one) creates nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from sqlalchemy import text

from boxoffice.auth.tokens import issue_access_token
from boxoffice.ops.demo import BERLIN_VENUE, DEMO_VENUE, seed_demo
from boxoffice.runtime import Runtime
from boxoffice.web.session import ACCESS_COOKIE

HTML = {"Accept": "text/html,application/xhtml+xml"}
README = Path(__file__).resolve().parents[2] / "README.md"

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
    assert first["venues"] == 2 and first["concerts"] == 4 and first["shows"] == 7
    assert venue_seats[0] >= 2000 and venue_seats[1] >= 3
    assert first["seats"] == 6 * venue_seats[0] + 300 and first["inventory"] == 7
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
    assert counts["venues"] == 2 and counts["shows"] == 7 and counts["users"] == 3


async def test_the_demo_pages_read_what_the_readme_says(app, runtime: Runtime) -> None:  # type: ignore[no-untyped-def]
    await seed_demo(runtime)
    async with runtime.sessions() as s:
        fan = (
            await s.execute(
                text("SELECT id FROM users WHERE email = :e"), {"e": runtime.settings.demo_fan_email}
            )
        ).scalar_one()
        shows = (
            await s.execute(
                text(
                    "SELECT v.name, c.id AS concert_id, sh.id AS show_id, sh.currency, v.time_zone "
                    "FROM shows sh JOIN concerts c ON c.id = sh.concert_id JOIN venues v ON v.id = c.venue_id "
                    "ORDER BY sh.id"
                )
            )
        ).all()
    assert {(r.name, r.currency, r.time_zone) for r in shows} == {
        (DEMO_VENUE, "KRW", "Asia/Seoul"),
        (BERLIN_VENUE, "EUR", "Europe/Berlin"),
    }
    seoul = next(r for r in shows if r.name == DEMO_VENUE)
    berlin = next(r for r in shows if r.name == BERLIN_VENUE)
    assert (seoul.concert_id, seoul.show_id) == (1, 1)  # the README's quickstart buys show 1 of concert 1
    token, _ = issue_access_token(runtime.settings, user_id=fan, role="USER", now=runtime.clock.now())
    readme = README.read_text()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as page:
        page.cookies.set(ACCESS_COOKIE, token)
        account = (await page.get("/account")).text
        seoul_page = (await page.get(f"/concerts/{seoul.concert_id}")).text
        berlin_page = (await page.get(f"/concerts/{berlin.concert_id}")).text
    assert '<dd id="balance">₩5,000,000</dd>' in account and "balance ₩5,000,000" in readme
    # the concert pages name the cheapest tier; the README names every tier
    assert "from ₩80,000" in seoul_page and " KST" in seoul_page
    assert "from €45.00" in berlin_page
    for price in ("₩220,000", "₩150,000", "₩80,000", "€80.50", "€45.00"):
        assert price in readme
    assert " CET" in berlin_page or " CEST" in berlin_page

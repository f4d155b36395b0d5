"""The promoter's console in a real browser: set up a show through the pages, watch a scripted
sale on the live dashboard (numbers match the database within 2 s), pause the queue from the
page, keep fans and visitors out, refuse a form post without its CSRF token, and screenshot every
admin page (test-output/browser/)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from boxoffice.auth.service import ensure_account
from boxoffice.kit.money import format_money
from boxoffice.runtime import Runtime
from tests.browser.conftest import PASSWORD, Fan, FanFactory
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import assert_invariants, gated

ADMIN_EMAIL = "boss@example.test"


async def _account(runtime: Runtime, email: str, role: str = "USER") -> None:
    async with runtime.sessions() as session, session.begin():
        await ensure_account(
            session, runtime.settings, email=email, password=PASSWORD, name="Promoter", role=role
        )


@pytest.fixture
async def admin(fans: FanFactory, runtime: Runtime) -> Fan:
    """A promoter logged in through the login page. The harness fails the test on any script error
    or request to another host; the 4xx statuses a test provokes go in expected_statuses."""
    await _account(runtime, ADMIN_EMAIL, "ADMIN")
    fan = await fans()
    await fan.login(ADMIN_EMAIL, then="/admin")
    assert fan.page.url.endswith("/admin"), fan.page.url
    return fan


async def _until(check: Any, what: str, seconds: float = 15.0) -> None:
    """Poll from Python (the pages' CSP forbids the string evaluation wait_for_function uses)."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def _local(dt: datetime, zone: str = "Asia/Seoul") -> str:
    """What a promoter types: the venue's wall clock (the form says so)."""
    return dt.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S")


async def test_admin_sets_up_a_show_through_the_pages(admin: Fan, live_server: str, runtime: Runtime) -> None:
    page = admin.page
    admin.expected_statuses |= {409, 422}  # the refused layout, the refused price change
    admin.expected_statuses |= {409, 422}  # the refused layout and the refused price change
    await admin.shot("console-empty")
    # a venue: an invalid layout first (two sections with one name) gets field-level messages
    await page.goto(f"{live_server}/admin/venues")
    await page.fill("#f-name", "Riverside Hall")
    await page.fill("#f-sections-0-name", "Stalls")
    await page.fill("#f-sections-0-rows", "")
    await page.fill("#f-sections-0-seats_per_row", "")
    await page.fill("#f-sections-0-row_lengths", "6, 8, 10")
    await page.click("#add-section")
    await page.fill("#f-sections-1-name", "stalls")
    await page.fill("#f-sections-1-rows", "2")
    await page.fill("#f-sections-1-seats_per_row", "5")
    await _until(lambda: _has(page, "#preview-count", "34 seats"), "the preview counts 34 seats")
    assert "Two sections" in await page.text_content("#preview-problem")
    await page.click("#venue-form button[type=submit]")
    assert (
        await page.text_content("#e-sections-1-name")
        == 'duplicate section name: the same name as section "Stalls"'
    )
    await admin.shot("venues-errors")
    await page.fill("#f-sections-1-name", "Balcony")
    await page.click("#venue-form button[type=submit]")
    await page.wait_for_url(f"{live_server}/admin/venues?done=venue")
    assert "Riverside Hall" in await page.text_content("table.data")
    await admin.shot("venues")
    # a concert at it
    await page.goto(f"{live_server}/admin/concerts")
    await page.fill("#f-name", "Autumn Nights")
    await page.fill("#f-artist", "The Lanterns")
    await page.select_option("#f-venue_id", label="Riverside Hall (34 seats)")
    await page.click("form[action='/admin/concerts'] button[type=submit]")
    await page.wait_for_url("**/admin/concerts/*?done=concert")
    await admin.shot("concert")
    # a show of it: prices per tier, sale window, queue settings
    now = datetime.now(UTC)
    await page.fill("#f-starts_at", _local(now + timedelta(days=10)))
    await page.fill("#f-sale_opens_at", _local(now - timedelta(minutes=5)))
    assert "Asia/Seoul (KST)" in await page.text_content("form[action$='/shows'] legend")
    await page.select_option("#f-currency", "EUR")
    await page.fill("#f-prices-Stalls", "45.50")
    await page.fill("#f-prices-Balcony", "30")
    await page.fill("#f-queue-admit_per_second", "25")
    await page.click("form[action$='/shows'] button[type=submit]")
    await page.wait_for_url("**/admin/shows/*?done=show")
    await admin.shot("show")
    async with runtime.sessions() as s:
        show = (await s.execute(text("SELECT id, queue_admit_per_second FROM shows"))).one()
        stored = (await s.execute(text("SELECT currency, starts_at FROM shows"))).one()
        seats = (
            await s.execute(
                text(
                    "SELECT section, row, count(*), min(price), max(price) FROM seats GROUP BY 1, 2 ORDER BY 1, 2"
                )
            )
        ).all()
    assert show[1] == 25
    assert stored[0] == "EUR" and abs((stored[1] - (now + timedelta(days=10))).total_seconds()) < 2
    assert [tuple(r) for r in seats] == [
        ("Balcony", 1, 5, 3000, 3000),
        ("Balcony", 2, 5, 3000, 3000),
        ("Stalls", 1, 6, 4550, 4550),
        ("Stalls", 2, 8, 4550, 4550),
        ("Stalls", 3, 10, 4550, 4550),
    ]
    # the sale has started: a price change is refused with the reason, nothing changes
    await page.fill("#f-prices-Stalls", "99")
    await page.click("form.card button[type=submit]")
    assert "seats have been on sale at these prices" in await page.text_content("#e-prices")
    async with runtime.sessions() as s:
        assert (await s.execute(text("SELECT max(price) FROM seats"))).scalar_one() == 4550
    await admin.shot("show-refused")
    await page.goto(f"{live_server}/admin")
    assert "Autumn Nights" in await page.text_content("table.data")
    await admin.shot("console")


async def _has(page: Any, selector: str, text_: str) -> bool:
    return text_ in (await page.text_content(selector) or "")


async def _attr(locator: Any, name: str, value: str) -> bool:
    return bool(await locator.get_attribute(name) == value)


async def _tile(page: Any, key: str) -> str:
    return str(await page.text_content(f"[data-k='{key}']"))


async def _db_numbers(runtime: Runtime, show_id: int) -> dict[str, str]:
    async with runtime.sessions() as s:
        counts = dict(
            (
                await s.execute(
                    text("SELECT status, count(*) FROM seats WHERE show_id = :s GROUP BY 1"), {"s": show_id}
                )
            ).all()
        )
        revenue = (
            await s.execute(
                text(
                    "SELECT coalesce(sum(total_price), 0) FROM reservations WHERE show_id = :s AND status = 'RESERVED'"
                ),
                {"s": show_id},
            )
        ).scalar_one()
    return {
        "seats.sold": f"{counts.get('RESERVED', 0):,}",
        "seats.held": f"{counts.get('TEMP_RESERVED', 0):,}",
        "seats.available": f"{counts.get('AVAILABLE', 0):,}",
        "sales.revenue": format_money(revenue, "KRW", "en"),  # the show's currency, as kit.money writes it
    }


async def _page_numbers(page: Any) -> dict[str, str]:
    return {k: await _tile(page, k) for k in ("seats.sold", "seats.held", "seats.available", "sales.revenue")}


async def test_dashboard_follows_a_scripted_sale(admin: Fan, live_server: str, runtime: Runtime) -> None:
    page = admin.page
    show = await make_show(runtime, seats=120, price=2500)
    sid, seats = show["show_id"], show["seat_ids"]
    await page.goto(f"{live_server}/admin/shows/{sid}/dashboard")
    await _until(lambda: _has(page, "#live-state", "live"), "the stream is live")
    assert await _tile(page, "seats.available") == "120"
    fans = [await make_user(runtime, balance=100_000) for _ in range(60)]

    async def buy(c: httpx.AsyncClient, i: int, fan: dict[str, Any]) -> None:
        wanted = seats[(i // 2) * 2 : (i // 2) * 2 + 2]  # two fans want each pair: one wins
        r = await c.post(
            "/api/reservations", json={"show_id": sid, "seat_ids": wanted}, headers=gated(runtime, fan, sid)
        )
        if r.status_code == 201 and i % 3:
            pay = await c.post(
                "/api/payments",
                json={"reservation_id": r.json()["reservation_id"], "method": "BALANCE"},
                headers=gated(runtime, fan, sid, f"pay-{i}"),
            )
            assert pay.status_code == 201, pay.text

    async with httpx.AsyncClient(base_url=live_server, timeout=30) as c:
        await asyncio.gather(*(buy(c, i, fan) for i, fan in enumerate(fans)))
    done = time.monotonic()
    want = await _db_numbers(runtime, sid)
    assert want["seats.sold"] != "0" and want["seats.held"] != "0"
    while (got := await _page_numbers(page)) != want:
        assert time.monotonic() - done < 2.0, (got, want)  # the bound: within 2 s
        await asyncio.sleep(0.05)
    # the per-second charts saw the holds (won and refused) and the payments: each process flushes
    # its counts once a second, so they follow within about a second
    assert await page.locator("#chart-holds .u-legend").count() == 1
    async with runtime.sessions() as s:
        orders = (
            await s.execute(text("SELECT count(*) FROM reservations WHERE status = 'RESERVED'"))
        ).scalar_one()
    assert orders > 10
    want_series = {"holds_won": 30, "holds_refused": 30, "payments_succeeded": orders}
    async with httpx.AsyncClient(base_url=live_server) as c:
        c.cookies.update({k["name"]: k["value"] for k in await page.context.cookies()})
        while True:
            snap = (await c.get(f"/web/admin/shows/{sid}/dashboard")).json()
            got_series = {k: sum(v for v in snap["series"][k] if v) for k in want_series}
            if got_series == want_series:
                break
            assert time.monotonic() - done < 5.0, (got_series, want_series)
            await asyncio.sleep(0.1)
    # latency per second in the series (the tiles cover the last 60 s, which a slow run may pass)
    assert any(v is not None for v in snap["series"]["hold_p99"])
    assert any(v is not None for v in snap["series"]["payment_p50"])
    await page.wait_for_timeout(1200)  # let the charts take the last frame for the screenshot
    await admin.shot("dashboard")
    for range_ in ("1h", "sale"):
        await page.click(f"[data-range='{range_}']")
        pressed = page.locator(f"[data-range='{range_}']")
        await _until(lambda: _attr(pressed, "aria-pressed", "true"), f"range {range_} selected")
    await admin.shot("dashboard-whole-sale")
    await assert_invariants(runtime)


async def test_the_live_tiles_say_static_for_a_show_without_adaptive_admission(
    admin: Fan, live_server: str, runtime: Runtime
) -> None:
    """The dashboard's script (not only the first render) keeps "static" and the target "off" for a
    show whose promoter chose its static rate, and shows the target for a steered one."""
    page = admin.page
    static = await make_show(runtime, seats=4, adaptive=False)
    steered = await make_show(runtime, seats=4)
    await page.goto(f"{live_server}/admin/shows/{static['show_id']}/dashboard")
    await _until(lambda: _has(page, "#live-state", "live"), "the stream is live")
    await _until(lambda: _has(page, "#updated-at", ":"), "a frame arrived")
    assert await _tile(page, "queue.adaptive_rate") == "static"
    assert await _tile(page, "queue.buyer_p99_target_ms") == "off"
    await page.goto(f"{live_server}/admin/shows/{steered['show_id']}/dashboard")
    await _until(lambda: _has(page, "#live-state", "live"), "the stream is live")
    await _until(lambda: _has(page, "#updated-at", ":"), "a frame arrived")
    assert await _tile(page, "queue.buyer_p99_target_ms") == "100 ms"
    assert await _tile(page, "queue.adaptive_rate") != "static"


async def test_pausing_from_the_page_stops_admissions(
    admin: Fan, live_server: str, runtime: Runtime, workers: None
) -> None:
    page = admin.page
    show = await make_show(runtime, seats=200)
    sid, cid = show["show_id"], show["concert_id"]
    async with runtime.sessions() as s, s.begin():
        await s.execute(text("UPDATE shows SET queue_admit_per_second = 4, queue_oversubscription = NULL"))
    fans = [await make_user(runtime) for _ in range(60)]
    async with httpx.AsyncClient(base_url=live_server) as c:
        for fan in fans:
            r = await c.post("/api/queue", json={"concert_id": cid, "show_id": sid}, headers=fan["headers"])
            assert r.status_code == 200, r.text

        async def admitted() -> int:
            c.cookies.update({k["name"]: k["value"] for k in await page.context.cookies()})
            return int((await c.get(f"/web/admin/shows/{sid}/dashboard")).json()["queue"]["admitted_total"])

        deadline = time.monotonic() + 15
        while await admitted() < 3:  # admission runs
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        await page.goto(f"{live_server}/admin/shows/{sid}/queue")
        await page.click("#pause-queue")
        await page.wait_for_url(f"{live_server}/admin/shows/{sid}/queue?done=paused")
        assert await page.text_content("#queue-state") == "Paused"
        await admin.shot("queue-paused")
        await asyncio.sleep(0.6)  # a tick already past its paused check may still admit once
        frozen = await admitted()
        await asyncio.sleep(2.5)  # five admission ticks at 4/s would admit ~10 more
        assert await admitted() == frozen
        async with runtime.sessions() as s:
            assert (
                await s.execute(text("SELECT queue_paused FROM shows WHERE id = :s"), {"s": sid})
            ).scalar_one()
        # resuming from the dashboard starts it again
        await page.goto(f"{live_server}/admin/shows/{sid}/dashboard")
        await page.click("#resume-queue")
        await page.wait_for_url(f"{live_server}/admin/shows/{sid}/dashboard?done=resumed")
        deadline = time.monotonic() + 10
        while await admitted() <= frozen:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)


ADMIN_PAGES = [
    "/admin",
    "/admin/venues",
    "/admin/concerts",
    "/admin/concerts/1",
    "/admin/shows/1",
    "/admin/shows/1/queue",
    "/admin/shows/1/dashboard",
    "/admin/shows/1/sales.csv",
    "/admin/fans",
]
ADMIN_DATA = [
    "/web/admin/shows/1/dashboard",
    "/web/admin/shows/1/dashboard/stream",
    "/web/admin/shows/1/seats",
]


async def test_fans_and_visitors_cannot_reach_the_console(
    fans: FanFactory, live_server: str, runtime: Runtime
) -> None:
    await make_show(runtime, seats=4)
    visitor = await fans()
    page = visitor.page
    for path in ADMIN_PAGES:  # a visitor: the login page, coming back afterwards; never a 404
        await page.goto(live_server + path)
        assert page.url.startswith(f"{live_server}/login?next="), path
        assert await page.is_visible("#password")
    await visitor.shot("anonymous-login")
    await _account(runtime, "fan@example.test")
    await visitor.login("fan@example.test", then="/account")
    visitor.expected_statuses.add(403)
    for path in ADMIN_PAGES:  # a fan: a styled 403 page
        resp = await page.goto(live_server + path)
        assert resp.status == 403, path
        assert "for administrators" in await page.text_content("main")
    await visitor.shot("fan-403")
    for path in ADMIN_DATA:  # the browser's data routes and the API refuse too
        resp = await page.request.get(live_server + path)
        assert resp.status == 403 and (await resp.json())["code"] == "FORBIDDEN", path
    fan = await make_user(runtime)
    async with httpx.AsyncClient(base_url=live_server) as c:
        for path in ("/api/admin/shows/1/dashboard", "/api/admin/fans?email=a@b.c", "/api/admin/venues"):
            assert (await c.get(path)).status_code == 401
            assert (await c.get(path, headers=fan["headers"])).status_code == 403


async def test_a_form_post_without_its_csrf_token_is_refused(
    admin: Fan, live_server: str, runtime: Runtime
) -> None:
    page = admin.page
    admin.expected_statuses.add(403)
    await page.goto(f"{live_server}/admin/venues")
    # a forged post (the session cookie rides along, the token cannot): refused, nothing created
    resp = await page.request.post(
        f"{live_server}/admin/venues",
        form={
            "name": "Forged",
            "sections-0-name": "A",
            "sections-0-rows": "1",
            "sections-0-seats_per_row": "1",
        },
    )
    assert resp.status == 403
    # the real form with its token field removed: the same, as a page with the reason
    await page.fill("#f-name", "Also forged")
    await page.evaluate("document.querySelector('#venue-form input[name=csrf_token]').remove()")
    await page.click("#venue-form button[type=submit]")
    assert "This form has expired" in await page.text_content("main")
    async with runtime.sessions() as s:
        assert (await s.execute(text("SELECT count(*) FROM venues"))).scalar_one() == 0


async def test_screenshots_of_orders_and_fans(admin: Fan, live_server: str, runtime: Runtime) -> None:
    page = admin.page
    show = await make_show(runtime, seats=6, price=4000)
    sid = show["show_id"]
    fan = await make_user(runtime, balance=50_000, email="buyer@example.test")
    async with httpx.AsyncClient(base_url=live_server) as c:
        held = await c.post(
            "/api/reservations",
            json={"show_id": sid, "seat_ids": show["seat_ids"][:2]},
            headers=gated(runtime, fan, sid),
        )
        rid = held.json()["reservation_id"]
        paid = await c.post(
            "/api/payments",
            json={"reservation_id": rid, "method": "BALANCE"},
            headers=gated(runtime, fan, sid, "p1"),
        )
        assert paid.status_code == 201
    await page.goto(f"{live_server}/admin/fans?email=buyer@example.test")
    assert await page.text_content("#fan-balance") == "₩42,000"
    await page.fill(f"#reason-{rid}", "Customer asked by phone")
    await page.click(f"tr[data-reservation='{rid}'] button[type=submit]")
    await page.wait_for_url("**done=cancelled")
    assert await page.text_content("#fan-balance") == "₩50,000"
    audit = await page.text_content("#fan-audit")
    assert "boss@example.test" in audit and "Customer asked by phone" in audit and "DONE" in audit
    await admin.shot("fans")
    await page.goto(f"{live_server}/admin/shows/{sid}/queue")
    await admin.shot("queue")
    await page.goto(f"{live_server}/admin/concerts")
    await admin.shot("concerts")
    async with page.expect_download() as info:
        await page.evaluate(f"window.location.href = '/admin/shows/{sid}/sales.csv'")
    download = await info.value
    content = Path(await download.path()).read_text()
    assert "buyer@example.test" in content and "CANCELLED" in content
    await assert_invariants(runtime)

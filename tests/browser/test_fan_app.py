"""The fan's web app in Chromium: buying end to end, live seats across browsers, best available,
the waiting room's sold-out message, error sentences, keyboard-only list mode."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from sqlalchemy import text

from boxoffice.catalog.schemas import QueueSettingsIn
from boxoffice.runtime import Runtime
from tests.browser.conftest import (
    FanFactory,
    admitted,
    click_seat,
    make_concert,
    make_fan,
    map_ready,
    seat_status,
)
from tests.factories import make_user
from tests.integration.test_booking_support import assert_invariants, gated


async def seats_of(runtime: Runtime, show_id: int) -> list[dict[str, Any]]:
    async with runtime.sessions() as s:
        rows = await s.execute(
            text(
                "SELECT id, section, row, number, status, reservation_id FROM seats "
                "WHERE show_id = :s ORDER BY id"
            ),
            {"s": show_id},
        )
        return [dict(r) for r in rows.mappings()]


async def one(runtime: Runtime, sql: str, **params: Any) -> Any:
    async with runtime.sessions() as s:
        return (await s.execute(text(sql), params)).one()


async def test_a_fan_buys_two_seats_end_to_end(runtime, workers, fans: FanFactory) -> None:  # type: ignore[no-untyped-def]
    made = await make_concert(runtime, name="End To End")
    email = await make_fan(runtime, balance=100_000)
    fan = await fans()
    page = fan.page
    await fan.goto("/")
    await fan.shot("home")
    await page.click("text=End To End")
    await page.wait_for_url("**/concerts/*")
    await fan.shot("concert")
    async with page.expect_navigation():
        await page.click("text=Get tickets")  # logged out: to the login page first
    assert "/login" in page.url
    await fan.shot("login")
    await page.fill("#email", email)
    await page.fill("#password", "a good long password")
    async with page.expect_navigation():
        await page.click("button:has-text('Log in')")
    # The login continues what was asked: the waiting room, which joins by itself.
    await page.wait_for_url(f"**/shows/{made['show_id']}/queue*")
    await fan.shot("waiting-room")
    await page.wait_for_url(f"**/shows/{made['show_id']}/seats", timeout=20_000)  # READY moves on by itself
    await map_ready(fan)
    seats = [s for s in await seats_of(runtime, made["show_id"]) if s["section"] == "Front" and s["row"] == 1]
    wanted = [seats[4]["id"], seats[5]["id"]]
    for seat_id in wanted:
        await click_seat(fan, seat_id)
    assert sorted(await page.evaluate("() => window.boxofficeSeatMap.selected()")) == wanted
    await fan.shot("seat-map-selected")
    async with page.expect_navigation():
        await page.click("#hold-button")
    assert "/checkout" in page.url
    await page.wait_for_selector("#hold-countdown:not(:empty)")
    await fan.shot("checkout")
    async with page.expect_navigation():
        await page.click("#pay-balance")
    assert "/tickets" in page.url
    card = page.locator("#reservations li.card").first
    assert await card.get_attribute("data-status") == "RESERVED"
    assert "Confirmed" in await card.inner_text()
    await fan.shot("my-tickets")
    # The database agrees.
    rid = int((await card.get_attribute("id")).removeprefix("reservation-"))
    res = await one(runtime, "SELECT status, total_price, user_id FROM reservations WHERE id = :r", r=rid)
    assert res.status == "RESERVED" and res.total_price == 40_000
    rows = {s["id"]: s for s in await seats_of(runtime, made["show_id"])}
    assert all(rows[i]["status"] == "RESERVED" and rows[i]["reservation_id"] == rid for i in wanted)
    paid = await one(runtime, "SELECT status, method, amount FROM payments WHERE reservation_id = :r", r=rid)
    assert tuple(paid) == ("SUCCEEDED", "BALANCE", 40_000)
    balance = await one(runtime, "SELECT balance FROM users WHERE id = :u", u=res.user_id)
    assert balance[0] == 60_000
    await assert_invariants(runtime)


async def test_two_browsers_see_seats_taken_and_freed_live(
    runtime, workers, fans: FanFactory, live_server
) -> None:  # type: ignore[no-untyped-def]
    made = await make_concert(runtime, hold_seconds=8, name="Live Seats")
    sid = made["show_id"]
    buyer, watcher = await fans(), await fans(width=375, height=800)
    await buyer.login(await make_fan(runtime))
    await watcher.login(await make_fan(runtime))
    await admitted(buyer, sid)
    await admitted(watcher, sid)
    seats = [s["id"] for s in await seats_of(runtime, sid)]
    # 1. The buyer holds two seats on the canvas; the watcher sees them grey out without a reload.
    await click_seat(buyer, seats[0])
    await click_seat(buyer, seats[1])
    async with buyer.page.expect_response("**/web/reservations") as held:
        await buyer.page.click("#hold-button")
    assert (await held.value).status == 201
    t0 = time.monotonic()
    await watcher.page.wait_for_function(
        "(ids) => ids.every((id) => window.boxofficeSeatMap.seat(id).status !== 'AVAILABLE')",
        arg=seats[:2],
        polling="raf",
        timeout=5_000,
    )
    took = time.monotonic() - t0
    assert took < 1.0, f"the watcher saw the hold after {took:.2f} s"
    await watcher.shot("seat-map-live-grey-375px")
    # 2. The buyer pays: still taken for the watcher (now sold).
    await buyer.page.wait_for_url("**/checkout")
    async with buyer.page.expect_navigation():
        await buyer.page.click("#pay-balance")
    await watcher.page.wait_for_function(
        "(id) => window.boxofficeSeatMap.seat(id).status === 'RESERVED'", arg=seats[0], timeout=5_000
    )
    # 3. A hold made elsewhere (an API client) expires: its seat comes back for the watcher, live.
    other = await make_user(runtime)
    async with httpx.AsyncClient(base_url=live_server) as api:
        resp = await api.post(
            "/api/reservations",
            json={"show_id": sid, "seat_ids": [seats[5]]},
            headers=gated(runtime, other, sid),
        )
        assert resp.status_code == 201
    await watcher.page.wait_for_function(
        "(id) => window.boxofficeSeatMap.seat(id).status === 'TEMP_RESERVED'", arg=seats[5], timeout=5_000
    )
    await watcher.page.wait_for_function(
        "(id) => window.boxofficeSeatMap.seat(id).status === 'AVAILABLE'", arg=seats[5], timeout=30_000
    )
    assert await seat_status(watcher, seats[0]) == "RESERVED"
    await assert_invariants(runtime)


async def test_best_available_takes_adjacent_seats_and_leaves_no_orphan(
    runtime, workers, fans: FanFactory, live_server
) -> None:  # type: ignore[no-untyped-def]
    made = await make_concert(runtime, sections=[("Stalls", 2, 6, 5_000)], name="Best Seats")
    sid = made["show_id"]
    seats = await seats_of(runtime, sid)
    row1 = [s["id"] for s in seats if s["row"] == 1]
    # Seat 1 of row 1 is held by someone else: free 2..6. Three seats in the middle (3-5) would
    # strand seat 2 and seat 6; the rule must take 2-4 (closest to the middle without an orphan).
    other = await make_user(runtime)
    async with httpx.AsyncClient(base_url=live_server) as api:
        assert (
            await api.post(
                "/api/reservations",
                json={"show_id": sid, "seat_ids": [row1[0]]},
                headers=gated(runtime, other, sid),
            )
        ).status_code == 201
    fan = await fans()
    await fan.login(await make_fan(runtime))
    await admitted(fan, sid)
    await fan.page.select_option("#best-quantity", "3")
    async with fan.page.expect_navigation():
        await fan.page.click("#best-button")
    assert "/checkout" in fan.page.url
    await fan.shot("checkout-best-available")
    after = await seats_of(runtime, sid)
    mine = sorted(
        (s["row"], s["number"])
        for s in after
        if s["status"] == "TEMP_RESERVED" and s["reservation_id"] and s["id"] != row1[0]
    )
    assert mine == [(1, 2), (1, 3), (1, 4)]
    free = {(s["row"], s["number"]) for s in after if s["status"] == "AVAILABLE"}
    orphans = [
        seat for seat in free if (seat[0], seat[1] - 1) not in free and (seat[0], seat[1] + 1) not in free
    ]
    assert orphans == []
    await assert_invariants(runtime)


async def test_waiting_room_says_sold_out_at_once(runtime, workers, fans: FanFactory, live_server) -> None:  # type: ignore[no-untyped-def]
    made = await make_concert(
        runtime,
        sections=[("Tiny", 1, 2, 5_000)],
        queue=QueueSettingsIn(admit_per_second=100, oversubscription=None, paused=True),
        name="Sold Out Soon",
    )
    sid = made["show_id"]
    fan = await fans()
    await fan.login(await make_fan(runtime))
    await fan.goto(f"/concerts/{made['concert_id']}")
    async with fan.page.expect_navigation():
        await fan.page.click("button:has-text('Get tickets')")
    await fan.page.wait_for_selector("#position")
    await fan.shot("waiting-room-waiting")
    # Someone who got in earlier buys both seats (through the API): the line can never move now.
    buyer = await make_user(runtime, balance=100_000)
    seats = [s["id"] for s in await seats_of(runtime, sid)]
    async with httpx.AsyncClient(base_url=live_server) as api:
        held = await api.post(
            "/api/reservations", json={"show_id": sid, "seat_ids": seats}, headers=gated(runtime, buyer, sid)
        )
        assert held.status_code == 201
        paid = await api.post(
            "/api/payments",
            json={"reservation_id": held.json()["reservation_id"], "method": "BALANCE"},
            headers={**buyer["headers"], "Idempotency-Key": "sold-out"},
        )
        assert paid.status_code == 201
    message = fan.page.locator("#queue-message")
    await message.filter(has_text="Sold out").wait_for(timeout=15_000)
    await fan.shot("waiting-room-sold-out")
    assert "sold while you waited" in await message.inner_text()


async def test_failed_login_and_insufficient_balance_say_why(runtime, workers, fans: FanFactory) -> None:  # type: ignore[no-untyped-def]
    made = await make_concert(runtime, name="Short Of Money")
    email = await make_fan(runtime, balance=100)
    fan = await fans()
    fan.expected_statuses = {401, 402}  # the answers below are the point of this test
    await fan.goto("/login")
    await fan.page.fill("#email", email)
    await fan.page.fill("#password", "not my password")
    async with fan.page.expect_navigation():
        await fan.page.click("button:has-text('Log in')")
    assert "Wrong email or password" in await fan.page.locator("#form-error").inner_text()
    await fan.shot("login-failed")
    await fan.login(email)
    await admitted(fan, made["show_id"])
    seat = (await seats_of(runtime, made["show_id"]))[0]["id"]
    await click_seat(fan, seat)
    async with fan.page.expect_navigation():
        await fan.page.click("#hold-button")
    async with fan.page.expect_navigation():
        await fan.page.click("#pay-balance")
    notice = fan.page.locator("main .notice.error")
    assert "does not cover this payment" in await notice.inner_text()
    await fan.shot("checkout-insufficient-balance")
    rid = int(fan.page.url.split("/reservations/")[1].split("/")[0])
    res = await one(runtime, "SELECT status FROM reservations WHERE id = :r", r=rid)
    assert res.status == "TEMP_RESERVED"  # nothing charged, the hold stays
    assert (await one(runtime, "SELECT count(*) FROM payments WHERE reservation_id = :r", r=rid))[0] == 0


async def _tab_to(page: Any, element_id: str, limit: int = 60) -> None:
    for _ in range(limit):
        if await page.evaluate("() => document.activeElement && document.activeElement.id") == element_id:
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"#{element_id} is not reachable with Tab")


async def test_keyboard_only_purchase_in_list_mode(runtime, workers, fans: FanFactory) -> None:  # type: ignore[no-untyped-def]
    made = await make_concert(runtime, name="Keyboard Night")
    fan = await fans()
    await fan.login(await make_fan(runtime))
    await admitted(fan, made["show_id"])
    page = fan.page
    await _tab_to(page, "mode-list")
    await page.keyboard.press("Enter")
    assert await page.locator("#list-view").is_visible()
    await _tab_to(page, "list-section")
    await page.keyboard.press("ArrowDown")  # the second section ("Back")
    await _tab_to(page, "list-row")
    await page.keyboard.press("ArrowDown")  # row 2
    assert await page.locator("#list-legend").inner_text() == "Back, row 2"
    for _ in range(2):  # the first two seats of the row
        await page.keyboard.press("Tab")
        await page.keyboard.press("Space")
    await fan.shot("seat-list-mode")
    chosen = await page.evaluate(
        "() => window.boxofficeSeatMap.selected().map((id) => window.boxofficeSeatMap.seat(id))"
    )
    assert [(s["section"], s["row"], s["number"]) for s in chosen] == [("Back", 2, 1), ("Back", 2, 2)]
    await _tab_to(page, "hold-button")
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    await _tab_to(page, "pay-balance")
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    assert "/tickets" in page.url
    assert await page.locator("#reservations li.card").first.get_attribute("data-status") == "RESERVED"
    sold = [s for s in await seats_of(runtime, made["show_id"]) if s["status"] == "RESERVED"]
    assert sorted((s["section"], s["row"], s["number"]) for s in sold) == [("Back", 2, 1), ("Back", 2, 2)]
    await assert_invariants(runtime)
    await asyncio.sleep(0)


async def test_card_payment_confirming_then_refund_and_cancel_from_my_tickets(
    runtime, workers, fans: FanFactory
) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.test_booking_support import force, simulator

    made = await make_concert(runtime, name="Card Night")
    sid = made["show_id"]
    fan = await fans()
    await fan.login(await make_fan(runtime, balance=0))
    await admitted(fan, sid)
    seats = [s["id"] for s in await seats_of(runtime, sid)]
    await click_seat(fan, seats[0])
    async with fan.page.expect_navigation():
        await fan.page.click("#hold-button")
    # The provider takes longer than our timeout: the outcome is unknown, the page says
    # "confirming" and moves on by itself once reconciliation has settled the charge.
    async with simulator(runtime, timeout_sleep_seconds=1.5) as url:
        await force(url, "timeout")
        async with fan.page.expect_navigation():
            await fan.page.click("#pay-card")
        assert "Confirming" in await fan.page.locator("#confirming").inner_text()
        await fan.shot("checkout-confirming")
        await fan.page.wait_for_url("**/tickets?paid=*", timeout=30_000)
        card = fan.page.locator("#reservations li.card").first
        assert await card.get_attribute("data-status") == "RESERVED"
        async with fan.page.expect_navigation():
            await card.locator("button:has-text('Cancel and refund')").click()
    assert "cancelled" in await fan.page.locator("main .notice").inner_text()
    rid = int((await card.get_attribute("id")).removeprefix("reservation-"))
    assert (await one(runtime, "SELECT status FROM reservations WHERE id = :r", r=rid))[0] == "CANCELLED"
    assert (await one(runtime, "SELECT status, method FROM payments WHERE reservation_id = :r", r=rid))[
        0
    ] == "REFUNDED"
    # A hold cancelled from My tickets frees its seat.
    await admitted(fan, sid)
    await click_seat(fan, seats[1])
    async with fan.page.expect_navigation():
        await fan.page.click("#hold-button")
    await fan.goto("/tickets")
    held = fan.page.locator("#reservations li.card").first
    assert await held.get_attribute("data-status") == "TEMP_RESERVED"
    async with fan.page.expect_navigation():
        await held.locator("button:has-text('Cancel hold')").click()
    rows = {s["id"]: s for s in await seats_of(runtime, sid)}
    assert rows[seats[1]]["status"] == "AVAILABLE" and rows[seats[0]]["status"] == "AVAILABLE"
    await assert_invariants(runtime)


async def test_double_submit_of_a_payment_charges_once(runtime, workers, fans: FanFactory) -> None:  # type: ignore[no-untyped-def]
    made = await make_concert(runtime, name="Double Click")
    email = await make_fan(runtime, balance=100_000)
    fan = await fans()
    await fan.login(email)
    await admitted(fan, made["show_id"])
    await click_seat(fan, (await seats_of(runtime, made["show_id"]))[0]["id"])
    async with fan.page.expect_navigation():
        await fan.page.click("#hold-button")
    rid = int(fan.page.url.split("/reservations/")[1].split("/")[0])
    # Two submits of the same form at once (what a double click does without the button guard):
    # both reach the server with the same Idempotency-Key.
    async with fan.page.expect_navigation(url="**/tickets?paid=*"):
        await fan.page.evaluate(
            """() => {
                const form = document.querySelector('#pay-balance').form;
                const body = new URLSearchParams(new FormData(form));
                fetch(form.action, {method: 'POST', body, credentials: 'same-origin'});
                form.requestSubmit();
            }"""
        )
    for _ in range(50):  # both answers are in once the fetch's request has been served
        payments = (await one(runtime, "SELECT count(*) FROM payments WHERE reservation_id = :r", r=rid))[0]
        keys = (
            await one(
                runtime, "SELECT count(*) FROM idempotency_keys WHERE key = :k", k=f"web-pay-{rid}-BALANCE"
            )
        )[0]
        if keys == 1:
            break
        await asyncio.sleep(0.1)
    assert payments == 1 and keys == 1
    user = await one(runtime, "SELECT balance FROM users WHERE email = :e", e=email)
    assert user[0] == 100_000 - 20_000
    await assert_invariants(runtime)

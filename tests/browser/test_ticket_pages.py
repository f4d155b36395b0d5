"""The fan's tickets in Chromium: bought in the browser, My tickets shows one card per seat with a
QR code that decodes (from the screenshot) to a ticket that scans VALID at the door; after the scan
the card says "Used at HH:MM"; the one-ticket page on a phone and in print; a stranger gets 404;
after a refund the card says Void and the ticket scans VOID. Screenshots in test-output/browser."""

from __future__ import annotations

import io

import httpx
import zxingcpp
from PIL import Image
from sqlalchemy import text

from boxoffice.runtime import Runtime
from tests.browser.conftest import OUTPUT, FanFactory, admitted, click_seat, make_concert, make_fan
from tests.factories import make_user
from tests.integration.test_booking_support import assert_invariants


async def _decode(png: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


async def test_my_tickets_cards_qr_scan_print_and_void(  # type: ignore[no-untyped-def]
    runtime: Runtime, workers, fans: FanFactory, live_server: str
) -> None:
    made = await make_concert(runtime, name="Ticket Night")
    email = await make_fan(runtime, balance=100_000, name="Kim Minji")
    fan = await fans()
    await fan.login(email)
    await admitted(fan, made["show_id"])
    async with runtime.sessions() as s:
        seat_ids = [
            r[0]
            for r in await s.execute(
                text(
                    "SELECT id FROM seats WHERE show_id = :s AND section = 'Front' AND row = 1 ORDER BY number"
                ),
                {"s": made["show_id"]},
            )
        ][2:4]
    for seat_id in seat_ids:
        await click_seat(fan, seat_id)
    async with fan.page.expect_navigation():
        await fan.page.click("#hold-button")
    async with fan.page.expect_navigation():
        await fan.page.click("#pay-balance")
    assert "/tickets" in fan.page.url
    cards = fan.page.locator(".ticket-card")
    assert await cards.count() == 2
    first = cards.first
    text_ = await first.inner_text()
    assert "Ticket Night" in text_ and "Front · Row 1 · Seat" in text_ and "Kim Minji" in text_
    assert "Valid" in text_ and "RESERVED" not in await fan.page.locator("main").inner_text()
    assert " KST" in text_  # the venue's zone, named
    await fan.shot("my-tickets-cards")
    assert await fan.axe() == []

    # The QR code as the screen shows it decodes to the ticket's signed payload ...
    ticket_id = int((await first.get_attribute("id")).removeprefix("ticket-"))
    qr_png = await first.locator("img.ticket-qr").screenshot()
    decoded = await _decode(qr_png)
    async with runtime.sessions() as s:
        payload, code = (
            await s.execute(text("SELECT payload, code FROM tickets WHERE id = :t"), {"t": ticket_id})
        ).one()
    assert decoded == [payload]
    # ... which scans VALID at the door, and the card then says when it was used.
    staff = await make_user(runtime, role="DOOR")
    async with httpx.AsyncClient(base_url=live_server) as c:
        scan = await c.post(
            f"/api/shows/{made['show_id']}/checkins",
            json={"gate": "Main", "payload": decoded[0]},
            headers=staff["headers"],
        )
        assert scan.json()["result"] == "VALID", scan.text
        again = await c.post(
            f"/api/shows/{made['show_id']}/checkins",
            json={"gate": "Side", "code": code},
            headers=staff["headers"],
        )
        assert again.json()["result"] == "ALREADY_USED"
    await fan.goto("/tickets")
    used = fan.page.locator(f"#ticket-{ticket_id}")
    assert await used.get_attribute("data-ticket-status") == "USED"
    assert "Used at " in await used.inner_text()

    # The one-ticket page on a phone, and printed.
    phone = await fans(width=390, height=844)
    await phone.login(email, then=f"/tickets/{ticket_id}")
    assert f"/tickets/{ticket_id}" in phone.page.url
    other_id = ticket_id + 1 if await fan.page.locator(f"#ticket-{ticket_id + 1}").count() else ticket_id - 1
    await phone.goto(f"/tickets/{other_id}")
    single = phone.page.locator(".ticket-single")
    assert "Valid" in await single.inner_text()
    box = await phone.page.locator("#ticket-qr").bounding_box()
    assert box is not None and box["width"] >= 250 and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert await _decode(await phone.page.locator("#ticket-qr").screenshot()) != []
    await phone.shot("ticket-phone")
    assert await phone.axe() == []
    await phone.page.emulate_media(media="print")
    assert not await phone.page.locator(".site-header").is_visible()
    await phone.shot("ticket-print")
    pdf = await phone.page.request.get(
        f"{live_server}/reservations/{await _order(runtime, ticket_id)}/tickets.pdf"
    )
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"

    # A stranger gets a 404, for the page, the QR code and the PDF.
    stranger_email = await make_fan(runtime)
    stranger = await fans()
    stranger.expected_statuses.add(404)
    await stranger.login(stranger_email)
    for path in (f"/tickets/{ticket_id}", f"/tickets/{ticket_id}/qr.svg"):
        answer = await stranger.goto(path)
        assert answer.status == 404, path
    OUTPUT.mkdir(parents=True, exist_ok=True)

    # Refunded: the cards say Void and the ticket scans VOID.
    await fan.goto("/tickets")
    async with fan.page.expect_navigation():
        await fan.page.locator("button:has-text('Cancel and refund')").first.click()
    statuses = await fan.page.locator(".ticket-card").evaluate_all(
        "els => els.map(e => e.dataset.ticketStatus)"
    )
    assert statuses == ["VOID", "VOID"]
    assert "Void" in await fan.page.locator(f"#ticket-{other_id}").inner_text()
    await fan.shot("my-tickets-void")
    async with httpx.AsyncClient(base_url=live_server) as c:
        void = await c.post(
            f"/api/shows/{made['show_id']}/checkins",
            json={"gate": "Main", "payload": decoded[0]},
            headers=staff["headers"],
        )
    assert void.json()["result"] == "VOID"
    await assert_invariants(runtime)


async def _order(runtime: Runtime, ticket_id: int) -> int:
    async with runtime.sessions() as s:
        return int(
            (
                await s.execute(text("SELECT reservation_id FROM tickets WHERE id = :t"), {"t": ticket_id})
            ).scalar_one()
        )

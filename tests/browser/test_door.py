"""The door page in Chromium: typed codes, the camera path (Chromium's fake capture device playing
a y4m of the ticket's QR code, decoded by the page), ALREADY USED at a second gate, VOID after a
refund, and two gates that lose the network (context offline) and keep admitting from the
downloaded list and public keys, then sync: the double entry comes back as a CONFLICT on the
console. Screenshots of the answers in test-output/browser."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import segno
from PIL import Image

from boxoffice.auth.service import ensure_account
from boxoffice.bench.seat_map import CHROMIUM, CHROMIUM_ARGS
from boxoffice.runtime import Runtime
from tests.browser.conftest import OUTPUT, PASSWORD, FanFactory
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import assert_invariants, gated


async def _bought(
    runtime: Runtime, base: str, seats: int
) -> tuple[dict[str, Any], int, int, list[dict[str, Any]]]:
    show = await make_show(runtime, seats=seats, max_seats=seats)
    sid = show["show_id"]
    fan = await make_user(runtime, balance=1_000_000, name="Door Fan")
    async with httpx.AsyncClient(base_url=base) as c:
        hold = await c.post(
            "/api/reservations",
            json={"show_id": sid, "seat_ids": show["seat_ids"]},
            headers=gated(runtime, fan, sid),
        )
        rid = hold.json()["reservation_id"]
        paid = await c.post(
            "/api/payments",
            json={"reservation_id": rid, "method": "BALANCE"},
            headers=gated(runtime, fan, sid, "k"),
        )
        assert paid.status_code == 201, paid.text
        items = (await c.get("/api/tickets", headers=fan["headers"])).json()["items"]
    return fan, sid, rid, sorted(items, key=lambda t: t["ticket_id"])


async def _staff(runtime: Runtime, email: str) -> None:
    async with runtime.sessions() as s, s.begin():
        await ensure_account(
            s, runtime.settings, email=email, password=PASSWORD, name="Gate Staff", role="DOOR"
        )


async def _door(fans: FanFactory, sid: int, email: str, gate: str) -> Any:
    staff = await fans(width=420, height=900)
    await staff.login(email, then=f"/door/{sid}")
    assert f"/door/{sid}" in staff.page.url
    await staff.page.wait_for_function("() => window.boxofficeDoor && window.boxofficeDoor.ready")
    await staff.page.fill("#door-gate", gate)
    await staff.page.dispatch_event("#door-gate", "change")
    return staff


async def _typed(staff: Any, code: str) -> str:
    await staff.page.fill("#door-code", code)
    before = await staff.page.evaluate("() => window.boxofficeDoor.answers")
    await staff.page.click("#door-code-form button")
    await staff.page.wait_for_function("(b) => window.boxofficeDoor.answers > b", arg=before)
    return str(await staff.page.locator("#door-answer").get_attribute("data-result"))


def _y4m(text: str, path: Path, width: int = 640, height: int = 480, frames: int = 10) -> None:
    """A y4m video (4:2:0) of the QR code on white, for Chromium's fake capture device."""
    qr = io.BytesIO()
    segno.make(text, error="m").save(qr, kind="png", scale=6, border=4)
    code = Image.open(qr).convert("L")
    frame = Image.new("L", (width, height), 255)
    frame.paste(code, ((width - code.width) // 2, (height - code.height) // 2))
    assert code.width <= width and code.height <= height
    y = frame.tobytes()
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + y + chroma + chroma)


async def test_door_page_admits_once_and_answers_every_case(  # type: ignore[no-untyped-def]
    runtime: Runtime, fans: FanFactory, live_server: str
) -> None:
    fan, sid, rid, tickets = await _bought(runtime, live_server, 3)
    _other_fan, other_sid, _rid2, other_tickets = await _bought(runtime, live_server, 1)
    await _staff(runtime, "gate1@example.test")
    gate1 = await _door(fans, sid, "gate1@example.test", "North 1")
    gate2 = await _door(fans, sid, "gate1@example.test", "South 2")
    assert await _typed(gate1, tickets[0]["code"].lower()) == "VALID"
    assert tickets[0]["seat"] in await gate1.page.locator("#door-detail").inner_text()
    await gate1.shot("door-valid")
    assert await _typed(gate2, tickets[0]["code"]) == "ALREADY_USED"
    assert "at North 1" in await gate2.page.locator("#door-detail").inner_text()
    await gate2.shot("door-already-used")
    assert await _typed(gate1, other_tickets[0]["code"]) == "WRONG_SHOW"
    assert await _typed(gate1, "0000-0000-0000-0000") == "NOT_A_TICKET"
    await gate1.shot("door-not-a-ticket")
    # Refunded: the third ticket's order is refunded by an admin... here the fan's whole order
    async with httpx.AsyncClient(base_url=live_server) as c:
        resp = await c.delete(f"/api/reservations/{rid}", headers=fan["headers"])
        assert resp.status_code == 200, resp.text
    assert await _typed(gate2, tickets[2]["code"]) == "VOID"
    await gate2.shot("door-void")
    # A fan cannot open the door.
    fan_email = "notstaff@example.test"
    async with runtime.sessions() as s, s.begin():
        await ensure_account(s, runtime.settings, email=fan_email, password=PASSWORD, name="Fan")
    plain = await fans()
    plain.expected_statuses.add(403)
    await plain.login(fan_email)
    assert (await plain.goto(f"/door/{sid}")).status == 403
    del other_sid
    await assert_invariants(runtime)


async def test_the_camera_reads_the_qr_code(runtime: Runtime, live_server: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _fan, sid, _rid, tickets = await _bought(runtime, live_server, 1)
    await _staff(runtime, "camera@example.test")
    video = tmp_path / "ticket.y4m"
    _y4m(tickets[0]["payload"], video)
    from playwright.async_api import async_playwright

    pw = await async_playwright().start()
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        context = await browser.new_context(viewport={"width": 420, "height": 900})
        await context.grant_permissions(["camera"], origin=live_server)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(f"{live_server}/login?next=/door/{sid}")
        await page.fill("#email", "camera@example.test")
        await page.fill("#password", PASSWORD)
        async with page.expect_navigation():
            await page.click("button:has-text('Log in')")
        await page.wait_for_function("() => window.boxofficeDoor && window.boxofficeDoor.ready")
        await page.click("#door-camera")
        await page.wait_for_function(
            "() => window.boxofficeDoor.lastAnswer && window.boxofficeDoor.lastAnswer.result === 'VALID'",
            timeout=20_000,
        )
        assert tickets[0]["seat"] in await page.locator("#door-detail").inner_text()
        decoder = await page.evaluate("() => window.boxofficeDoor.decoder")
        assert decoder in ("BarcodeDetector", "jsQR")
        OUTPUT.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(OUTPUT / "door-camera--valid.png"), full_page=True)
        # the camera keeps seeing the same code: after the repeat guard it answers ALREADY USED
        await page.wait_for_function(
            "() => window.boxofficeDoor.lastAnswer.result === 'ALREADY_USED'", timeout=20_000
        )
        assert errors == []
    finally:
        await browser.close()
        await pw.stop()
    async with runtime.sessions() as s:
        from sqlalchemy import text

        status = (
            await s.execute(text("SELECT status FROM tickets WHERE id = :t"), {"t": tickets[0]["ticket_id"]})
        ).scalar_one()
    assert status == "USED"


async def test_offline_gates_keep_admitting_and_report_the_conflict(  # type: ignore[no-untyped-def]
    runtime: Runtime, fans: FanFactory, live_server: str
) -> None:
    _fan, sid, _rid, tickets = await _bought(runtime, live_server, 3)
    await _staff(runtime, "offline@example.test")
    a = await _door(fans, sid, "offline@example.test", "Offline A")
    b = await _door(fans, sid, "offline@example.test", "Offline B")
    size = await a.page.evaluate("() => Object.keys(window.boxofficeDoor.state.tickets).length")
    assert size == 3  # the list is on the device
    for gate in (a, b):
        await gate.context.set_offline(True)
    # Both gates let ticket 0 in (one by its QR payload, verified in the browser, one by its code).
    answer = await a.page.evaluate("(p) => window.boxofficeDoor.check({payload: p})", tickets[0]["payload"])
    assert answer["result"] == "VALID" and answer["offline"] is True
    assert await _typed(b, tickets[0]["code"]) == "VALID"
    await b.shot("door-offline-valid")
    # Offline, the same gate refuses its own second scan, and a forged payload.
    assert await _typed(a, tickets[0]["code"]) == "ALREADY_USED"
    forged = tickets[1]["payload"][:-6] + "AAAAAA"
    answer = await a.page.evaluate("(p) => window.boxofficeDoor.check({payload: p})", forged)
    assert answer["result"] == "NOT_A_TICKET"
    assert await _typed(a, tickets[1]["code"]) == "VALID"
    assert await a.page.locator("#door-network").inner_text() == "offline"
    # Back online: each gate syncs (the button, or the page's own retry timer, whichever is first);
    # whichever gate syncs ticket 0 second gets the double entry back as a CONFLICT.
    for gate in (a, b):
        await gate.context.set_offline(False)
        # Chromium logs each request the lost network refused; those are the point of this test.
        gate.console_errors = [e for e in gate.console_errors if "ERR_INTERNET_DISCONNECTED" not in e]
    last_sync = "async () => { await window.boxofficeDoor.sync(); return window.boxofficeDoor.synced; }"
    first = await a.page.evaluate(last_sync)  # gate A's two offline scans: ticket 0, ticket 1
    second = await b.page.evaluate(last_sync)  # gate B's one: ticket 0
    a_results = [r["result"] for r in first["results"]]
    b_results = [r["result"] for r in second["results"]]
    assert a_results[1] == "VALID" and sorted([a_results[0], b_results[0]]) == ["CONFLICT", "VALID"]
    assert first["conflicts"] + second["conflicts"] == 1
    loser, loser_gate = (a, "Offline A") if a_results[0] == "CONFLICT" else (b, "Offline B")
    assert "1 conflict" in await loser.page.locator("#door-detail").inner_text()
    assert await loser.page.locator("#door-answer").get_attribute("data-result") == "CONFLICT"
    await loser.shot("door-sync-conflict")
    staff = await make_user(runtime, role="DOOR")
    async with httpx.AsyncClient(base_url=live_server) as c:
        entries = (await c.get(f"/api/shows/{sid}/entries", headers=staff["headers"])).json()
    assert entries["conflicts"] == 1 and entries["admitted"] == 2
    assert entries["recent_conflicts"][0]["gate"] == loser_gate
    # the console shows it
    async with runtime.sessions() as s, s.begin():
        await ensure_account(
            s,
            runtime.settings,
            email="promoter@example.test",
            password=PASSWORD,
            name="Promoter",
            role="ADMIN",
        )
    console = await fans()
    await console.login("promoter@example.test", then=f"/admin/shows/{sid}/entries")
    assert await console.page.locator("#entries-conflicts").inner_text() == "1"
    assert await console.page.locator("#entries-inside").inner_text() == "2"
    assert loser_gate in await console.page.locator("#entries-conflict-list").inner_text()
    await console.shot("console-entries")
    assert await console.axe() == []
    await console.goto("/admin/mail")  # the order confirmation is queued (no SMTP in this test)
    assert "ORDER_CONFIRMED" in await console.page.locator("#mail-list").inner_text()
    assert await console.axe() == []
    await assert_invariants(runtime)

"""A Europe/Berlin venue across the March change (2027-03-28: 02:00 CET becomes 03:00 CEST at
01:00 UTC): a ticket for a show an hour before the change and one an hour after read the right wall
clock with the right zone name on the pages, in the order mails, in the .ics and in the ticket API;
the API keeps UTC with Z. The console's venue form takes an IANA zone and refuses an unknown one
with its stable error type, writing nothing (the skipped hour on the show form:
tests/integration/test_admin_forms.py)."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import icalendar
from sqlalchemy import text

from boxoffice.mail.flows import send_due
from boxoffice.web.session import ACCESS_COOKIE
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.helpers.smtp import parts, smtp
from tests.integration.test_admin_forms import console, csrf, says  # noqa: F401 - the fixture
from tests.integration.test_booking_support import gated

HTML = {"Accept": "text/html,application/xhtml+xml"}
BERLIN = "Europe/Berlin"
# (UTC start, what people read, the offset the .ics and the API's local time carry)
BEFORE = (datetime(2027, 3, 28, 0, 30, tzinfo=UTC), "Sun 28 Mar 2027, 01:30 CET", timedelta(hours=1))
AFTER = (datetime(2027, 3, 28, 1, 30, tzinfo=UTC), "Sun 28 Mar 2027, 03:30 CEST", timedelta(hours=2))


async def _berlin_show(runtime: Any, starts: datetime) -> dict[str, Any]:
    show = await make_show(
        runtime, seats=2, price=4_500, currency="EUR", starts_in=starts - runtime.clock.now()
    )
    async with runtime.sessions() as s, s.begin():
        await s.execute(
            text("UPDATE venues SET time_zone = :z WHERE id = (SELECT venue_id FROM concerts WHERE id = :c)"),
            {"z": BERLIN, "c": show["concert_id"]},
        )
        # exactly on the minute (make_show's times are relative to a clock that moves on)
        await s.execute(
            text("UPDATE shows SET starts_at = :t WHERE id = :id"), {"t": starts, "id": show["show_id"]}
        )
    return show


async def _buy(client: httpx.AsyncClient, runtime: Any, fan: dict[str, Any], show: dict[str, Any]) -> int:
    held = await client.post(
        "/api/reservations",
        json={"show_id": show["show_id"], "seat_ids": show["seat_ids"][:1]},
        headers=gated(runtime, fan, show["show_id"]),
    )
    assert held.status_code == 201, held.text
    rid = int(held.json()["reservation_id"])
    paid = await client.post(
        "/api/payments",
        json={"reservation_id": rid, "method": "BALANCE"},
        headers=gated(runtime, fan, show["show_id"], f"pay-{rid}"),
    )
    assert paid.status_code == 201, paid.text
    return rid


async def test_tickets_pages_mails_and_ics_name_cet_before_and_cest_after_the_change(  # type: ignore[no-untyped-def]
    app,
    client,
    runtime,
    inbox,
) -> None:
    handler, port = inbox
    fan = await make_user(runtime, balance=100_000, currency="EUR")
    orders = {}
    for starts, read, offset in (BEFORE, AFTER):
        show = await _berlin_show(runtime, starts)
        orders[await _buy(client, runtime, fan, show)] = (starts, read, offset)
    # the ticket API: UTC with Z, and the venue's wall clock with its offset
    tickets = (await client.get("/api/tickets", headers=fan["headers"])).json()["items"]
    assert len(tickets) == 2
    for t in tickets:
        starts, _, offset = orders[t["reservation_id"]]
        assert t["starts_at"] == starts.strftime("%Y-%m-%dT%H:%M:%SZ")
        local = datetime.fromisoformat(t["starts_at_local"])
        assert local.utcoffset() == offset and local == starts
        assert t["time_zone"] == BERLIN
    # the pages: my tickets and each ticket
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as page:
        page.cookies.set(ACCESS_COOKIE, fan["token"])
        listing = html.unescape((await page.get("/tickets")).text)
        singles = {
            t["reservation_id"]: html.unescape((await page.get(f"/tickets/{t['ticket_id']}")).text)
            for t in tickets
        }
    for rid, (_, read, _) in orders.items():
        assert read in listing and read in singles[rid]
    assert "UTC" not in listing.split("<main", 1)[-1]
    # the order mails and their .ics
    async with smtp(runtime, port):
        assert await send_due(runtime) == 2
    mails = {m["Subject"]: m for _, m in handler.messages}
    assert len(mails) == 2
    for _rid, (starts, read, offset) in orders.items():
        mail = next(m for subject, m in mails.items() if read in subject)
        assert read in parts(mail, "text/plain")[0].get_payload(decode=True).decode()
        raw_ics = parts(mail, "text/calendar")[0].get_payload(decode=True)
        event = icalendar.Calendar.from_ical(raw_ics).walk("VEVENT")[0]
        dtstart = event.decoded("dtstart")
        assert str(dtstart.tzinfo) == BERLIN and dtstart.utcoffset() == offset and dtstart == starts
        wall = (starts + offset).strftime("%Y%m%dT%H%M%S")
        assert f"DTSTART;TZID={BERLIN}:{wall}" in raw_ics.decode()
        # the VTIMEZONE says both: winter (+0100, CET) and summer (+0200, CEST)
        zone = icalendar.Calendar.from_ical(raw_ics).walk("VTIMEZONE")[0]
        names = {str(c["TZNAME"]) for c in zone.subcomponents}
        assert zone["TZID"] == BERLIN and {"CET", "CEST"} <= names


async def test_the_console_venue_form_takes_an_iana_zone_and_refuses_an_unknown_one(  # type: ignore[no-untyped-def]
    console,  # noqa: F811 - the fixture
    client,
    runtime,
) -> None:
    page = await console.get("/admin/venues")
    assert 'name="time_zone"' in page.text and 'value="Asia/Seoul"' in page.text
    section = {"sections-0-name": "Floor", "sections-0-rows": "2", "sections-0-seats_per_row": "3"}
    token = await csrf(console, "/admin/venues")
    for bad in ("Mars/Olympus", "", "../etc/passwd"):
        refused = await console.post(
            "/admin/venues", data={"csrf_token": token, "name": "Halle", "time_zone": bad, **section}
        )
        assert refused.status_code == 422 and 'id="e-time_zone"' in refused.text, refused.text[:300]
        assert f'value="{html.escape(bad)}"' in refused.text  # what was typed stays in the field
    async with runtime.sessions() as s:
        assert (await s.execute(text("SELECT count(*) FROM venues"))).scalar_one() == 0
    made = await console.post(
        "/admin/venues", data={"csrf_token": token, "name": "Halle", "time_zone": BERLIN, **section}
    )
    assert made.status_code == 303, made.text[:300]
    async with runtime.sessions() as s:
        assert (await s.execute(text("SELECT name, time_zone FROM venues"))).one() == ("Halle", BERLIN)
    listed = await console.get("/admin/venues")
    assert says(listed, "Europe/Berlin (C")  # CET or CEST, named
    # the API: the same refusal, a stable type on the field
    admin = await make_user(runtime, role="ADMIN")
    api = await client.post(
        "/api/admin/venues",
        json={
            "name": "Nowhere",
            "time_zone": "Mars/Olympus",
            "sections": [{"name": "A", "rows": 1, "seats_per_row": 1}],
        },
        headers=admin["headers"],
    )
    assert api.status_code == 422 and api.json()["code"] == "VALIDATION_ERROR", api.text
    assert [(e["loc"], e["type"]) for e in api.json()["errors"]] == [
        (["body", "time_zone"], "unknown_time_zone")
    ]

"""The console's forms refuse control characters (U+0000 and the like) in their text fields with a
human sentence on the page (422), writing nothing; the same search and refund over the admin API
are 422 problems. A venue with two sections of one name says which section it collides with."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from boxoffice.auth.service import ensure_account
from boxoffice.runtime import Runtime
from boxoffice.web.admin import CONTROL_CHARACTERS
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import gated

CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
HTML = {"Accept": "text/html,application/xhtml+xml"}
EMAIL, PASSWORD = "boss@example.test", "console-password-1"
CONTROL = ["\x00", "\x07", "\x1b[31m", "\x7f", "\x85"]
FIELD_MESSAGE = "must not contain control characters"
FORM_SENTENCE = "Please correct the fields marked below."


@pytest.fixture
async def console(app: Any, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A promoter's browser session, signed in through the login form."""
    async with runtime.sessions() as session, session.begin():
        await ensure_account(
            session, runtime.settings, email=EMAIL, password=PASSWORD, name="B", role="ADMIN"
        )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as c:
        login = {
            "csrf_token": await csrf(c, "/login"),
            "email": EMAIL,
            "password": PASSWORD,
            "next": "/admin",
        }
        assert (await c.post("/login", data=login)).status_code == 303
        yield c


async def csrf(c: httpx.AsyncClient, path: str) -> str:
    page = await c.get(path)
    assert page.status_code == 200, page.text
    found = CSRF_RE.search(page.text)
    assert found, f"{path} has no CSRF token"
    return found.group(1)


def says(page: httpx.Response, *sentences: str) -> bool:
    body = html.unescape(page.text)
    return all(s in body for s in sentences)


async def concert_on_a_hall(
    client: httpx.AsyncClient, runtime: Runtime, concert: str, artist: str, **venue: Any
) -> int:
    """A concert (made through the admin API) at a new venue with one two-seat section, Floor."""
    h = (await make_user(runtime, role="ADMIN"))["headers"]
    section = {"name": "Floor", "rows": 1, "seats_per_row": 2}
    made = await client.post("/api/admin/venues", json={"sections": [section], **venue}, headers=h)
    created = await client.post(
        "/api/admin/concerts",
        json={"name": concert, "artist": artist, "venue_id": made.json()["id"]},
        headers=h,
    )
    cid: int = created.json()["id"]
    return cid


async def state(runtime: Runtime) -> list[Any]:
    """What the console could write: venues, concerts, reservations, the admin's audited actions."""
    queries = (
        "SELECT id, name FROM venues ORDER BY id",
        "SELECT id, name, artist, description FROM concerts ORDER BY id",
        "SELECT id, status FROM reservations ORDER BY id",
        "SELECT count(*) FROM admin_actions",
    )
    async with runtime.engine.connect() as conn:
        return [(await conn.execute(text(sql))).all() for sql in queries]


async def test_console_forms_refuse_control_characters_and_change_nothing(
    console: httpx.AsyncClient, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    show = await make_show(runtime, seats=4)
    sid, cid = show["show_id"], show["concert_id"]
    fan = await make_user(runtime, email="fan@example.test")
    held = await client.post(
        "/api/reservations",
        json={"show_id": sid, "seat_ids": show["seat_ids"][:1]},
        headers=gated(runtime, fan, sid),
    )
    assert held.status_code == 201
    rid = held.json()["reservation_id"]
    admin = await make_user(runtime, role="ADMIN")
    before = await state(runtime)
    for bad in CONTROL:
        token = await csrf(console, "/admin/venues")
        section = {"sections-0-name": "Floor", "sections-0-rows": "2", "sections-0-seats_per_row": "3"}
        for form in (
            {"name": f"Hall{bad}", **section},
            {"name": "Hall", **section, "sections-0-name": f"Fl{bad}oor"},
        ):
            page = await console.post("/admin/venues", data={"csrf_token": token, **form})
            assert page.status_code == 422 and says(page, FORM_SENTENCE, FIELD_MESSAGE), (bad, form)
        token = await csrf(console, "/admin/concerts")
        page = await console.post(
            "/admin/concerts", data={"csrf_token": token, "name": f"Gig{bad}", "artist": "A", "venue_id": "1"}
        )
        assert page.status_code == 422 and says(page, FORM_SENTENCE, FIELD_MESSAGE)
        token = await csrf(console, f"/admin/concerts/{cid}")
        page = await console.post(
            f"/admin/concerts/{cid}", data={"csrf_token": token, "name": "Gig", "description": f"Line{bad}"}
        )
        assert page.status_code == 422 and says(page, FORM_SENTENCE, FIELD_MESSAGE)
        page = await console.get("/admin/fans", params={"email": f"fan{bad}@example.test"})
        assert page.status_code == 422 and says(page, CONTROL_CHARACTERS)
        token = await csrf(console, "/admin/fans?email=fan@example.test")
        page = await console.post(
            f"/admin/reservations/{rid}/cancel",
            data={"csrf_token": token, "email": f"fan{bad}@example.test", "reason": f"double {bad} order"},
        )
        assert page.status_code == 422 and says(page, CONTROL_CHARACTERS)
        # The admin API: the same rule, as problem+json.
        found = await client.get(
            "/api/admin/fans", params={"email": f"fan{bad}@example.test"}, headers=admin["headers"]
        )
        assert found.status_code == 422 and found.json()["code"] == "VALIDATION_ERROR"
        refund = await client.post(
            f"/api/admin/reservations/{rid}/cancel",
            json={"reason": f"double {bad} order"},
            headers=admin["headers"],
        )
        assert refund.status_code == 422 and refund.json()["code"] == "VALIDATION_ERROR"
    assert await state(runtime) == before  # nothing was written
    # The short reason keeps its own sentence.
    token = await csrf(console, "/admin/fans?email=fan@example.test")
    page = await console.post(
        f"/admin/reservations/{rid}/cancel",
        data={"csrf_token": token, "email": "fan@example.test", "reason": "x"},
    )
    assert page.status_code == 422 and says(page, "Give a reason of at least 3 characters.")


async def test_a_duplicate_section_name_names_the_section(
    console: httpx.AsyncClient, runtime: Runtime
) -> None:
    before = await state(runtime)
    form = {
        "csrf_token": await csrf(console, "/admin/venues"),
        "name": "Riverside Hall",
        **{"sections-0-name": "Floor", "sections-0-rows": "2", "sections-0-seats_per_row": "3"},
        **{"sections-1-name": "floor ", "sections-1-rows": "1", "sections-1-seats_per_row": "4"},
    }
    page = await console.post("/admin/venues", data=form)
    assert page.status_code == 422
    assert says(page, 'duplicate section name: the same name as section "Floor"'), page.text
    assert "sections[0]" not in page.text
    assert await state(runtime) == before


async def test_the_show_form_reads_times_in_the_venue_zone_across_the_march_change(
    console: httpx.AsyncClient, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    cid = await concert_on_a_hall(
        client, runtime, "Clocks", "DST", name="Berlin Hall", time_zone="Europe/Berlin"
    )
    page = await console.get(f"/admin/concerts/{cid}")
    assert says(page, "Dates in the venue's time zone: Europe/Berlin (C")  # CET or CEST, named
    form = {"sale_opens_at": "2026-12-01T10:00:00", "currency": "EUR", "prices-Floor": "45.50"}
    token = await csrf(console, f"/admin/concerts/{cid}")
    skipped = await console.post(
        f"/admin/concerts/{cid}/shows", data={"csrf_token": token, "starts_at": "2027-03-28T02:30:00", **form}
    )
    assert skipped.status_code == 422 and 'id="e-starts_at"' in skipped.text
    assert says(skipped, "2027-03-28 02:30 does not exist in Europe/Berlin (the clocks skip it)")
    async with runtime.sessions() as s:
        assert (await s.execute(text("SELECT count(*) FROM shows"))).scalar_one() == 0
    made = await console.post(
        f"/admin/concerts/{cid}/shows", data={"csrf_token": token, "starts_at": "2027-03-28T03:30:00", **form}
    )
    assert made.status_code == 303, made.text
    async with runtime.sessions() as s:
        row = (await s.execute(text("SELECT starts_at, sale_opens_at, currency FROM shows"))).one()
        prices = (await s.execute(text("SELECT DISTINCT price FROM seats"))).scalars().all()
    assert row[0] == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert row[1] == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # 10:00 CET
    assert row[2] == "EUR" and prices == [4550]


async def test_the_show_form_sets_and_clears_the_verified_email_rule(
    console: httpx.AsyncClient, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    cid = await concert_on_a_hall(client, runtime, "Rules", "R", name="Rule Hall")
    form = {
        "starts_at": "2027-05-01T19:00:00",
        "sale_opens_at": "2027-04-01T10:00:00",
        "currency": "KRW",
        "prices-Floor": "50000",
        "hold_requires_verified_email": "on",
    }
    made = await console.post(
        f"/admin/concerts/{cid}/shows",
        data={"csrf_token": await csrf(console, f"/admin/concerts/{cid}"), **form},
    )
    assert made.status_code == 303, made.text
    async with runtime.sessions() as s:
        show_id, rule = (await s.execute(text("SELECT id, hold_requires_verified_email FROM shows"))).one()
    assert rule is True
    page = await console.get(f"/admin/shows/{show_id}")
    assert re.search(r'name="hold_requires_verified_email"\s+checked', page.text)

    # Saved again as a browser would, the box unticked: every other field as the page shows it.
    shown = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
    saved = await console.post(
        f"/admin/shows/{show_id}", data={k: html.unescape(v) for k, v in shown.items()}
    )
    assert saved.status_code == 303, saved.text
    async with runtime.sessions() as s:
        assert (await s.execute(text("SELECT hold_requires_verified_email FROM shows"))).scalar_one() is False


async def test_the_show_form_and_the_queue_form_set_and_clear_adaptive_admission(
    console: httpx.AsyncClient, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    cid = await concert_on_a_hall(client, runtime, "Steer", "S", name="Steer Hall")
    new_show = await console.get(f"/admin/concerts/{cid}")
    assert says(new_show, "Steer the admission rate by buyers' latency (adaptive)")
    assert re.search(r'name="queue-adaptive"\s+checked', new_show.text)  # on by default
    form = {
        "starts_at": "2027-05-01T19:00:00",
        "sale_opens_at": "2027-04-01T10:00:00",
        "currency": "KRW",
        "prices-Floor": "50000",
        "queue-adaptive": "on",
    }
    made = await console.post(
        f"/admin/concerts/{cid}/shows",
        data={"csrf_token": await csrf(console, f"/admin/concerts/{cid}"), **form},
    )
    assert made.status_code == 303, made.text

    async def adaptive() -> bool:
        async with runtime.sessions() as s:
            return bool((await s.execute(text("SELECT queue_adaptive FROM shows"))).scalar_one())

    async with runtime.sessions() as s:
        show_id = (await s.execute(text("SELECT id FROM shows"))).scalar_one()
    assert await adaptive() is True
    page = await console.get(f"/admin/shows/{show_id}")
    assert re.search(r'name="queue-adaptive"\s+checked', page.text)

    # Saved again as a browser would, the box unticked: a static rate.
    shown = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
    shown.pop("queue-adaptive", None)
    saved = await console.post(
        f"/admin/shows/{show_id}", data={k: html.unescape(v) for k, v in shown.items()}
    )
    assert saved.status_code == 303, saved.text
    assert await adaptive() is False
    page = await console.get(f"/admin/shows/{show_id}")
    assert re.search(r'name="queue-adaptive"\s*>', page.text)  # unticked
    # The live tiles say so: the dashboard's and the queue page's "Rate chosen".
    for where in ("dashboard", "queue"):
        tiles = await console.get(f"/admin/shows/{show_id}/{where}")
        assert tiles.status_code == 200
        assert re.search(r"Rate chosen</span><span[^>]*>static<", tiles.text), where

    # Ticked again on the show form.
    shown["queue-adaptive"] = "on"
    saved = await console.post(
        f"/admin/shows/{show_id}", data={k: html.unescape(v) for k, v in shown.items()}
    )
    assert saved.status_code == 303, saved.text
    assert await adaptive() is True
    tiles = await console.get(f"/admin/shows/{show_id}/queue")
    assert not re.search(r"Rate chosen</span><span[^>]*>static<", tiles.text)

    # The queue page's live settings form: a hidden "off" before the checkbox's "on".
    token = await csrf(console, f"/admin/shows/{show_id}/queue")
    base = {"csrf_token": token, "admit_per_second": "11", "max_active": "", "pow_difficulty": "0"}
    off = await console.post(f"/admin/shows/{show_id}/queue", data={**base, "adaptive": "off"})
    assert off.status_code == 303, off.text
    assert await adaptive() is False
    queue_page = await console.get(f"/admin/shows/{show_id}/queue")
    assert re.search(r'name="adaptive" value="on"\s*>', queue_page.text)  # unticked
    on = await console.post(f"/admin/shows/{show_id}/queue", data={**base, "adaptive": ["off", "on"]})
    assert on.status_code == 303, on.text
    assert await adaptive() is True
    # A post without the field (an older page) leaves it as it is.
    assert (await console.post(f"/admin/shows/{show_id}/queue", data=base)).status_code == 303
    assert await adaptive() is True

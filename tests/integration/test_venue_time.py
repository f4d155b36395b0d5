"""Times in the venue's zone (issue 22, step 2): a venue names its IANA zone, the API keeps ISO 8601
UTC with Z, and the pages show the venue's wall clock with the zone named, right on both sides of
Berlin's March change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from boxoffice.kit.clock import iso
from tests.factories import make_user
from tests.integration.test_catalog import PRICES, SECTIONS

HTML = {"Accept": "text/html,application/xhtml+xml"}


async def test_a_berlin_show_reads_cet_before_and_cest_after_the_march_change(app, client, runtime) -> None:  # type: ignore[no-untyped-def]
    h = (await make_user(runtime, role="ADMIN"))["headers"]
    bad = await client.post(
        "/api/admin/venues",
        json={"name": "Nowhere", "time_zone": "Mars/Olympus", "sections": SECTIONS},
        headers=h,
    )
    assert bad.status_code == 422 and "time_zone" in bad.text
    venue = await client.post(
        "/api/admin/venues",
        json={"name": "Columbiahalle", "time_zone": "Europe/Berlin", "sections": SECTIONS},
        headers=h,
    )
    assert venue.status_code == 201 and venue.json()["time_zone"] == "Europe/Berlin", venue.text
    concert = await client.post(
        "/api/admin/concerts",
        json={"name": "Clock Change", "artist": "DST", "venue_id": venue.json()["id"]},
        headers=h,
    )
    opens = iso(datetime.now(UTC) - timedelta(hours=1))
    shows = []
    for starts in ("2027-03-28T00:30:00Z", "2027-03-28T01:30:00Z"):
        created = await client.post(
            f"/api/admin/concerts/{concert.json()['id']}/shows",
            json={"starts_at": starts, "sale_opens_at": opens, "prices": dict(PRICES), "currency": "EUR"},
            headers=h,
        )
        assert created.status_code == 201, created.text
        shows.append(created.json())
    # the API: ISO 8601 UTC with Z, and the zone to read it in
    assert [s["starts_at"] for s in shows] == ["2027-03-28T00:30:00Z", "2027-03-28T01:30:00Z"]
    assert {s["time_zone"] for s in shows} == {"Europe/Berlin"}
    # the page: the venue's wall clock, the zone named
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as page:
        body = (await page.get(f"/concerts/{concert.json()['id']}")).text
    assert "Sun 28 Mar 2027, 01:30 CET" in body and "Sun 28 Mar 2027, 03:30 CEST" in body
    assert "UTC" not in body.split("<main", 1)[-1]

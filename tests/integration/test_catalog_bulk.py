"""A 50,000-seat show is created in one transaction with set-based inserts (the issue's target is
under 5 s on this machine; the time is printed, not asserted: performance lives in the bench)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text

from boxoffice.runtime import Runtime
from tests.factories import make_user


async def test_50k_seat_show(client: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = await make_user(runtime, role="ADMIN")
    h = admin["headers"]
    sections = [{"name": f"S{i}", "rows": 100, "seats_per_row": 100} for i in range(5)]  # 50,000
    venue = await client.post("/api/admin/venues", json={"name": "Stadium", "sections": sections}, headers=h)
    assert venue.status_code == 201 and venue.json()["seat_count"] == 50_000
    concert = await client.post(
        "/api/admin/concerts",
        json={"name": "Big", "artist": "Loud", "venue_id": venue.json()["id"]},
        headers=h,
    )
    now = datetime.now(UTC)
    body = {
        "starts_at": (now + timedelta(days=9)).isoformat(),
        "sale_opens_at": now.isoformat(),
        "prices": {f"S{i}": 1000 * (i + 1) for i in range(5)},
    }
    started = time.perf_counter()
    resp = await client.post(f"/api/admin/concerts/{concert.json()['id']}/shows", json=body, headers=h)
    elapsed = time.perf_counter() - started
    print(f"50,000-seat show created in {elapsed:.2f} s")
    assert resp.status_code == 201, resp.text
    show = resp.json()
    assert show["total"] == 50_000 and show["remaining"] == 50_000
    async with runtime.sessions() as s:
        row = (
            await s.execute(
                text(
                    "SELECT count(*) AS n, count(DISTINCT (section, row, number)) AS uniq, "
                    "count(*) FILTER (WHERE price <> 1000 * (substr(section, 2)::int + 1)) AS wrong_price, "
                    "max(id) - min(id) + 1 AS span FROM seats WHERE show_id = :s"
                ),
                {"s": show["id"]},
            )
        ).one()
    assert (row.n, row.uniq, row.wrong_price, row.span) == (50_000, 50_000, 0, 50_000)

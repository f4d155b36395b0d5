"""Catalog API: admin venues/concerts/shows, validation (422 with locations), authorization,
404s, pagination, seat generation, inventory recount, the seat map read path and the demo."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from boxoffice.catalog import cache, flows, seatmap, service
from boxoffice.runtime import Runtime
from boxoffice.waiting_room.tokens import issue_queue_token
from tests.factories import make_user

SECTIONS = [
    {"name": "VIP", "rows": 2, "seats_per_row": 5},
    {"name": "Floor", "rows": 3, "seats_per_row": 4},
    {"name": "Balcony", "rows": 1, "seats_per_row": 3},
]
PRICES = {"VIP": 150_000, "Floor": 90_000, "Balcony": 40_000}


def iso(dt: datetime) -> str:
    return dt.isoformat()


def show_body(now: datetime, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "starts_at": iso(now + timedelta(days=30)),
        "sale_opens_at": iso(now - timedelta(hours=1)),
        "prices": dict(PRICES),
    }
    body.update(overrides)
    return body


@pytest.fixture
async def admin(runtime: Runtime) -> dict[str, Any]:
    return await make_user(runtime, role="ADMIN")


async def make_catalog(
    client: httpx.AsyncClient,
    admin: dict[str, Any],
    *,
    sections: list[dict[str, Any]] | None = None,
    **show: Any,
) -> dict[str, Any]:
    h = admin["headers"]
    venue = await client.post(
        "/api/admin/venues", json={"name": "Arena", "sections": sections or SECTIONS}, headers=h
    )
    assert venue.status_code == 201, venue.text
    concert = await client.post(
        "/api/admin/concerts",
        json={"name": "Spring Tour", "artist": "The Band", "venue_id": venue.json()["id"]},
        headers=h,
    )
    assert concert.status_code == 201, concert.text
    now = datetime.now(UTC)
    created = await client.post(
        f"/api/admin/concerts/{concert.json()['id']}/shows", json=show_body(now, **show), headers=h
    )
    assert created.status_code == 201, created.text
    return {"venue": venue.json(), "concert": concert.json(), "show": created.json()}


def queue_headers(runtime: Runtime, user: dict[str, Any], show_id: int) -> dict[str, str]:
    token, _ = issue_queue_token(
        runtime.settings,
        user_id=user["id"],
        show_id=show_id,
        ticket=1,
        ttl_seconds=600,
        now=runtime.clock.now(),
    )
    return {**user["headers"], "X-Queue-Token": token}


def assert_problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["code"] == code, body
    return body


def locs(body: dict[str, Any]) -> list[list[str]]:
    return [e["loc"] for e in body["errors"]]


# ---- venues -------------------------------------------------------------------------------------


async def test_create_venue(client: httpx.AsyncClient, admin: dict[str, Any]) -> None:
    resp = await client.post(
        "/api/admin/venues", json={"name": "Arena", "sections": SECTIONS}, headers=admin["headers"]
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["seat_count"] == 10 + 12 + 3
    assert [s["name"] for s in body["sections"]] == ["VIP", "Floor", "Balcony"]
    assert [s["seat_count"] for s in body["sections"]] == [10, 12, 3]
    got = await client.get(f"/api/admin/venues/{body['id']}", headers=admin["headers"])
    assert got.json() == body


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"name": "", "sections": SECTIONS}, ["body", "name"]),
        ({"name": "x" * 201, "sections": SECTIONS}, ["body", "name"]),
        ({"sections": SECTIONS}, ["body", "name"]),
        ({"name": "A", "sections": []}, ["body", "sections"]),
        (
            {"name": "A", "sections": [{"name": "S", "rows": 1, "seats_per_row": 1}] * 101},
            ["body", "sections"],
        ),
        (
            {"name": "A", "sections": [{"name": "S", "rows": 0, "seats_per_row": 1}]},
            ["body", "sections", "0", "rows"],
        ),
        (
            {"name": "A", "sections": [{"name": "S", "rows": 201, "seats_per_row": 1}]},
            ["body", "sections", "0", "rows"],
        ),
        (
            {"name": "A", "sections": [{"name": "S", "rows": 1, "seats_per_row": 201}]},
            ["body", "sections", "0", "seats_per_row"],
        ),
        (
            {"name": "A", "sections": [{"name": "", "rows": 1, "seats_per_row": 1}]},
            ["body", "sections", "0", "name"],
        ),
        (
            {"name": "A", "sections": [{"name": "S", "rows": 1, "seats_per_row": 1, "extra": 1}]},
            ["body", "sections", "0", "extra"],
        ),
        ({"name": "A", "sections": SECTIONS, "capacity": 3}, ["body", "capacity"]),
    ],
)
async def test_venue_validation(
    client: httpx.AsyncClient, admin: dict[str, Any], payload: dict[str, Any], loc: list[str]
) -> None:
    body = assert_problem(
        await client.post("/api/admin/venues", json=payload, headers=admin["headers"]),
        422,
        "VALIDATION_ERROR",
    )
    assert loc in locs(body)


async def test_venue_layout_rules(client: httpx.AsyncClient, admin: dict[str, Any], runtime: Runtime) -> None:
    dup = [{"name": "A", "rows": 1, "seats_per_row": 1}, {"name": "a ", "rows": 1, "seats_per_row": 1}]
    body = assert_problem(
        await client.post("/api/admin/venues", json={"name": "V", "sections": dup}, headers=admin["headers"]),
        422,
        "INVALID_LAYOUT",
    )
    assert ["body", "sections", "1", "name"] in locs(body)
    # 3 x 200 x 200 = 120,000 > 100,000
    big = [{"name": f"S{i}", "rows": 200, "seats_per_row": 200} for i in range(3)]
    body = assert_problem(
        await client.post("/api/admin/venues", json={"name": "V", "sections": big}, headers=admin["headers"]),
        422,
        "INVALID_LAYOUT",
    )
    assert ["body", "sections"] in locs(body)
    async with runtime.sessions() as s:
        assert (await s.execute(text("SELECT count(*) FROM venues"))).scalar() == 0


# ---- authorization and 404s -----------------------------------------------------------------------


async def test_admin_routes_refuse_users_and_anonymous(client: httpx.AsyncClient, runtime: Runtime) -> None:
    user = await make_user(runtime)
    calls = [
        ("POST", "/api/admin/venues", {"name": "A", "sections": SECTIONS}),
        ("GET", "/api/admin/venues/1", None),
        ("POST", "/api/admin/concerts", {"name": "C", "artist": "A", "venue_id": 1}),
        ("PATCH", "/api/admin/concerts/1", {"name": "C"}),
        ("DELETE", "/api/admin/concerts/1", None),
        ("POST", "/api/admin/concerts/1/shows", show_body(datetime.now(UTC))),
        ("PATCH", "/api/admin/shows/1", {"hold_seconds": 60}),
        ("DELETE", "/api/admin/shows/1", None),
    ]
    for method, url, payload in calls:
        resp = await client.request(method, url, json=payload, headers=user["headers"])
        assert_problem(resp, 403, "FORBIDDEN")
        resp = await client.request(method, url, json=payload)
        assert_problem(resp, 401, "AUTH_REQUIRED")


async def test_unknown_ids_are_404(
    client: httpx.AsyncClient, admin: dict[str, Any], runtime: Runtime
) -> None:
    h = admin["headers"]
    assert_problem(await client.get("/api/concerts/999"), 404, "CONCERT_NOT_FOUND")
    assert_problem(await client.get("/api/concerts/999/shows"), 404, "CONCERT_NOT_FOUND")
    assert_problem(await client.get("/api/shows/999"), 404, "SHOW_NOT_FOUND")
    assert_problem(await client.get("/api/admin/venues/999", headers=h), 404, "VENUE_NOT_FOUND")
    assert_problem(
        await client.patch("/api/admin/concerts/999", json={"name": "X"}, headers=h), 404, "CONCERT_NOT_FOUND"
    )
    assert_problem(await client.delete("/api/admin/concerts/999", headers=h), 404, "CONCERT_NOT_FOUND")
    assert_problem(
        await client.post("/api/admin/concerts/999/shows", json=show_body(datetime.now(UTC)), headers=h),
        404,
        "CONCERT_NOT_FOUND",
    )
    assert_problem(
        await client.patch("/api/admin/shows/999", json={"hold_seconds": 60}, headers=h),
        404,
        "SHOW_NOT_FOUND",
    )
    assert_problem(await client.delete("/api/admin/shows/999", headers=h), 404, "SHOW_NOT_FOUND")
    user = await make_user(runtime)
    assert_problem(
        await client.get("/api/shows/999/seats", headers=queue_headers(runtime, user, 999)),
        404,
        "SHOW_NOT_FOUND",
    )
    # Not an id at all / out of range: 422 with the path location, never a 500.
    body = assert_problem(await client.get("/api/concerts/abc"), 422, "VALIDATION_ERROR")
    assert ["path", "concert_id"] in locs(body)
    body = assert_problem(await client.get(f"/api/concerts/{2**63}"), 422, "VALIDATION_ERROR")
    assert ["path", "concert_id"] in locs(body)
    body = assert_problem(
        await client.post(
            "/api/admin/concerts", json={"name": "C", "artist": "A", "venue_id": 999}, headers=h
        ),
        422,
        "VENUE_NOT_FOUND",
    )
    assert ["body", "venue_id"] in locs(body)


# ---- concerts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"artist": "A", "venue_id": 1}, ["body", "name"]),
        ({"name": "C", "artist": "", "venue_id": 1}, ["body", "artist"]),
        ({"name": "C", "artist": "A", "venue_id": 0}, ["body", "venue_id"]),
        ({"name": "C", "artist": "A", "venue_id": "x"}, ["body", "venue_id"]),
        ({"name": "C", "artist": "A", "venue_id": 1, "description": "d" * 5001}, ["body", "description"]),
        (
            {"name": "C", "artist": "A", "venue_id": 1, "poster_url": "javascript:alert(1)"},
            ["body", "poster_url"],
        ),
        ({"name": "C", "artist": "A", "venue_id": 1, "price": 1}, ["body", "price"]),
    ],
)
async def test_concert_validation(
    client: httpx.AsyncClient, admin: dict[str, Any], payload: dict[str, Any], loc: list[str]
) -> None:
    body = assert_problem(
        await client.post("/api/admin/concerts", json=payload, headers=admin["headers"]),
        422,
        "VALIDATION_ERROR",
    )
    assert loc in locs(body)


async def test_concert_detail_patch_and_delete(client: httpx.AsyncClient, admin: dict[str, Any]) -> None:
    made = await make_catalog(client, admin)
    cid = made["concert"]["id"]
    detail = (await client.get(f"/api/concerts/{cid}")).json()
    assert detail["venue"]["seat_count"] == 25
    assert [s["name"] for s in detail["venue"]["sections"]] == ["VIP", "Floor", "Balcony"]
    assert detail["show_count"] == 1
    resp = await client.patch(
        f"/api/admin/concerts/{cid}",
        json={"name": "Autumn Tour", "poster_url": "https://img.example/p.png"},
        headers=admin["headers"],
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == "Autumn Tour"
    assert resp.json()["artist"] == "The Band"
    assert resp.json()["poster_url"] == "https://img.example/p.png"
    body = assert_problem(
        await client.patch(f"/api/admin/concerts/{cid}", json={"name": None}, headers=admin["headers"]),
        422,
        "VALIDATION_ERROR",
    )
    assert body["errors"]
    body = assert_problem(
        await client.patch(f"/api/admin/concerts/{cid}", json={"venue_id": 3}, headers=admin["headers"]),
        422,
        "VALIDATION_ERROR",
    )
    assert ["body", "venue_id"] in locs(body)
    assert (await client.delete(f"/api/admin/concerts/{cid}", headers=admin["headers"])).status_code == 204
    assert_problem(await client.get(f"/api/concerts/{cid}"), 404, "CONCERT_NOT_FOUND")
    assert_problem(await client.get(f"/api/shows/{made['show']['id']}"), 404, "SHOW_NOT_FOUND")


async def test_list_concerts_pagination_and_filters(client: httpx.AsyncClient, admin: dict[str, Any]) -> None:
    h = admin["headers"]
    venue = (
        await client.post("/api/admin/venues", json={"name": "Hall", "sections": SECTIONS[:1]}, headers=h)
    ).json()
    now = datetime.now(UTC)
    ids = []
    for i in range(5):
        artist = "Aurora" if i % 2 == 0 else "Boreal 100%"
        c = await client.post(
            "/api/admin/concerts",
            json={"name": f"Night {i}", "artist": artist, "venue_id": venue["id"]},
            headers=h,
        )
        ids.append(c.json()["id"])
        starts = now + timedelta(days=10 * (i + 1))
        await client.post(
            f"/api/admin/concerts/{ids[-1]}/shows",
            json={"starts_at": iso(starts), "sale_opens_at": iso(now), "prices": {"VIP": 1000}},
            headers=h,
        )
    page = (await client.get("/api/concerts", params={"limit": 2})).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 0
    assert [c["id"] for c in page["items"]] == ids[:2]
    last = (await client.get("/api/concerts", params={"limit": 2, "offset": 4})).json()
    assert [c["id"] for c in last["items"]] == ids[4:]
    beyond = (await client.get("/api/concerts", params={"limit": 2, "offset": 5})).json()
    assert beyond["items"] == [] and beyond["total"] == 5
    whole = (await client.get("/api/concerts", params={"limit": 100})).json()
    assert len(whole["items"]) == 5
    assert whole["items"][0]["venue_name"] == "Hall" and whole["items"][0]["show_count"] == 1
    for params, loc in [
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 101}, ["query", "limit"]),
        ({"offset": -1}, ["query", "offset"]),
        ({"limit": "x"}, ["query", "limit"]),
        ({"starts_from": "2030-01-01T00:00:00"}, ["query", "starts_from"]),  # naive: no offset
        (
            {"starts_from": "2030-02-01T00:00:00Z", "starts_to": "2030-01-01T00:00:00Z"},
            ["query", "starts_to"],
        ),
    ]:
        body = assert_problem(await client.get("/api/concerts", params=params), 422, "VALIDATION_ERROR")
        assert loc in locs(body), (params, body)
    # text filters: name or artist, case-insensitive; LIKE wildcards are literal
    assert (await client.get("/api/concerts", params={"q": "aurora"})).json()["total"] == 3
    assert (await client.get("/api/concerts", params={"q": "night 3"})).json()["total"] == 1
    assert (await client.get("/api/concerts", params={"artist": "100%"})).json()["total"] == 2
    assert (await client.get("/api/concerts", params={"artist": "%"})).json()["total"] == 2
    assert (await client.get("/api/concerts", params={"q": "_"})).json()["total"] == 0
    # date range: concerts with a show starting within [from, to)
    window = {"starts_from": iso(now + timedelta(days=15)), "starts_to": iso(now + timedelta(days=35))}
    got = (await client.get("/api/concerts", params=window)).json()
    assert [c["id"] for c in got["items"]] == ids[1:3] and got["total"] == 2
    both = (await client.get("/api/concerts", params={**window, "q": "aurora"})).json()
    assert [c["id"] for c in both["items"]] == [ids[2]]


# ---- shows -----------------------------------------------------------------------------------------


async def test_create_show_generates_seats_and_inventory(
    client: httpx.AsyncClient, admin: dict[str, Any], runtime: Runtime
) -> None:
    made = await make_catalog(
        client, admin, hold_seconds=120, queue={"admit_per_second": 50, "max_active": 200}
    )
    show = made["show"]
    assert show["total"] == 25 and show["remaining"] == 25 and show["on_sale"] is True
    assert show["prices"] == PRICES
    assert show["hold_seconds"] == 120 and show["max_seats_per_reservation"] == 4
    assert show["queue"] == {
        "admit_per_second": 50.0,
        "max_active": 200,
        "token_ttl_seconds": 600,
        "oversubscription": 1.5,
        "paused": False,
        "pow_difficulty": 100_000,  # the toll at the queue's door is on for real shows
        "adaptive": True,  # adaptive admission steers the rate unless the promoter says no
    }
    async with runtime.sessions() as s:
        rows = (
            await s.execute(
                text("SELECT section, row, number, price, status FROM seats WHERE show_id = :s ORDER BY id"),
                {"s": show["id"]},
            )
        ).all()
        inv = (
            await s.execute(
                text("SELECT total, remaining FROM inventory WHERE show_id = :s"), {"s": show["id"]}
            )
        ).one()
    assert len(rows) == 25
    assert len({(r.section, r.row, r.number) for r in rows}) == 25
    for r in rows:
        assert r.price == PRICES[r.section] and r.status == "AVAILABLE"
    assert [(r.row, r.number) for r in rows if r.section == "Floor"] == [
        (row, n) for row in (1, 2, 3) for n in (1, 2, 3, 4)
    ]
    assert tuple(inv) == (25, 25)
    listed = (await client.get(f"/api/concerts/{made['concert']['id']}/shows")).json()
    assert listed["items"] == [show]
    # The waiting room / booking read the same show through get_show.
    async with runtime.sessions() as s:
        got = await service.get_show(s, show["id"])
        assert got.hold_seconds == 120 and got.queue_max_active == 200 and got.on_sale(datetime.now(UTC))
        assert await service.get_remaining(s, show["id"]) == 25


async def test_show_defaults_and_sale_window(client: httpx.AsyncClient, admin: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    made = await make_catalog(client, admin, sale_opens_at=iso(now + timedelta(days=1)))
    show = made["show"]
    assert show["on_sale"] is False and show["hold_seconds"] == 300
    assert show["queue"]["admit_per_second"] == 11 and show["queue"]["max_active"] is None
    closed = await client.post(
        f"/api/admin/concerts/{made['concert']['id']}/shows",
        json=show_body(
            now, sale_opens_at=iso(now - timedelta(days=2)), sale_closes_at=iso(now - timedelta(days=1))
        ),
        headers=admin["headers"],
    )
    assert closed.status_code == 201 and closed.json()["on_sale"] is False


async def test_show_prices_must_cover_every_section(
    client: httpx.AsyncClient, admin: dict[str, Any], runtime: Runtime
) -> None:
    made = await make_catalog(client, admin)
    url = f"/api/admin/concerts/{made['concert']['id']}/shows"
    now = datetime.now(UTC)
    body = assert_problem(
        await client.post(
            url, json=show_body(now, prices={"VIP": 1, "Nosebleed": 2}), headers=admin["headers"]
        ),
        422,
        "INVALID_SHOW",
    )
    assert body["missing_sections"] == ["Floor", "Balcony"]
    assert body["unknown_sections"] == ["Nosebleed"]
    assert {"Floor", "Balcony"} <= {e["loc"][-1] for e in body["errors"]}
    assert ["body", "prices", "Floor"] in locs(body)
    async with runtime.sessions() as s:
        assert (await s.execute(text("SELECT count(*) FROM shows"))).scalar() == 1  # nothing created


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"starts_at": "2030-01-01T20:00:00"}, ["body", "starts_at"]),  # naive datetime
        ({"starts_at": "tomorrow"}, ["body", "starts_at"]),
        ({"prices": {"VIP": -1, "Floor": 1, "Balcony": 1}}, ["body", "prices", "VIP"]),
        ({"prices": {"VIP": 1.5, "Floor": 1, "Balcony": 1}}, ["body", "prices", "VIP"]),
        ({"hold_seconds": 4}, ["body", "hold_seconds"]),
        ({"hold_seconds": 3601}, ["body", "hold_seconds"]),
        ({"max_seats_per_reservation": 0}, ["body", "max_seats_per_reservation"]),
        ({"max_seats_per_reservation": 11}, ["body", "max_seats_per_reservation"]),
        ({"queue": {"admit_per_second": -1}}, ["body", "queue", "admit_per_second"]),
        ({"queue": {"max_active": -1}}, ["body", "queue", "max_active"]),
        ({"queue": {"token_ttl_seconds": 29}}, ["body", "queue", "token_ttl_seconds"]),
        ({"queue": {"oversubscription": 0}}, ["body", "queue", "oversubscription"]),
        ({"queue": {"surprise": 1}}, ["body", "queue", "surprise"]),
        ({"seats": 3}, ["body", "seats"]),
    ],
)
async def test_show_validation(
    client: httpx.AsyncClient, admin: dict[str, Any], overrides: dict[str, Any], loc: list[str]
) -> None:
    made = await make_catalog(client, admin)
    url = f"/api/admin/concerts/{made['concert']['id']}/shows"
    body = assert_problem(
        await client.post(url, json=show_body(datetime.now(UTC), **overrides), headers=admin["headers"]),
        422,
        "VALIDATION_ERROR",
    )
    assert loc in locs(body), body


async def test_show_window_rules(client: httpx.AsyncClient, admin: dict[str, Any]) -> None:
    made = await make_catalog(client, admin)
    url = f"/api/admin/concerts/{made['concert']['id']}/shows"
    now = datetime.now(UTC)
    cases = [
        ({"sale_opens_at": iso(now + timedelta(days=31))}, ["body", "sale_opens_at"]),
        ({"sale_closes_at": iso(now - timedelta(hours=2))}, ["body", "sale_closes_at"]),
        ({"sale_closes_at": iso(now + timedelta(days=31))}, ["body", "sale_closes_at"]),
        ({"pre_queue_opens_at": iso(now)}, ["body", "pre_queue_opens_at"]),
    ]
    for overrides, loc in cases:
        body = assert_problem(
            await client.post(url, json=show_body(now, **overrides), headers=admin["headers"]),
            422,
            "INVALID_SHOW",
        )
        assert loc in locs(body), (overrides, body)


async def test_patch_show(client: httpx.AsyncClient, admin: dict[str, Any], runtime: Runtime) -> None:
    made = await make_catalog(client, admin)
    url = f"/api/admin/shows/{made['show']['id']}"
    h = admin["headers"]
    closes = datetime.now(UTC) + timedelta(days=20)
    resp = await client.patch(
        url,
        json={"hold_seconds": 90, "sale_closes_at": iso(closes), "queue": {"paused": True, "max_active": 10}},
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    show = resp.json()
    assert show["hold_seconds"] == 90
    assert datetime.fromisoformat(show["sale_closes_at"]) == closes
    assert show["queue"]["paused"] is True and show["queue"]["max_active"] == 10
    assert show["queue"]["admit_per_second"] == 11  # untouched
    # null clears the optional cap, not the required settings
    resp = await client.patch(url, json={"queue": {"max_active": None}}, headers=h)
    assert resp.json()["queue"]["max_active"] is None
    body = assert_problem(
        await client.patch(url, json={"queue": {"admit_per_second": None}}, headers=h),
        422,
        "VALIDATION_ERROR",
    )
    body = assert_problem(
        await client.patch(url, json={"hold_seconds": 2}, headers=h), 422, "VALIDATION_ERROR"
    )
    assert ["body", "hold_seconds"] in locs(body)
    # merged with the stored window: closing before the stored opening is refused
    body = assert_problem(
        await client.patch(
            url, json={"sale_closes_at": iso(datetime.now(UTC) - timedelta(days=1))}, headers=h
        ),
        422,
        "INVALID_SHOW",
    )
    assert ["body", "sale_closes_at"] in locs(body)
    async with runtime.sessions() as s:
        assert (await service.get_show(s, made["show"]["id"])).hold_seconds == 90
        events = (await s.execute(text("SELECT event_type FROM outbox ORDER BY id"))).scalars().all()
    assert events.count("show.updated") == 2 and "show.created" in events


async def _hold_one_seat(runtime: Runtime, show_id: int, user_id: int) -> int:
    """Simulate a committed hold the way the booking domain writes it (its own code is not ours)."""
    async with runtime.sessions() as s, s.begin():
        seat_id = (
            await s.execute(text("SELECT min(id) FROM seats WHERE show_id = :s"), {"s": show_id})
        ).scalar_one()
        res_id = (
            await s.execute(
                text(
                    "INSERT INTO reservations (user_id, show_id, status, total_price, seat_count, expires_at) "
                    "VALUES (:u, :s, 'TEMP_RESERVED', 1, 1, now() + interval '5 minutes') RETURNING id"
                ),
                {"u": user_id, "s": show_id},
            )
        ).scalar_one()
        await s.execute(
            text(
                "UPDATE seats SET status = 'TEMP_RESERVED', reservation_id = :r, "
                "hold_expires_at = now() + interval '5 minutes' WHERE id = :id"
            ),
            {"r": res_id, "id": seat_id},
        )
        await s.execute(
            text(
                "INSERT INTO reservation_seats (reservation_id, seat_id, show_id, price) VALUES (:r, :id, :s, 1)"
            ),
            {"r": res_id, "id": seat_id, "s": show_id},
        )
    return int(seat_id)


async def test_delete_show_only_while_nothing_is_held(
    client: httpx.AsyncClient, admin: dict[str, Any], runtime: Runtime
) -> None:
    made = await make_catalog(client, admin)
    show_id, cid = made["show"]["id"], made["concert"]["id"]
    user = await make_user(runtime)
    await _hold_one_seat(runtime, show_id, user["id"])
    body = assert_problem(
        await client.delete(f"/api/admin/shows/{show_id}", headers=admin["headers"]), 409, "SHOW_HAS_BOOKINGS"
    )
    assert body["taken_seats"] == 1
    assert_problem(
        await client.delete(f"/api/admin/concerts/{cid}", headers=admin["headers"]), 409, "SHOW_HAS_BOOKINGS"
    )
    # Once the hold is gone (expired: seat released, reservation closed) the show can go.
    async with runtime.sessions() as s, s.begin():
        await s.execute(text("UPDATE reservation_seats SET live = false"))
        await s.execute(text("UPDATE reservations SET status = 'EXPIRED'"))
        await s.execute(
            text("UPDATE seats SET status = 'AVAILABLE', reservation_id = NULL, hold_expires_at = NULL")
        )
    assert (await client.delete(f"/api/admin/shows/{show_id}", headers=admin["headers"])).status_code == 204
    assert_problem(await client.get(f"/api/shows/{show_id}"), 404, "SHOW_NOT_FOUND")
    async with runtime.sessions() as s:
        assert (await s.execute(text("SELECT count(*) FROM seats"))).scalar() == 0
        assert (await s.execute(text("SELECT count(*) FROM inventory"))).scalar() == 0
    assert (await client.get(f"/api/concerts/{cid}/shows")).json()["items"] == []


# ---- inventory -------------------------------------------------------------------------------------


async def test_inventory_recount(client: httpx.AsyncClient, admin: dict[str, Any], runtime: Runtime) -> None:
    made = await make_catalog(client, admin)
    show_id = made["show"]["id"]
    user = await make_user(runtime)
    await _hold_one_seat(runtime, show_id, user["id"])
    async with runtime.sessions() as s:
        assert await service.get_remaining(s, show_id) == 25  # holds never touch inventory
    assert await flows.recount_on_sale(runtime) == {show_id: 24}
    assert await flows.recount_on_sale(runtime) == {}  # unchanged: no write, no version bump
    async with runtime.sessions() as s:
        assert await service.get_remaining(s, show_id) == 24
        version = (
            await s.execute(text("SELECT version FROM inventory WHERE show_id = :s"), {"s": show_id})
        ).scalar()
    assert version == 1
    shows = (await client.get(f"/api/concerts/{made['concert']['id']}/shows")).json()["items"]
    assert shows[0]["remaining"] == 24 and shows[0]["total"] == 25
    # Drift (a bad write) is corrected by the next recount; refresh_inventory(None) covers every show.
    async with runtime.sessions() as s, s.begin():
        await s.execute(text("UPDATE inventory SET remaining = 3"))
    async with runtime.sessions() as s, s.begin():
        assert await service.refresh_inventory(s) == {show_id: 24}


# ---- the seat map ----------------------------------------------------------------------------------


async def test_seat_map_requires_queue_token(
    client: httpx.AsyncClient, admin: dict[str, Any], runtime: Runtime
) -> None:
    made = await make_catalog(client, admin)
    show_id = made["show"]["id"]
    user = await make_user(runtime)
    url = f"/api/shows/{show_id}/seats"
    assert_problem(await client.get(url), 401, "AUTH_REQUIRED")
    assert_problem(await client.get(url, headers=user["headers"]), 401, "QUEUE_TOKEN_REQUIRED")
    assert_problem(
        await client.get(url, headers={**user["headers"], "X-Queue-Token": "nope"}),
        401,
        "QUEUE_TOKEN_INVALID",
    )
    other = queue_headers(runtime, user, show_id + 1)
    assert_problem(await client.get(url, headers=other), 403, "QUEUE_TOKEN_MISMATCH")
    body = assert_problem(
        await client.get(url, params={"status": "SOLD"}, headers=queue_headers(runtime, user, show_id)),
        422,
        "VALIDATION_ERROR",
    )
    assert ["query", "status"] in locs(body)


async def test_seat_map_read_and_changes(
    client: httpx.AsyncClient, admin: dict[str, Any], runtime: Runtime
) -> None:
    made = await make_catalog(client, admin)
    show_id = made["show"]["id"]
    user = await make_user(runtime)
    h = queue_headers(runtime, user, show_id)
    url = f"/api/shows/{show_id}/seats"
    first = await client.get(url, headers=h)
    assert first.status_code == 200, first.text
    data = first.json()
    assert data["show_id"] == show_id and len(data["seats"]) == 25
    seat = data["seats"][0]
    assert set(seat) == {"id", "section", "row", "number", "price", "status"}
    assert (seat["section"], seat["row"], seat["number"], seat["price"], seat["status"]) == (
        "VIP",
        1,
        1,
        150_000,
        "AVAILABLE",
    )
    assert await cache.rebuild_count(runtime.redis, show_id) == 1
    ids = [s["id"] for s in data["seats"]]

    # A committed change reported through issue_seat_changes is in this process's very next read
    # once it says so (booking.effects.publish_seat_changes does both); other processes see it
    # within seatmap.CHECK_SECONDS.
    await cache.issue_seat_changes(
        runtime.hot_redis, show_id, [(ids[0], "TEMP_RESERVED"), (ids[1], "RESERVED")]
    )
    seatmap.changed(runtime, show_id)
    nxt = (await client.get(url, headers=h)).json()
    assert nxt["version"] > data["version"]
    by_id = {s["id"]: s["status"] for s in nxt["seats"]}
    assert by_id[ids[0]] == "TEMP_RESERVED" and by_id[ids[1]] == "RESERVED" and by_id[ids[2]] == "AVAILABLE"
    avail = (await client.get(url, params={"status": "AVAILABLE"}, headers=h)).json()
    assert len(avail["seats"]) == 23 and all(s["status"] == "AVAILABLE" for s in avail["seats"])
    held = (await client.get(url, params={"status": "TEMP_RESERVED"}, headers=h)).json()
    assert [s["id"] for s in held["seats"]] == [ids[0]]
    assert await cache.rebuild_count(runtime.redis, show_id) == 1  # patched, not rebuilt

    # A change made straight in PostgreSQL + invalidate_seat_map: the next read rebuilds and shows it.
    seat_id = await _hold_one_seat(runtime, show_id, user["id"])
    await cache.invalidate_seat_map(runtime.redis, show_id)
    await asyncio.sleep(seatmap.CHECK_SECONDS)  # another process's change: seen within this long
    after = (await client.get(url, headers=h)).json()
    by_id = {s["id"]: s["status"] for s in after["seats"]}
    assert by_id[seat_id] == "TEMP_RESERVED"
    assert by_id[ids[1]] == "AVAILABLE"  # the truth again: the earlier patch was never committed
    assert after["version"] > nxt["version"]
    assert await cache.rebuild_count(runtime.redis, show_id) == 2


async def test_seat_map_is_never_stale_long(
    client: httpx.AsyncClient, admin: dict[str, Any], runtime: Runtime
) -> None:
    """A change nobody reported (no patch, no invalidation) shows up once the copy is a second old."""
    made = await make_catalog(client, admin)
    show_id = made["show"]["id"]
    user = await make_user(runtime)
    h = queue_headers(runtime, user, show_id)
    url = f"/api/shows/{show_id}/seats"
    await client.get(url, headers=h)
    seat_id = await _hold_one_seat(runtime, show_id, user["id"])
    import asyncio

    await asyncio.sleep(cache.FRESH_MS / 1000 + 0.1)
    first = (await client.get(url, headers=h)).json()  # this reader refreshes the statuses
    assert {s["id"]: s["status"] for s in first["seats"]}[seat_id] == "TEMP_RESERVED"
    assert await cache.rebuild_count(runtime.redis, show_id) == 1  # statuses only, layout kept


async def test_seat_maps_of_two_shows_stay_apart(
    client: httpx.AsyncClient, admin: dict[str, Any], runtime: Runtime
) -> None:
    """Each map holds only its own seats, and a patch naming another show's seat is ignored."""
    made = await make_catalog(client, admin)
    second = await client.post(
        f"/api/admin/concerts/{made['concert']['id']}/shows",
        json=show_body(datetime.now(UTC)),
        headers=admin["headers"],
    )
    s1, s2 = made["show"]["id"], second.json()["id"]
    user = await make_user(runtime)
    m1 = (await client.get(f"/api/shows/{s1}/seats", headers=queue_headers(runtime, user, s1))).json()
    m2 = (await client.get(f"/api/shows/{s2}/seats", headers=queue_headers(runtime, user, s2))).json()
    assert len(m1["seats"]) == len(m2["seats"]) == 25
    assert not {s["id"] for s in m1["seats"]} & {s["id"] for s in m2["seats"]}
    # a patch naming another show's seat changes nothing here
    await cache.issue_seat_changes(runtime.hot_redis, s1, [(m2["seats"][0]["id"], "RESERVED")])
    again = (await client.get(f"/api/shows/{s1}/seats", headers=queue_headers(runtime, user, s1))).json()
    assert all(s["status"] == "AVAILABLE" for s in again["seats"])

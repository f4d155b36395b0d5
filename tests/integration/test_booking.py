"""Holds, reading, cancelling, expiry: the booking API against real PostgreSQL and Redis."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from boxoffice.booking.flows import expire_holds
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import assert_invariants, gated, seat_rows


@pytest.fixture(autouse=True)
async def _invariants_after(runtime):  # type: ignore[no-untyped-def]
    yield
    await assert_invariants(runtime)


async def hold(client, runtime, user, show_id, seat_ids, key=None):  # type: ignore[no-untyped-def]
    return await client.post(
        "/api/reservations",
        json={"show_id": show_id, "seat_ids": seat_ids},
        headers=gated(runtime, user, show_id, key),
    )


async def test_hold_all_seats_or_none(client, runtime):  # type: ignore[no-untyped-def]
    show = await make_show(runtime, seats=6, price=2500)
    a, b = await make_user(runtime), await make_user(runtime)
    s = show["seat_ids"]
    resp = await hold(client, runtime, a, show["show_id"], [s[1], s[0]])
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "TEMP_RESERVED" and body["total_price"] == 5000
    assert [seat["id"] for seat in body["seats"]] == [s[0], s[1]]
    assert {"section", "row", "number", "price"} <= set(body["seats"][0])
    # b wants one free and one taken seat: refused whole, naming the taken one, nothing held.
    resp = await hold(client, runtime, b, show["show_id"], [s[1], s[2]])
    assert resp.status_code == 409 and resp.json()["code"] == "SEATS_TAKEN"
    assert resp.json()["seat_ids"] == [s[1]]
    assert resp.headers["content-type"].startswith("application/problem+json")
    rows = {r["id"]: r for r in await seat_rows(runtime, show["show_id"])}
    assert rows[s[2]]["status"] == "AVAILABLE"
    assert rows[s[0]]["status"] == rows[s[1]]["status"] == "TEMP_RESERVED"


async def test_db_refusal_without_shield(client, runtime):  # type: ignore[no-untyped-def]
    show = await make_show(runtime, seats=4)
    a, b = await make_user(runtime), await make_user(runtime)
    s = show["seat_ids"]
    assert (await hold(client, runtime, a, show["show_id"], [s[0]])).status_code == 201
    await runtime.redis.flushdb()  # the shield forgets: PostgreSQL still says no
    resp = await hold(client, runtime, b, show["show_id"], [s[0], s[1]])
    assert resp.status_code == 409 and resp.json()["seat_ids"] == [s[0]]
    # and the marks b set on the free seat were cleared: a third user can take it at once
    c = await make_user(runtime)
    assert (await hold(client, runtime, c, show["show_id"], [s[1]])).status_code == 201


async def test_validation_errors(client, runtime):  # type: ignore[no-untyped-def]
    show = await make_show(runtime, seats=8, max_seats=2)
    other = await make_show(runtime, seats=2)
    u = await make_user(runtime)
    s, sid = show["seat_ids"], show["show_id"]
    cases = [
        ([], "VALIDATION_ERROR"),
        ([s[0], s[0]], "DUPLICATE_SEATS"),
        ([s[0], s[1], s[2]], "TOO_MANY_SEATS"),
        ([s[0], other["seat_ids"][0]], "SEATS_NOT_IN_SHOW"),
    ]
    for seat_ids, code in cases:
        resp = await hold(client, runtime, u, sid, seat_ids)
        assert resp.status_code == 422, (seat_ids, resp.text)
        assert resp.json()["code"] == code
        assert resp.json()["errors"][0]["loc"][:2] == ["body", "seat_ids"]
    resp = await client.post(
        "/api/reservations", json={"show_id": sid, "seat_ids": [1], "x": 1}, headers=gated(runtime, u, sid)
    )
    assert resp.status_code == 422
    resp = await client.post(
        "/api/reservations", json={"show_id": sid, "seat_ids": ["a"]}, headers=gated(runtime, u, sid)
    )
    assert resp.status_code == 422
    assert all(r["status"] == "AVAILABLE" for r in await seat_rows(runtime, sid))
    # unknown show, no queue token, token of another show
    assert (await hold(client, runtime, u, 999_999, [s[0]])).status_code == 404
    resp = await client.post(
        "/api/reservations", json={"show_id": sid, "seat_ids": [s[0]]}, headers=u["headers"]
    )
    assert resp.status_code == 401 and resp.json()["code"] == "QUEUE_TOKEN_REQUIRED"
    headers = gated(runtime, u, other["show_id"])
    resp = await client.post("/api/reservations", json={"show_id": sid, "seat_ids": [s[0]]}, headers=headers)
    assert resp.status_code == 403


async def test_sale_window(client, runtime):  # type: ignore[no-untyped-def]
    show = await make_show(runtime, opens_in=3600)  # opens in an hour
    u = await make_user(runtime)
    resp = await hold(client, runtime, u, show["show_id"], show["seat_ids"][:1])
    assert resp.status_code == 409 and resp.json()["code"] == "SALE_CLOSED"


async def test_one_live_hold_per_show_and_own_dead_hold(client, runtime, clock):  # type: ignore[no-untyped-def]
    show = await make_show(runtime, seats=6, hold_seconds=60)
    u = await make_user(runtime)
    s, sid = show["seat_ids"], show["show_id"]
    first = await hold(client, runtime, u, sid, [s[0]])
    assert first.status_code == 201
    resp = await hold(client, runtime, u, sid, [s[1]])
    assert resp.status_code == 409 and resp.json()["code"] == "HOLD_EXISTS"
    assert resp.json()["reservation_id"] == first.json()["reservation_id"]
    clock.advance(61)  # the first hold is dead; no sweep has run yet
    resp = await hold(client, runtime, u, sid, [s[0], s[1]])
    assert resp.status_code == 201, resp.text
    async with runtime.sessions() as session:
        status = (
            await session.execute(
                text("SELECT status FROM reservations WHERE id = :r"), {"r": first.json()["reservation_id"]}
            )
        ).scalar_one()
    assert status == "EXPIRED"


async def test_dead_hold_seats_taken_before_sweep_then_expiry(client, runtime, clock):  # type: ignore[no-untyped-def]
    show = await make_show(runtime, seats=4, hold_seconds=30)
    a, b = await make_user(runtime), await make_user(runtime)
    s, sid = show["seat_ids"], show["show_id"]
    old = (await hold(client, runtime, a, sid, [s[0], s[1]])).json()["reservation_id"]
    assert (await hold(client, runtime, b, sid, [s[0]])).status_code == 409
    clock.advance(31)
    new = await hold(client, runtime, b, sid, [s[0]])  # takes one seat of the dead hold
    assert new.status_code == 201, new.text
    assert await expire_holds(runtime) == 1  # the old hold: only its untaken seat goes back
    rows = {r["id"]: r for r in await seat_rows(runtime, sid)}
    assert rows[s[0]]["reservation_id"] == new.json()["reservation_id"]
    assert rows[s[1]]["status"] == "AVAILABLE"
    async with runtime.sessions() as session:
        remaining = (
            await session.execute(text("SELECT remaining FROM inventory WHERE show_id = :s"), {"s": sid})
        ).scalar_one()
        events = (
            await session.execute(
                text("SELECT event_type, payload FROM outbox WHERE aggregate_id = :r ORDER BY id"), {"r": old}
            )
        ).all()
    assert remaining == 3
    assert sorted(e[0] for e in events) == ["reservation.expired", "seat.held", "seat.released"]
    assert next(e[1] for e in events if e[0] == "seat.released")["seat_ids"] == [s[1]]
    # the expired hold is shown as such, and a payment for it is refused (payments tests cover money)
    resp = await client.get(f"/api/reservations/{old}", headers=a["headers"])
    assert resp.json()["status"] == "EXPIRED"


async def test_idempotent_hold_replays(client, runtime):  # type: ignore[no-untyped-def]
    show = await make_show(runtime)
    u = await make_user(runtime)
    sid, s = show["show_id"], show["seat_ids"]
    first = await hold(client, runtime, u, sid, [s[0]], key="k-1")
    again = await hold(client, runtime, u, sid, [s[0]], key="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers.get("idempotent-replayed") == "true"
    other = await hold(client, runtime, u, sid, [s[1]], key="k-1")
    assert other.status_code == 422 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_list_get_cancel(client, runtime):  # type: ignore[no-untyped-def]
    show = await make_show(runtime)
    other_show = await make_show(runtime)
    u, stranger = await make_user(runtime), await make_user(runtime)
    r1 = (await hold(client, runtime, u, show["show_id"], show["seat_ids"][:2])).json()["reservation_id"]
    r2 = (await hold(client, runtime, u, other_show["show_id"], other_show["seat_ids"][:1])).json()[
        "reservation_id"
    ]
    page = (await client.get("/api/reservations?limit=1", headers=u["headers"])).json()
    assert [i["reservation_id"] for i in page["items"]] == [r2] and page["next_before"] == r2
    page = (await client.get(f"/api/reservations?limit=1&before={r2}", headers=u["headers"])).json()
    assert [i["reservation_id"] for i in page["items"]] == [r1]
    assert (await client.get(f"/api/reservations/{r1}", headers=stranger["headers"])).status_code == 404
    assert (await client.delete(f"/api/reservations/{r1}", headers=stranger["headers"])).status_code == 404
    assert (await client.get("/api/reservations?limit=0", headers=u["headers"])).status_code == 422
    resp = await client.delete(f"/api/reservations/{r1}", headers=u["headers"])
    assert resp.status_code == 200 and resp.json()["status"] == "CANCELLED"
    assert all(r["status"] == "AVAILABLE" for r in await seat_rows(runtime, show["show_id"]))
    # cancelling again answers with the same state; the seats can be held again at once
    assert (await client.delete(f"/api/reservations/{r1}", headers=u["headers"])).json()[
        "status"
    ] == "CANCELLED"
    v = await make_user(runtime)
    assert (await hold(client, runtime, v, show["show_id"], show["seat_ids"][:2])).status_code == 201


async def test_the_lean_hold_route_answers_like_the_documented_one(client, runtime):  # type: ignore[no-untyped-def]
    """POST /api/reservations is served without FastAPI's DI (boxoffice.http.hot): same checks, same errors."""
    show = await make_show(runtime, seats=4)
    u = await make_user(runtime)
    sid = show["show_id"]
    headers = gated(runtime, u, sid)
    raw = await client.post("/api/reservations", content=b'{"show_id": 1, "seat_ids":', headers=headers)
    assert raw.status_code == 422 and raw.json()["code"] == "VALIDATION_ERROR"
    assert raw.json()["errors"][0]["loc"][0] == "body"
    wrong_type = await client.post(
        "/api/reservations", json={"show_id": "x", "seat_ids": [1]}, headers=headers
    )
    assert wrong_type.status_code == 422 and wrong_type.json()["errors"][0]["loc"] == ["body", "show_id"]
    long_key = await client.post(
        "/api/reservations",
        json={"show_id": sid, "seat_ids": [show["seat_ids"][0]]},
        headers={**headers, "Idempotency-Key": "k" * 256},
    )
    assert long_key.status_code == 422 and long_key.json()["errors"][0]["loc"] == [
        "header",
        "idempotency-key",
    ]
    anonymous = await client.post(
        "/api/reservations", json={"show_id": sid, "seat_ids": [show["seat_ids"][0]]}
    )
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "AUTH_REQUIRED"
    no_queue_token = await client.post(
        "/api/reservations", json={"show_id": sid, "seat_ids": [show["seat_ids"][0]]}, headers=u["headers"]
    )
    assert no_queue_token.status_code == 401 and no_queue_token.json()["code"] == "QUEUE_TOKEN_REQUIRED"
    won = await client.post(
        "/api/reservations", json={"show_id": sid, "seat_ids": [show["seat_ids"][0]]}, headers=headers
    )
    assert won.status_code == 201 and won.json()["status"] == "TEMP_RESERVED"
    assert (await client.get("/openapi.json")).json()["paths"]["/api/reservations"]["post"]["requestBody"]
    await assert_invariants(runtime)


async def test_a_logged_out_token_holds_nothing(client, runtime):  # type: ignore[no-untyped-def]
    """The hold's deny-list check leaves in one write with the hold's first reads (the admission
    check, the rate-limit count: http.hot first_round) and is answered before the hold does
    anything: a logged-out token gets 401 and leaves no mark, not even for a malformed body."""
    show = await make_show(runtime, seats=2)
    sid, seats = show["show_id"], show["seat_ids"]
    fan = await make_user(runtime)
    headers = gated(runtime, fan, sid)
    assert (await client.post("/api/auth/logout", headers=fan["headers"])).status_code == 204
    refused = await client.post(
        "/api/reservations", json={"show_id": sid, "seat_ids": seats}, headers=headers
    )
    assert refused.status_code == 401 and refused.json()["code"] == "INVALID_TOKEN", refused.text
    malformed = await client.post("/api/reservations", content=b'{"show_id":', headers=headers)
    assert malformed.status_code == 401 and malformed.json()["code"] == "INVALID_TOKEN", malformed.text
    assert {r["status"] for r in await seat_rows(runtime, sid)} == {"AVAILABLE"}
    # no shield mark was left on the seats: another fan holds them at once
    other = await make_user(runtime)
    assert (await hold(client, runtime, other, sid, seats)).status_code == 201

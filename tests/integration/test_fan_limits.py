"""One fan, a fair share: the per-fan ticket limit per concert and per show, enforced by the hold
statement in PostgreSQL (stable code TICKET_LIMIT_REACHED, a sentence a fan understands); seats
given back (cancel, expiry) count no more. The race of many holds: tests/concurrency/test_fan_limit_race.py."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text

from boxoffice.booking.flows import expire_holds
from boxoffice.kit.clock import OffsetClock
from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_admin_forms import console, csrf  # noqa: F401 - console: a fixture
from tests.integration.test_booking_support import assert_invariants, gated


async def concert_with_shows(
    runtime: Runtime, n: int, *, seats: int = 10, **more: Any
) -> list[dict[str, Any]]:
    """n shows of one concert (the helper makes a concert per show; the others are moved over)."""
    shows = [await make_show(runtime, seats=seats, **more) for _ in range(n)]
    async with runtime.sessions() as s, s.begin():
        await s.execute(
            text("UPDATE shows SET concert_id = :c WHERE id = ANY(:ids)"),
            {"c": shows[0]["concert_id"], "ids": [x["show_id"] for x in shows[1:]]},
        )
    return [{**x, "concert_id": shows[0]["concert_id"]} for x in shows]


async def set_limits(
    runtime: Runtime, *, concert_id: int | None = None, show_id: int | None = None, limit: int
) -> None:
    async with runtime.sessions() as s, s.begin():
        if concert_id is not None:
            await s.execute(
                text("UPDATE concerts SET max_tickets_per_fan = :n WHERE id = :c"),
                {"n": limit, "c": concert_id},
            )
        if show_id is not None:
            await s.execute(
                text("UPDATE shows SET max_tickets_per_fan = :n WHERE id = :s"), {"n": limit, "s": show_id}
            )


async def counted(runtime: Runtime, user_id: int) -> dict[tuple[str, int], int]:
    async with runtime.sessions() as s:
        rows = await s.execute(
            text("SELECT scope, scope_id, seats FROM fan_tickets WHERE user_id = :u"), {"u": user_id}
        )
        return {(r[0], r[1]): r[2] for r in rows}


async def live_seats(runtime: Runtime, user_id: int, concert_id: int) -> int:
    async with runtime.sessions() as s:
        return int(
            (
                await s.execute(
                    text(
                        "SELECT coalesce(sum(r.seat_count), 0) FROM reservations r JOIN shows sh ON sh.id = r.show_id "
                        "WHERE r.user_id = :u AND sh.concert_id = :c AND r.status IN ('TEMP_RESERVED', 'RESERVED')"
                    ),
                    {"u": user_id, "c": concert_id},
                )
            ).scalar_one()
        )


async def _hold(
    client: httpx.AsyncClient, runtime: Runtime, user: dict[str, Any], show: dict[str, Any], seats: list[int]
) -> httpx.Response:
    return await client.post(
        "/api/reservations",
        json={"show_id": show["show_id"], "seat_ids": seats},
        headers=gated(runtime, user, show["show_id"]),
    )


async def _pay(client: httpx.AsyncClient, user: dict[str, Any], reservation_id: int) -> None:
    paid = await client.post(
        "/api/payments",
        json={"reservation_id": reservation_id, "method": "BALANCE"},
        headers={**user["headers"], "Idempotency-Key": f"pay-{reservation_id}"},
    )
    assert paid.status_code == 201, paid.text


async def test_a_fan_with_4_of_4_for_the_concert_cannot_hold_a_5th(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    a, b = await concert_with_shows(runtime, 2)
    admin = await make_user(runtime, role="ADMIN")
    patched = await client.patch(
        f"/api/admin/concerts/{a['concert_id']}", json={"max_tickets_per_fan": 4}, headers=admin["headers"]
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["max_tickets_per_fan"] == 4
    fan = await make_user(runtime, balance=10_000_000)
    first = await _hold(client, runtime, fan, a, a["seat_ids"][:3])
    assert first.status_code == 201
    await _pay(client, fan, first.json()["reservation_id"])
    # 3 paid for show A: one more fits (in show B), two more do not
    too_many = await _hold(client, runtime, fan, b, b["seat_ids"][:2])
    assert too_many.status_code == 409 and too_many.json()["code"] == "TICKET_LIMIT_REACHED"
    problem = too_many.json()
    assert problem["limit"] == 4 and problem["held"] == 3 and problem["scope"] == "concert"
    assert (
        "at most 4 tickets for this concert" in problem["detail"]
        and "You can still choose 1." in problem["detail"]
    )
    fourth = await _hold(client, runtime, fan, b, b["seat_ids"][:1])
    assert fourth.status_code == 201
    fifth = await _hold(client, runtime, fan, a, a["seat_ids"][5:6])
    assert fifth.status_code == 409 and fifth.json()["code"] == "TICKET_LIMIT_REACHED"
    assert "You cannot add more." in fifth.json()["detail"]
    # nothing of a refused hold was written: the seats are free, the counts are the truth
    assert await live_seats(runtime, fan["id"], a["concert_id"]) == 4
    assert await counted(runtime, fan["id"]) == {
        ("concert", a["concert_id"]): 4,
        ("show", a["show_id"]): 3,
        ("show", b["show_id"]): 1,
    }
    # another fan is not affected
    other = await make_user(runtime)
    assert (await _hold(client, runtime, other, a, a["seat_ids"][5:9])).status_code == 201
    await assert_invariants(runtime)


async def test_the_show_limit_and_seats_given_back(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    (show,) = await concert_with_shows(runtime, 1, hold_seconds=60)
    await set_limits(runtime, show_id=show["show_id"], limit=2)
    fan = await make_user(runtime)
    over = await _hold(client, runtime, fan, show, show["seat_ids"][:3])
    assert (
        over.status_code == 409
        and over.json()["code"] == "TICKET_LIMIT_REACHED"
        and over.json()["scope"] == "show"
    )
    assert "at most 2 tickets for this show" in over.json()["detail"]
    held = await _hold(client, runtime, fan, show, show["seat_ids"][:2])
    assert held.status_code == 201
    # a cancelled hold gives its seats back
    rid = held.json()["reservation_id"]
    assert (await client.delete(f"/api/reservations/{rid}", headers=fan["headers"])).status_code in (200, 204)
    assert (await counted(runtime, fan["id"]))[("show", show["show_id"])] == 0
    again = await _hold(client, runtime, fan, show, show["seat_ids"][2:4])
    assert again.status_code == 201
    # a lapsed hold: the sweep gives the seats back...
    clock.advance(61)
    await expire_holds(runtime)
    assert (await counted(runtime, fan["id"]))[("show", show["show_id"])] == 0
    third = await _hold(client, runtime, fan, show, show["seat_ids"][4:6])
    assert third.status_code == 201
    # ...and a hold that finds its fan's own lapsed hold not swept yet closes it first
    clock.advance(61)
    fourth = await _hold(client, runtime, fan, show, show["seat_ids"][6:8])
    assert fourth.status_code == 201, fourth.text
    assert (await counted(runtime, fan["id"]))[("show", show["show_id"])] == 2
    await assert_invariants(runtime)


async def test_a_lapsed_hold_in_another_show_does_not_block_the_limit(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    a, b = await concert_with_shows(runtime, 2, hold_seconds=60)
    await set_limits(runtime, concert_id=a["concert_id"], limit=2)
    fan = await make_user(runtime)
    assert (await _hold(client, runtime, fan, a, a["seat_ids"][:2])).status_code == 201
    assert (await _hold(client, runtime, fan, b, b["seat_ids"][:1])).json()["code"] == "TICKET_LIMIT_REACHED"
    clock.advance(61)  # A's hold lapsed; the sweep has not run
    late = await _hold(client, runtime, fan, b, b["seat_ids"][:2])
    assert late.status_code == 201, late.text
    assert await counted(runtime, fan["id"]) == {
        ("concert", a["concert_id"]): 2,
        ("show", a["show_id"]): 0,
        ("show", b["show_id"]): 2,
    }
    await assert_invariants(runtime)


async def test_no_limit_by_default_and_the_limits_are_show_and_concert_settings(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    (show,) = await concert_with_shows(runtime, 1, seats=12, max_seats=10)
    fan = await make_user(runtime)
    assert (await _hold(client, runtime, fan, show, show["seat_ids"][:10])).status_code == 201  # no limit set
    listed = (await client.get(f"/api/shows/{show['show_id']}", headers=fan["headers"])).json()
    assert listed["max_tickets_per_fan"] is None
    admin = await make_user(runtime, role="ADMIN")
    patched = await client.patch(
        f"/api/admin/shows/{show['show_id']}", json={"max_tickets_per_fan": 3}, headers=admin["headers"]
    )
    assert patched.status_code == 200 and patched.json()["max_tickets_per_fan"] == 3
    bad = await client.patch(
        f"/api/admin/shows/{show['show_id']}", json={"max_tickets_per_fan": 0}, headers=admin["headers"]
    )
    assert bad.status_code == 422


async def test_the_console_sets_the_concert_limit(console: httpx.AsyncClient, runtime: Runtime) -> None:  # noqa: F811
    (show,) = await concert_with_shows(runtime, 1)
    cid = show["concert_id"]
    page = await console.get(f"/admin/concerts/{cid}")
    assert page.status_code == 200 and 'name="max_tickets_per_fan"' in page.text
    token = await csrf(console, f"/admin/concerts/{cid}")
    form = {"csrf_token": token, "name": "Gig", "artist": "Band", "max_tickets_per_fan": "4"}
    assert (await console.post(f"/admin/concerts/{cid}", data=form)).status_code == 303
    async with runtime.sessions() as s:
        limit = (
            await s.execute(text("SELECT max_tickets_per_fan FROM concerts WHERE id = :c"), {"c": cid})
        ).scalar_one()
    assert limit == 4
    edit = await console.get(f"/admin/shows/{show['show_id']}")
    assert 'name="max_tickets_per_fan"' in edit.text

"""The seat map off the request path (issue 23 part 2): the layout (public, immutable per digest)
apart from the statuses (gated, small), each rendered once per version per process and served as
bytes with a strong ETag; 304 on If-None-Match; seats owed to the waitlist never shown AVAILABLE;
the compatible whole map still served."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import text

from boxoffice.catalog import seatmap
from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import gated
from tests.integration.test_waitlist import hold, settle_inventory


async def _truth(runtime: Runtime, show_id: int) -> dict[int, str]:
    async with runtime.sessions() as s:
        rows = (
            await s.execute(text("SELECT id, status FROM seats WHERE show_id = :s"), {"s": show_id})
        ).all()
    return {int(i): str(st)[0] for i, st in rows}


def _shown(status: dict[str, Any]) -> dict[int, str]:
    base = status["base"]
    return {base + i: c for i, c in enumerate(status["status"]) if c != "-"}


async def test_layout_once_then_statuses_with_etags(client: httpx.AsyncClient, runtime: Runtime) -> None:
    show = await make_show(runtime, seats=12)
    sid = show["show_id"]
    fan, other = await make_user(runtime), await make_user(runtime)

    status = await client.get(f"/api/shows/{sid}/seats/status", headers=gated(runtime, fan, sid))
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["show_id"] == sid and body["waitlist"] is False
    assert _shown(body) == await _truth(runtime, sid)
    etag = status.headers["etag"]
    assert etag.startswith('"') and status.headers["cache-control"] == "private, max-age=1"

    # The layout is public, named by its digest: cacheable for a year when asked for by it.
    plain = await client.get(f"/api/shows/{sid}/seats/layout")
    assert plain.status_code == 200 and plain.headers["cache-control"] == "public, max-age=60"
    named = await client.get(f"/api/shows/{sid}/seats/layout", params={"v": body["layout"]})
    assert named.status_code == 200
    assert named.headers["cache-control"] == f"public, max-age={seatmap.LAYOUT_MAX_AGE}, immutable"
    layout = named.json()
    assert layout["layout"] == body["layout"] and layout["base"] == body["base"]
    assert sorted(s["id"] for s in layout["seats"]) == sorted(show["seat_ids"])
    assert set(layout["seats"][0]) == {"id", "section", "row", "number", "price"}
    again = await client.get(
        f"/api/shows/{sid}/seats/layout",
        params={"v": body["layout"]},
        headers={"If-None-Match": named.headers["etag"]},
    )
    assert again.status_code == 304 and again.content == b""

    # Nothing changed: 304. A hold: a new ETag and the seat held.
    same = await client.get(
        f"/api/shows/{sid}/seats/status", headers={**gated(runtime, fan, sid), "If-None-Match": etag}
    )
    assert same.status_code == 304 and same.headers["etag"] == etag and same.content == b""
    seat = show["seat_ids"][3]
    assert (await hold(client, runtime, other, show, seat)).status_code == 201
    moved = await client.get(
        f"/api/shows/{sid}/seats/status", headers={**gated(runtime, fan, sid), "If-None-Match": etag}
    )
    assert moved.status_code == 200 and moved.headers["etag"] != etag
    assert _shown(moved.json())[seat] == "T" and moved.json()["version"] > body["version"]
    assert moved.json()["layout"] == body["layout"]  # the layout did not change


async def test_bad_requests_are_refused_cleanly(client: httpx.AsyncClient, runtime: Runtime) -> None:
    show = await make_show(runtime, seats=4)
    sid = show["show_id"]
    fan = await make_user(runtime)
    bad = await client.get(f"/api/shows/{sid}/seats/layout", params={"v": "NOT-HEX"})
    assert bad.status_code == 422
    missing = await client.get("/api/shows/999999999/seats/layout")
    assert missing.status_code == 404 and missing.json()["code"] == "SHOW_NOT_FOUND"
    no_token = await client.get(f"/api/shows/{sid}/seats/status", headers=fan["headers"])
    assert no_token.status_code == 401 and no_token.json()["code"] == "QUEUE_TOKEN_REQUIRED"
    foreign = await client.get(f"/api/shows/{sid}/seats/status", headers=gated(runtime, fan, sid + 1))
    assert foreign.status_code == 403
    nobody = await client.get(f"/api/shows/{sid}/seats/status")
    assert nobody.status_code == 401
    gone = await client.get("/api/shows/999999999/seats/status", headers=gated(runtime, fan, 999999999))
    assert gone.status_code == 404 and gone.json()["code"] == "SHOW_NOT_FOUND"


async def test_a_crowd_of_reads_renders_once_per_version(client: httpx.AsyncClient, runtime: Runtime) -> None:
    show = await make_show(runtime, seats=30)
    sid = show["show_id"]
    fans = [await make_user(runtime) for _ in range(3)]
    maps = runtime.component("catalog.seat_maps", seatmap.SeatMaps)
    first = await client.get(f"/api/shows/{sid}/seats/status", headers=gated(runtime, fans[0], sid))
    assert first.status_code == 200
    renders = maps.renders
    # 60 reads at once of an unchanged map, with the process's copy due for a version check:
    maps.checked.pop(sid, None)
    answers = await asyncio.gather(
        *(
            client.get(f"/api/shows/{sid}/seats/status", headers=gated(runtime, fans[i % 3], sid))
            for i in range(60)
        )
    )
    assert {a.status_code for a in answers} == {200}
    assert {a.headers["etag"] for a in answers} == {first.headers["etag"]}
    assert maps.renders == renders  # same version: nothing rendered again
    assert {a.content for a in answers} == {first.content}
    # A change: one render for the new version, however many read it at once.
    assert (await hold(client, runtime, fans[0], show, show["seat_ids"][0])).status_code == 201
    answers = await asyncio.gather(
        *(
            client.get(f"/api/shows/{sid}/seats/status", headers=gated(runtime, fans[i % 3], sid))
            for i in range(60)
        )
    )
    assert len({a.headers["etag"] for a in answers}) == 1
    assert maps.renders == renders + 1


async def test_the_compatible_whole_map_has_an_etag(client: httpx.AsyncClient, runtime: Runtime) -> None:
    show = await make_show(runtime, seats=6)
    sid = show["show_id"]
    fan = await make_user(runtime)
    whole = await client.get(f"/api/shows/{sid}/seats", headers=gated(runtime, fan, sid))
    assert whole.status_code == 200 and len(whole.json()["seats"]) == 6
    assert {s["status"] for s in whole.json()["seats"]} == {"AVAILABLE"}
    same = await client.get(
        f"/api/shows/{sid}/seats",
        headers={**gated(runtime, fan, sid), "If-None-Match": whole.headers["etag"]},
    )
    assert same.status_code == 304
    held = await client.get(
        f"/api/shows/{sid}/seats",
        params={"status": "TEMP_RESERVED"},
        headers={**gated(runtime, fan, sid), "If-None-Match": whole.headers["etag"]},
    )
    assert held.status_code == 200 and held.json()["seats"] == []  # another variant, another ETag


async def test_seats_owed_to_the_waitlist_are_not_shown_available(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    show = await make_show(runtime, seats=2, hold_seconds=60)
    sid = show["show_id"]
    x, y, waiter, crowd = [await make_user(runtime, balance=10**7) for _ in range(4)]
    held_x = await hold(client, runtime, x, show, show["seat_ids"][0])
    assert held_x.status_code == 201
    assert (await hold(client, runtime, y, show, show["seat_ids"][1])).status_code == 201
    await settle_inventory(runtime, sid)  # LAST_SEATS_HELD: the waitlist opens
    assert (await client.post(f"/api/shows/{sid}/waitlist", headers=waiter["headers"])).status_code == 200
    released = await client.delete(
        f"/api/reservations/{held_x.json()['reservation_id']}", headers=x["headers"]
    )
    assert released.status_code in (200, 204)
    assert (await _truth(runtime, sid))[show["seat_ids"][0]] == "A"  # free in PostgreSQL ...
    status = await client.get(f"/api/shows/{sid}/seats/status", headers=gated(runtime, crowd, sid))
    body = status.json()
    assert body["waitlist"] is True and "A" not in body["status"]  # ... but owed: shown held
    assert _shown(body)[show["seat_ids"][0]] == "T"
    whole = await client.get(f"/api/shows/{sid}/seats", headers=gated(runtime, crowd, sid))
    assert "AVAILABLE" not in {s["status"] for s in whole.json()["seats"]}
    # and the hold statement agrees: the crowd cannot take it
    grab = await hold(client, runtime, crowd, show, show["seat_ids"][0])
    assert grab.status_code == 409 and grab.json()["waitlist"] is True


async def test_a_reader_that_gives_up_does_not_cancel_the_load_for_the_others(runtime: Runtime) -> None:
    show = await make_show(runtime, seats=8)
    sid = show["show_id"]
    quitter = asyncio.ensure_future(seatmap.view(runtime, sid))
    waiter = asyncio.ensure_future(seatmap.view(runtime, sid))
    await asyncio.sleep(0)  # both are waiting on the one load
    quitter.cancel()
    found = await waiter
    assert quitter.cancelled()
    assert sorted(s[0] for s in found.layout.seats) == sorted(show["seat_ids"])
    assert found.status == b"A" * 8 and found.waitlist is False
    missing = [seatmap.view(runtime, 999_999_999) for _ in range(3)]
    outcomes = await asyncio.gather(*missing, return_exceptions=True)
    assert {type(o).__name__ for o in outcomes} == {"ShowNotFound"}

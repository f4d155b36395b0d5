"""The sale is over when it is over: SOLD_OUT once no seat is available and none is held (status,
stream, serving resource; join answers 409), LAST_SEATS_HELD while the last seats are only held,
and the queue admits again when such a hold lapses. Real seats, real holds, real payments."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from boxoffice.booking.flows import expire_holds
from boxoffice.catalog.service import refresh_inventory
from boxoffice.kit.clock import OffsetClock
from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import assert_invariants, gated
from tests.integration.test_queue_cheap_polls import fresh_boards
from tests.integration.test_queue_support import tick


async def _last_seats_held(client: httpx.AsyncClient, runtime: Runtime) -> dict[str, Any]:
    """A 2-seat show whose both seats one buyer holds, and a fan waiting in its queue."""
    show = await make_show(runtime, seats=2, hold_seconds=60)
    sid, cid = show["show_id"], show["concert_id"]
    show["body"] = {"concert_id": cid, "show_id": sid}
    show["q"] = show["body"]
    buyer = await make_user(runtime, balance=100_000)
    waiter = await make_user(runtime)
    joined = await client.post("/api/queue", json=show["body"], headers=waiter["headers"])
    assert joined.status_code == 200 and joined.json()["status"] == "WAITING", joined.text
    held = await client.post(
        "/api/reservations",
        json={"show_id": sid, "seat_ids": show["seat_ids"]},
        headers=gated(runtime, buyer, sid, "hold-all"),
    )
    assert held.status_code == 201, held.text
    async with runtime.sessions() as s, s.begin():
        await refresh_inventory(s, [sid], now=runtime.clock.now())
    show.update(
        buyer=buyer, waiter=waiter, ticket=joined.json()["queue_ticket"], rid=held.json()["reservation_id"]
    )
    return show


async def _status(
    client: httpx.AsyncClient, show: dict[str, Any], fan: dict[str, Any], ticket: str | None
) -> Any:
    headers = dict(fan["headers"])
    if ticket:
        headers["X-Queue-Ticket"] = ticket
    r = await client.get("/api/queue/status", params=show["q"], headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_last_seats_held_then_a_lapsed_hold_resumes_admission(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    show = await _last_seats_held(client, runtime)
    sid = show["show_id"]
    await tick(runtime, sid)
    fresh_boards(runtime)
    for ticket in (None, show["ticket"]):  # the per-fan path and the cheap one agree
        body = await _status(client, show, show["waiter"], ticket)
        assert body["status"] == "LAST_SEATS_HELD" and body["position"] == 1, body
        assert body["estimated_wait_seconds"] is None and body["poll_after_seconds"] is not None
    serving = (await client.get(f"/api/shows/{sid}/queue/serving")).json()
    assert serving["sale_state"] == "LAST_SEATS_HELD" and serving["remaining"] == 0
    # seats may come back: a newcomer may still join (and is told how things stand)
    late = await make_user(runtime)
    joined = await client.post("/api/queue", json=show["body"], headers=late["headers"])
    assert joined.status_code == 200 and joined.json()["status"] == "LAST_SEATS_HELD"
    # nobody is admitted to find nothing
    assert (await tick(runtime, sid)).admitted == 0

    clock.advance(61)  # the buyer walks away: the hold lapses, the sweep returns both seats
    assert await expire_holds(runtime) == 1
    await tick(runtime, sid)
    fresh_boards(runtime)
    resumed = await _status(client, show, show["waiter"], show["ticket"])
    assert resumed["status"] == "READY" and resumed["token"], resumed
    assert (await client.get(f"/api/shows/{sid}/queue/serving")).json()["sale_state"] == "OPEN"
    await assert_invariants(runtime)


async def test_sold_out_once_the_last_held_seats_are_paid(
    client: httpx.AsyncClient, live_server: str, runtime: Runtime
) -> None:
    show = await _last_seats_held(client, runtime)
    sid = show["show_id"]
    await tick(runtime, sid)
    fresh_boards(runtime)
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as c:
        events: list[dict[str, Any]] = []

        async def read() -> None:
            async with c.stream(
                "GET",
                "/api/queue/stream",
                params={**show["q"], "ticket": show["ticket"]},
                headers=show["waiter"]["headers"],
            ) as resp:
                assert resp.status_code == 200
                async for line in resp.aiter_lines():
                    if line.startswith("data: "):
                        events.append(json.loads(line[6:]))

        reader = asyncio.create_task(read())
        for _ in range(200):
            if events:
                break
            await asyncio.sleep(0.05)
        assert events and events[0]["status"] == "LAST_SEATS_HELD"  # not final: the stream stays open
        assert not reader.done()

        paid = await client.post(
            "/api/payments",
            json={"reservation_id": show["rid"], "method": "BALANCE"},
            headers=gated(runtime, show["buyer"], sid, "pay-all"),
        )
        assert paid.status_code in (200, 201), paid.text
        await tick(runtime, sid)  # the admission worker's next look at the show
        await asyncio.wait_for(reader, timeout=15)  # SOLD_OUT is final: the stream ends itself
    assert events[-1]["status"] == "SOLD_OUT" and events[-1]["poll_after_seconds"] is None

    fresh_boards(runtime)
    for ticket in (None, show["ticket"]):
        body = await _status(client, show, show["waiter"], ticket)
        assert body["status"] == "SOLD_OUT" and body["poll_after_seconds"] is None, body
    assert (await client.get(f"/api/shows/{sid}/queue/serving")).json()["sale_state"] == "SOLD_OUT"
    late = await make_user(runtime)
    refused = await client.post("/api/queue", json=show["body"], headers=late["headers"])
    assert refused.status_code == 409 and refused.json()["code"] == "SOLD_OUT"
    await assert_invariants(runtime)

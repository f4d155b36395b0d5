"""While fans wait on the waitlist, a returned seat goes to the next of them even when the crowd
fires holds at it the moment it returns: many real holds at once, then the database."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text

from boxoffice.booking.flows import offer_returned_seats
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import assert_invariants, gated
from tests.integration.test_waitlist import settle_inventory

pytestmark = pytest.mark.slow


async def test_the_crowd_racing_for_a_returned_seat_never_gets_it(runtime, live_server) -> None:  # type: ignore[no-untyped-def]
    show = await make_show(runtime, seats=1)
    sid, seat = show["show_id"], show["seat_ids"][0]
    owner, waiter = await make_user(runtime), await make_user(runtime)
    crowd = [await make_user(runtime) for _ in range(20)]
    async with httpx.AsyncClient(base_url=live_server) as c:
        held = await c.post(
            "/api/reservations", json={"show_id": sid, "seat_ids": [seat]}, headers=gated(runtime, owner, sid)
        )
        assert held.status_code == 201
        await settle_inventory(runtime, sid)
        assert (await c.post(f"/api/shows/{sid}/waitlist", headers=waiter["headers"])).status_code == 200
        released = await c.delete(
            f"/api/reservations/{held.json()['reservation_id']}", headers=owner["headers"]
        )
        assert released.status_code in (200, 204)
    limits = httpx.Limits(max_connections=len(crowd), max_keepalive_connections=0)

    async def offer_soon() -> int:
        await asyncio.sleep(0.05)  # the crowd's first holds reach the seat while it is AVAILABLE
        return await offer_returned_seats(runtime)

    async with httpx.AsyncClient(base_url=live_server, limits=limits, timeout=60) as c:
        crowd_holds = [
            c.post(
                "/api/reservations", json={"show_id": sid, "seat_ids": [seat]}, headers=gated(runtime, f, sid)
            )
            for f in crowd
        ]
        answers, offered = await asyncio.gather(asyncio.gather(*crowd_holds), offer_soon())
    assert offered == 1
    assert all(r.status_code == 409 for r in answers), [r.text for r in answers if r.status_code != 409]
    async with runtime.sessions() as s:
        owner_now = (
            await s.execute(
                text(
                    "SELECT r.user_id FROM seats st JOIN reservations r ON r.id = st.reservation_id WHERE st.id = :s"
                ),
                {"s": seat},
            )
        ).scalar_one()
    assert owner_now == waiter["id"]
    await assert_invariants(runtime)

"""The per-fan limit under a race: one fan fires many holds at once, each for other seats of other
shows of one concert, over separate connections to a real server; PostgreSQL lets exactly as
many through as the limit allows, and the database agrees afterwards."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.factories import make_user
from tests.integration.test_booking_support import assert_invariants, gated
from tests.integration.test_fan_limits import concert_with_shows, counted, live_seats, set_limits

pytestmark = pytest.mark.slow


async def _fire(
    live_server: str, runtime: Any, fan: dict[str, Any], holds: list[tuple[int, list[int]]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(holds), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=live_server, limits=limits, timeout=60) as c:
        return await asyncio.gather(
            *(
                c.post(
                    "/api/reservations",
                    json={"show_id": sid, "seat_ids": seats},
                    headers=gated(runtime, fan, sid),
                )
                for sid, seats in holds
            )
        )


async def test_many_simultaneous_holds_by_one_fan_never_pass_the_concert_limit(runtime, live_server) -> None:  # type: ignore[no-untyped-def]
    shows = await concert_with_shows(runtime, 12, seats=6)
    concert_id = shows[0]["concert_id"]
    await set_limits(runtime, concert_id=concert_id, limit=4)
    fan = await make_user(runtime)
    answers = await _fire(live_server, runtime, fan, [(s["show_id"], s["seat_ids"][:1]) for s in shows])
    codes = Counter(r.status_code for r in answers)
    assert codes == {201: 4, 409: 8}, [r.text for r in answers]
    assert {r.json()["code"] for r in answers if r.status_code == 409} == {"TICKET_LIMIT_REACHED"}
    assert await live_seats(runtime, fan["id"], concert_id) == 4
    counts = await counted(runtime, fan["id"])
    assert counts[("concert", concert_id)] == 4
    assert sum(n for (scope, _), n in counts.items() if scope == "show") == 4
    # a 5th ticket, later, alone (in a show the fan holds nothing of): still refused
    spare = next(s for s, r in zip(shows, answers, strict=True) if r.status_code == 409)
    late = await _fire(live_server, runtime, fan, [(spare["show_id"], spare["seat_ids"][2:3])])
    assert late[0].status_code == 409 and late[0].json()["code"] == "TICKET_LIMIT_REACHED"
    await assert_invariants(runtime)


async def test_uneven_holds_racing_fill_the_limit_without_passing_it(runtime, live_server) -> None:  # type: ignore[no-untyped-def]
    """Holds of 2 and 3 seats racing for a limit of 7: whatever wins, the total stays <= 7."""
    shows = await concert_with_shows(runtime, 10, seats=6)
    concert_id = shows[0]["concert_id"]
    await set_limits(runtime, concert_id=concert_id, limit=7)
    fan = await make_user(runtime)
    holds = [(s["show_id"], s["seat_ids"][: 2 + i % 2]) for i, s in enumerate(shows)]
    answers = await _fire(live_server, runtime, fan, holds)
    won = sum(len(r.json()["seats"]) for r in answers if r.status_code == 201)
    assert {r.json()["code"] for r in answers if r.status_code != 201} == {"TICKET_LIMIT_REACHED"}
    assert 5 <= won <= 7  # at least 5: after any winners short of 5, a 2-seat hold still fitted
    assert await live_seats(runtime, fan["id"], concert_id) == won
    assert (await counted(runtime, fan["id"]))[("concert", concert_id)] == won
    await assert_invariants(runtime)

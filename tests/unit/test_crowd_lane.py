"""The crowd lane: the waiting room's requests enter the app a few per pass of the event loop, so a
buyer's request (or a buyer's next step) is never stuck behind the whole crowd, and every parked
request is still served, in arrival order."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope, Send

from boxoffice.http.shedding import CrowdLane, ShedMiddleware
from boxoffice.observability import Metrics

PER_PASS = 8
CROWD = 200


async def test_a_buyer_step_waits_behind_at_most_one_turn_of_the_crowd() -> None:
    lane = CrowdLane(PER_PASS)
    order: list[str] = []

    async def fan(i: int) -> None:
        await lane.turn()
        order.append(f"crowd {i}")

    async def buyer() -> None:
        order.append("buyer")

    crowd = [asyncio.create_task(fan(i)) for i in range(CROWD)]
    await asyncio.sleep(0)  # every fan of the crowd has arrived and parked
    await asyncio.sleep(0)  # the lane has let its first turn go
    # A buyer's step becomes ready now, behind whatever the lane released: one turn, not the crowd.
    buying = asyncio.create_task(buyer())
    await asyncio.gather(*crowd, buying)
    assert order.index("buyer") <= PER_PASS
    assert [name for name in order if name != "buyer"] == [f"crowd {i}" for i in range(CROWD)]


async def test_a_fan_who_left_while_parked_does_not_take_a_turn_and_the_lane_rests_when_empty() -> None:
    lane = CrowdLane(1)
    served: list[int] = []

    async def fan(i: int) -> None:
        await lane.turn()
        served.append(i)

    gone = asyncio.create_task(fan(0))
    staying = asyncio.create_task(fan(1))
    await asyncio.sleep(0)
    gone.cancel()  # the client disconnected while parked
    await staying
    assert served == [1]
    assert lane._armed is False and not lane._waiting  # nothing keeps the loop spinning
    await fan(2)  # and it comes back for the next fan
    assert served == [1, 2]


async def test_the_middleware_lets_buyers_through_ahead_of_the_crowd() -> None:
    """Through ShedMiddleware: 200 status polls arrive at once, then a hold; the app sees the hold
    before all but one turn of the polls, and every poll is still answered."""
    reached: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    middleware = ShedMiddleware(
        app, metrics=Metrics(), lag_threshold_ms=0.0, retry_after_seconds=2, crowd_per_pass=PER_PASS
    )
    answers: list[int] = []

    async def request(method: str, path: str) -> None:
        scope: dict[str, Any] = {"type": "http", "method": method, "path": path, "headers": []}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answers.append(message["status"])

        await middleware(scope, receive, send)

    polls = [asyncio.create_task(request("GET", "/api/queue/status")) for _ in range(CROWD)]
    await asyncio.sleep(0)  # the polls arrived and parked
    await asyncio.sleep(0)  # the lane let its first turn go
    hold = asyncio.create_task(request("POST", "/api/reservations"))
    await asyncio.gather(*polls, hold)
    assert reached.index("/api/reservations") <= PER_PASS
    assert answers.count(200) == CROWD + 1

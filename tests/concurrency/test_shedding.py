"""Admitted buyers first: while this process's event loop really lags (a CPU hog in the server's own
loop), waiting-room polls are shed with 429 + Retry-After, and not one hold or payment is refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from boxoffice.app import create_app
from boxoffice.config import Settings
from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import assert_invariants, gated
from tests.integration.test_queue_cheap_polls import fresh_boards
from tests.integration.test_queue_support import tick

BUYERS = 12
POLLERS = 30


@pytest.fixture
async def shedding_server(settings: Settings, runtime: Runtime) -> AsyncIterator[str]:
    """A real uvicorn server of an app with shedding on (the suite's own app has it off)."""
    app = create_app(settings.model_copy(update={"shed_loop_lag_ms": 30.0}), runtime=runtime)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def _hog(stop: asyncio.Event, busy_seconds: float = 0.08) -> None:
    """Overload: the loop is busy 80 ms at a time (what a flood of requests does to it)."""
    while not stop.is_set():
        time.sleep(busy_seconds)  # blocking on purpose: this is the overload
        await asyncio.sleep(0)


async def test_polls_are_shed_and_holds_and_payments_never(
    shedding_server: str, live_server: str, runtime: Runtime
) -> None:
    show = await make_show(runtime, seats=BUYERS * 2, max_seats=2)
    sid, cid = show["show_id"], show["concert_id"]
    q = {"concert_id": cid, "show_id": sid}
    buyers = [await make_user(runtime, balance=1_000_000) for _ in range(BUYERS)]
    pollers = [await make_user(runtime) for _ in range(POLLERS)]
    # Idle connections are dropped by the client well before the server's keep-alive timeout
    # (5 s): on a loaded machine a reused connection could otherwise meet the server's close.
    limits = httpx.Limits(keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=shedding_server, timeout=60, limits=limits) as c:
        tickets = []
        for fan in pollers:
            joined = await c.post("/api/queue", json=q, headers=fan["headers"])
            assert joined.status_code == 200, joined.text
            tickets.append({**fan["headers"], "X-Queue-Ticket": joined.json()["queue_ticket"]})

        admitted = (await tick(runtime, sid)).admitted_users  # the first few are served
        assert admitted and len(admitted) < POLLERS
        served = [h for fan, h in zip(pollers, tickets, strict=True) if fan["id"] in admitted]
        fresh_boards(runtime)
        board = await c.get("/api/queue/status", params=q, headers=tickets[-1])  # loads the board
        assert board.status_code == 200 and board.json()["status"] == "WAITING"

        stop = asyncio.Event()
        hog = asyncio.create_task(_hog(stop))
        try:
            await asyncio.sleep(0.3)  # let the lag probe see it

            async def poll(headers: dict[str, str]) -> list[httpx.Response]:
                return [await c.get("/api/queue/status", params=q, headers=headers) for _ in range(3)]

            async def buy(i: int, fan: dict[str, Any]) -> tuple[httpx.Response, httpx.Response | None]:
                seats = show["seat_ids"][2 * i : 2 * i + 2]
                hold = await c.post(
                    "/api/reservations",
                    json={"show_id": sid, "seat_ids": seats},
                    headers=gated(runtime, fan, sid, f"hold-{i}"),
                )
                if hold.status_code != 201:
                    return hold, None
                pay = await c.post(
                    "/api/payments",
                    json={"reservation_id": hold.json()["reservation_id"], "method": "BALANCE"},
                    headers=gated(runtime, fan, sid, f"pay-{i}"),
                )
                return hold, pay

            polled, bought, ready = await asyncio.gather(
                asyncio.gather(*(poll(h) for h in tickets)),
                asyncio.gather(*(buy(i, f) for i, f in enumerate(buyers))),
                asyncio.gather(*(poll(h) for h in served)),
            )
        finally:
            stop.set()
            await hog

        polls = [r for batch in polled for r in batch]
        shed = [r for r in polls if r.status_code == 429]
        assert shed, "the lagging loop shed no poll"
        for r in shed:
            assert r.json()["code"] == "QUEUE_BUSY" and 2 <= int(r.headers["retry-after"]) <= 4
        assert all(r.status_code in (200, 429) for r in polls), {r.status_code for r in polls}
        # a served fan is about to buy: its poll is never shed, it learns READY
        for batch in ready:
            assert [r.status_code for r in batch] == [200] * 3
            assert batch[-1].json()["status"] == "READY" and batch[-1].json()["token"]
        for hold, pay in bought:
            assert hold.status_code == 201, hold.text  # never shed, never refused
            assert pay is not None and pay.status_code in (200, 201), pay.text if pay else None

        # the lag gone, polls are answered again
        deadline = time.monotonic() + 15
        while (await c.get("/api/queue/status", params=q, headers=tickets[0])).status_code != 200:
            assert time.monotonic() < deadline, "polls still shed after the overload ended"
            await asyncio.sleep(0.1)
        metrics = (await c.get("/metrics")).text
        # the same overload with shedding off (the suite's app) sheds nothing: it is the setting
        async with httpx.AsyncClient(base_url=live_server, timeout=60) as plain:
            stop = asyncio.Event()
            hog = asyncio.create_task(_hog(stop))
            try:
                await asyncio.sleep(0.3)
                answers = [await plain.get("/api/queue/status", params=q, headers=h) for h in tickets[:5]]
            finally:
                stop.set()
                await hog
        assert [r.status_code for r in answers] == [200] * 5
    assert 'boxoffice_shed_total{route="/api/queue/status"}' in metrics
    await assert_invariants(runtime)

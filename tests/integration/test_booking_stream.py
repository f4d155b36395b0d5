"""Live seats: a watcher of GET /api/shows/{id}/seats/stream sees holds and releases as SSE."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from boxoffice.db.outbox import relay_once
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import assert_invariants, gated


async def _next_seat_event(lines: Any) -> dict[str, Any]:
    async for line in lines:
        if line.startswith("data: "):
            return dict(json.loads(line[len("data: ") :]))
    raise AssertionError("stream ended")


async def test_stream_pushes_seat_changes(runtime, live_server):  # type: ignore[no-untyped-def]
    show = await make_show(runtime, seats=4)
    sid, s = show["show_id"], show["seat_ids"]
    watcher, buyer = await make_user(runtime), await make_user(runtime)
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as c:
        denied = await c.get(f"/api/shows/{sid}/seats/stream", headers=watcher["headers"])
        assert denied.status_code == 401
        async with c.stream(
            "GET", f"/api/shows/{sid}/seats/stream", headers=gated(runtime, watcher, sid)
        ) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            lines = resp.aiter_lines()
            assert (await lines.__anext__()).startswith("retry:")
            held = await c.post(
                "/api/reservations",
                json={"show_id": sid, "seat_ids": s[:2]},
                headers=gated(runtime, buyer, sid),
            )
            assert held.status_code == 201
            await relay_once(runtime)
            event = await asyncio.wait_for(_next_seat_event(lines), 5)
            assert (
                event["type"] == "seat.held"
                and event["seat_ids"] == s[:2]
                and event["status"] == "TEMP_RESERVED"
            )
            rid = held.json()["reservation_id"]
            assert (await c.delete(f"/api/reservations/{rid}", headers=buyer["headers"])).status_code == 200
            await relay_once(runtime)
            event = await asyncio.wait_for(_next_seat_event(lines), 5)
            assert (
                event["type"] == "seat.released"
                and event["status"] == "AVAILABLE"
                and event["seat_ids"] == s[:2]
            )
    await assert_invariants(runtime)

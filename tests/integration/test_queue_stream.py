"""Server-Sent Events: the waiting browser gets its position, then READY with a token, pushed."""

from __future__ import annotations

import asyncio
import json

import httpx

from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.integration.test_queue_support import make_show, tick


async def test_stream_pushes_position_then_ready(live_server: str, runtime: Runtime) -> None:
    show = await make_show(runtime, admit_per_second=1)
    first, fan = await make_user(runtime), await make_user(runtime)
    q = {"concert_id": show["concert_id"], "show_id": show["id"]}
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as c:
        await c.post("/api/queue", json=show["body"], headers=first["headers"])
        await c.post("/api/queue", json=show["body"], headers=fan["headers"])
        events: list[dict[str, object]] = []

        async def read() -> None:
            async with c.stream("GET", "/api/queue/stream", params=q, headers=fan["headers"]) as resp:
                assert resp.status_code == 200
                assert resp.headers["content-type"].startswith("text/event-stream")
                async for line in resp.aiter_lines():
                    if line.startswith("data: "):
                        events.append(json.loads(line[6:]))

        reader = asyncio.create_task(read())
        for _ in range(100):
            if events:
                break
            await asyncio.sleep(0.05)
        assert events and events[0]["status"] == "WAITING" and events[0]["position"] == 2
        await tick(runtime, show["id"])  # half a second of credit at 1/s: nobody yet
        runtime.clock.advance(1)  # type: ignore[attr-defined]
        await tick(runtime, show["id"])  # admits `first`
        runtime.clock.advance(1)  # type: ignore[attr-defined]
        await tick(runtime, show["id"])  # admits `fan`
        await asyncio.wait_for(reader, timeout=10)  # the stream ends itself on READY
    assert events[-1]["status"] == "READY" and events[-1]["token"]
    assert [e["status"] for e in events].count("READY") == 1


async def test_stream_errors_are_problem_json(client: httpx.AsyncClient, runtime: Runtime) -> None:
    fan = await make_user(runtime)
    resp = await client.get(
        "/api/queue/stream", params={"concert_id": 1, "show_id": 999999}, headers=fan["headers"]
    )
    assert resp.status_code == 404 and resp.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/queue/stream", params={"concert_id": 1, "show_id": 1})).status_code == 401


async def test_openapi_describes_the_queue_routes(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    paths = doc["paths"]
    for path in (
        "/api/queue",
        "/api/queue/status",
        "/api/queue/stream",
        "/api/reservations/token",
        "/api/shows/{show_id}/queue/fairness",
        "/api/admin/shows/{show_id}/queue",
        "/api/admin/shows/{show_id}/queue/pause",
        "/api/admin/shows/{show_id}/queue/resume",
    ):
        assert path in paths, path
    assert "text/event-stream" in paths["/api/queue/stream"]["get"]["responses"]["200"]["content"]

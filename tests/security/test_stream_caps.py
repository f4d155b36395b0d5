"""Live streams are capped per user and per process (429 STREAM_LIMIT), and a closed stream gives
its slot back: one fan's hundred seat streams can no longer empty the process's Redis pool."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time

import httpx

from boxoffice.app import create_app
from boxoffice.redis.streams import StreamSlots
from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.server import serve
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import gated


async def test_seat_streams_are_capped_per_user_and_per_process(runtime: Runtime) -> None:
    show = await make_show(runtime, seats=4)
    fan, other = await make_user(runtime), await make_user(runtime)
    rt = dataclasses.replace(runtime, streams=StreamSlots(per_user=2, per_process=3))
    app = create_app(runtime.settings, runtime=rt)
    url = f"/api/shows/{show['show_id']}/seats/stream"
    async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=20) as client:
        async with contextlib.AsyncExitStack() as streams:

            async def open_stream(user: dict) -> httpx.Response:  # type: ignore[type-arg]
                request = client.build_request("GET", url, headers=gated(runtime, user, show["show_id"]))
                resp = await client.send(request, stream=True)
                if resp.status_code == 200:
                    streams.push_async_callback(resp.aclose)
                else:
                    await resp.aread()
                    await resp.aclose()
                return resp

            first, second = await open_stream(fan), await open_stream(fan)
            assert first.status_code == second.status_code == 200
            third = await open_stream(fan)
            assert third.status_code == 429 and third.json()["code"] == "STREAM_LIMIT"
            assert int(third.headers["retry-after"]) >= 1
            assert (await open_stream(other)).status_code == 200  # the process's third stream
            full = await open_stream(other)
            assert full.status_code == 429 and full.json()["code"] == "STREAM_LIMIT"
            await first.aclose()  # a closed stream gives its slot back
            deadline = time.monotonic() + 20
            while rt.streams.total > 2:
                assert time.monotonic() < deadline, "the closed stream's slot was not released"
                await asyncio.sleep(0.05)
            assert (await open_stream(fan)).status_code == 200
        deadline = time.monotonic() + 20
        while rt.streams.total:
            assert time.monotonic() < deadline, f"{rt.streams.total} stream slots leaked"
            await asyncio.sleep(0.05)

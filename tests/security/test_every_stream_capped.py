"""Every live stream takes one of the user's stream slots (issue 26, finding 6).

The web's queue stream (and the gRPC WatchQueue, and the admin dashboards) opened without one,
while the seat streams were capped: one fan could hold any number of them open. Now every route
streams through `StreamSlots.open` / `.slot`, which take the slot before the stream starts.
"""

from __future__ import annotations

import contextlib
import dataclasses

import grpc
import httpx
import pytest

from boxoffice.app import create_app
from boxoffice.grpc import ticket_pb2 as pb
from boxoffice.grpc.server import start_server
from boxoffice.redis.streams import StreamSlots
from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.server import serve
from tests.helpers.shows import make_show
from tests.integration.grpc_support import error_info, meta, ticket_stub
from tests.integration.test_web_layer import HTML, _signup


async def test_the_web_queue_stream_is_capped_per_user(runtime: Runtime) -> None:
    show = await make_show(runtime, seats=4)
    rt = dataclasses.replace(runtime, streams=StreamSlots(per_user=1, per_process=10))
    app = create_app(runtime.settings, runtime=rt)
    url = f"/web/queue/{show['show_id']}/stream?concert_id={show['concert_id']}"
    async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=20, headers=HTML) as web:
        assert (await _signup(web, "streams@example.test")).status_code == 303
        login = await web.post(
            "/api/auth/login", json={"email": "streams@example.test", "password": "correct horse"}
        )
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        body = {"concert_id": show["concert_id"], "show_id": show["show_id"]}
        assert (await web.post("/api/queue", json=body, headers=bearer)).status_code in (200, 201)
        async with contextlib.AsyncExitStack() as open_streams:
            first = await web.send(web.build_request("GET", url), stream=True)
            open_streams.push_async_callback(first.aclose)
            assert first.status_code == 200, await first.aread()
            second = await web.send(web.build_request("GET", url), stream=True)
            await second.aread()
            await second.aclose()
            assert second.status_code == 429 and second.json()["code"] == "STREAM_LIMIT", second.text


async def test_the_grpc_queue_watch_is_capped_per_user(runtime: Runtime) -> None:
    show = await make_show(runtime, seats=4)
    fan = await make_user(runtime)
    rt = dataclasses.replace(runtime, streams=StreamSlots(per_user=1, per_process=10))
    server, port = await start_server(rt, "127.0.0.1", 0)
    try:
        async with ticket_stub(f"127.0.0.1:{port}") as stub:
            request = pb.QueueRequest(concert_id=show["concert_id"], show_id=show["show_id"])
            await stub.JoinQueue(request, metadata=meta(fan))
            first = stub.WatchQueue(request, metadata=meta(fan))
            assert await first.read() is not None  # the first watch is live
            second = stub.WatchQueue(request, metadata=meta(fan))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await second.read()
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert error_info(caught.value).reason == "STREAM_LIMIT"
            first.cancel()
    finally:
        await server.stop(0)


async def test_the_web_waitlist_stream_is_capped_per_user(runtime: Runtime) -> None:
    from tests.integration.test_waitlist import hold, settle_inventory

    show = await make_show(runtime, seats=1)
    holder = await make_user(runtime)
    rt = dataclasses.replace(runtime, streams=StreamSlots(per_user=1, per_process=10))
    app = create_app(runtime.settings, runtime=rt)
    url = f"/web/shows/{show['show_id']}/waitlist/stream"
    async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=20, headers=HTML) as web:
        assert (await hold(web, runtime, holder, show, show["seat_ids"][0])).status_code == 201
        await settle_inventory(runtime, show["show_id"])  # LAST_SEATS_HELD: the waitlist opens
        assert (await _signup(web, "waitlist-streams@example.test")).status_code == 303
        login = await web.post(
            "/api/auth/login", json={"email": "waitlist-streams@example.test", "password": "correct horse"}
        )
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        joined = await web.post(f"/api/shows/{show['show_id']}/waitlist", headers=bearer)
        assert joined.status_code == 200 and joined.json()["status"] == "WAITING", joined.text
        async with contextlib.AsyncExitStack() as open_streams:
            first = await web.send(web.build_request("GET", url), stream=True)
            open_streams.push_async_callback(first.aclose)
            assert first.status_code == 200, await first.aread()
            lines = first.aiter_lines()
            while await anext(lines) != "event: waitlist":
                pass
            assert '"status":"WAITING"' in await anext(lines)  # the place now; the stream stays open
            second = await web.send(web.build_request("GET", url), stream=True)
            await second.aread()
            await second.aclose()
            assert second.status_code == 429 and second.json()["code"] == "STREAM_LIMIT", second.text

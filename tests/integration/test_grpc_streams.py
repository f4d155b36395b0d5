"""Live seats across the doors: a hold over HTTP reaches a gRPC WatchSeats within 1 s, a hold over
gRPC reaches the SSE seat stream within 1 s (the real outbox relay runs meanwhile), and a
WatchSeats resumes after the last event it saw (or, from a position the stream lost, says reset)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import httpx
import pytest

from boxoffice.grpc import ticket_pb2 as pb
from boxoffice.runtime import Runtime
from boxoffice.worker import all_jobs, run_worker
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.grpc_support import error_info, meta, ticket_stub
from tests.integration.test_booking_support import assert_invariants, gated

WITHIN = 1.0  # seconds from the hold's answer to the watcher


@asynccontextmanager
async def relay(runtime: Runtime) -> AsyncIterator[None]:
    """The worker's outbox relay job, as `boxoffice worker` runs it."""
    stop = asyncio.Event()
    relay_job = [job for job in all_jobs(runtime.settings) if job.name == "outbox_relay"]
    assert relay_job, "the worker has an outbox_relay job"
    task = asyncio.create_task(run_worker(runtime, stop, relay_job))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_http_hold_reaches_grpc_watch_within_a_second(
    runtime: Runtime, grpc_target: str, client: httpx.AsyncClient
) -> None:
    show = await make_show(runtime, seats=4)
    sid, seats = show["show_id"], show["seat_ids"]
    watcher, buyer = await make_user(runtime), await make_user(runtime)
    async with relay(runtime), ticket_stub(grpc_target) as stub:
        watch = stub.WatchSeats(
            pb.WatchSeatsRequest(show_id=sid), metadata=meta(watcher, runtime=runtime, show_id=sid)
        )
        await asyncio.wait_for(watch.initial_metadata(), 10)  # the watch is established
        held = await client.post(
            "/api/reservations",
            json={"show_id": sid, "seat_ids": seats[:2]},
            headers=gated(runtime, buyer, sid),
        )
        assert held.status_code == 201
        answered = time.monotonic()
        event = await asyncio.wait_for(watch.read(), 10)
        took = time.monotonic() - answered
        assert event.type == "seat.held" and list(event.seat_ids) == seats[:2]
        assert event.status == pb.SEAT_STATUS_TEMP_RESERVED and event.show_id == sid
        assert event.reservation_id == held.json()["reservation_id"] and event.event_id and event.id
        assert took < WITHIN, f"the hold reached the gRPC watcher after {took:.2f} s"
        watch.cancel()

        # Resume: a new watch after the first event's id sees what happened since (the release).
        rid = held.json()["reservation_id"]
        assert (await client.delete(f"/api/reservations/{rid}", headers=buyer["headers"])).status_code == 200
        resumed = stub.WatchSeats(
            pb.WatchSeatsRequest(show_id=sid, last_event_id=event.id),
            metadata=meta(watcher, runtime=runtime, show_id=sid),
        )
        again = await asyncio.wait_for(resumed.read(), 10)
        assert again.type == "seat.released" and list(again.seat_ids) == seats[:2]
        assert again.status == pb.SEAT_STATUS_AVAILABLE and again.id > event.id
        resumed.cancel()

        # A position the stream no longer holds: `seats.reset` first (ListSeats again), at the newest.
        stale = stub.WatchSeats(
            pb.WatchSeatsRequest(show_id=sid, last_event_id="1-0"),
            metadata=meta(watcher, runtime=runtime, show_id=sid),
        )
        reset = await asyncio.wait_for(stale.read(), 10)
        assert reset.type == "seats.reset" and reset.show_id == sid and reset.id >= again.id
        stale.cancel()
    await assert_invariants(runtime)


async def test_grpc_hold_reaches_the_sse_stream_within_a_second(
    runtime: Runtime, grpc_target: str, live_server: str
) -> None:
    show = await make_show(runtime, seats=4)
    sid, seats = show["show_id"], show["seat_ids"]
    watcher, buyer = await make_user(runtime), await make_user(runtime)
    async with (
        relay(runtime),
        ticket_stub(grpc_target) as stub,
        httpx.AsyncClient(base_url=live_server, timeout=10) as c,
        c.stream("GET", f"/api/shows/{sid}/seats/stream", headers=gated(runtime, watcher, sid)) as resp,
    ):
        assert resp.status_code == 200
        lines = resp.aiter_lines()
        assert (await asyncio.wait_for(lines.__anext__(), 10)).startswith("retry:")
        hold = await stub.Hold(
            pb.HoldRequest(show_id=sid, seat_ids=seats[2:]),
            metadata=meta(buyer, runtime=runtime, show_id=sid),
        )
        answered = time.monotonic()

        async def next_data() -> dict[str, object]:
            async for line in lines:
                if line.startswith("data: "):
                    return dict(json.loads(line[len("data: ") :]))
            raise AssertionError("stream ended")

        event = await asyncio.wait_for(next_data(), 10)
        took = time.monotonic() - answered
        assert event["type"] == "seat.held" and event["seat_ids"] == seats[2:]
        assert event["reservation_id"] == hold.reservation_id
        assert took < WITHIN, f"the gRPC hold reached the SSE watcher after {took:.2f} s"
    await assert_invariants(runtime)


async def test_grpc_watches_share_the_stream_caps_and_give_their_slot_back(
    runtime: Runtime, grpc_target: str
) -> None:
    """WatchSeats takes the same per-user slots as the SSE streams: past the cap it answers
    RESOURCE_EXHAUSTED STREAM_LIMIT, and a cancelled watch gives its slot back."""
    show = await make_show(runtime, seats=2)
    sid = show["show_id"]
    fan = await make_user(runtime)
    cap = runtime.streams.per_user
    before = runtime.streams.total
    async with ticket_stub(grpc_target) as stub:

        def watch() -> grpc.aio.UnaryStreamCall:  # type: ignore[type-arg]
            return stub.WatchSeats(
                pb.WatchSeatsRequest(show_id=sid), metadata=meta(fan, runtime=runtime, show_id=sid)
            )

        watches = [watch() for _ in range(cap)]
        for w in watches:
            await asyncio.wait_for(w.initial_metadata(), 10)
        assert runtime.streams.total == before + cap
        refused = watch()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await asyncio.wait_for(refused.read(), 10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_info(err.value).reason == "STREAM_LIMIT"
        watches.pop().cancel()
        deadline = time.monotonic() + 10
        while runtime.streams.total >= before + cap:
            assert time.monotonic() < deadline, "the cancelled watch kept its slot"
            await asyncio.sleep(0.05)
        again = watch()
        await asyncio.wait_for(again.initial_metadata(), 10)
        for w in [*watches, again]:
            w.cancel()
    deadline = time.monotonic() + 10
    while runtime.streams.total > before:
        assert time.monotonic() < deadline, f"{runtime.streams.total - before} watch slots leaked"
        await asyncio.sleep(0.05)

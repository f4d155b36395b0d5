"""gRPC under contention: 1,000 Hold calls at once from 200 fans on the same 10 seats (one winner
per seat, every loser a clean ABORTED/FAILED_PRECONDITION naming the seats, the database audited),
and 1,000 streams opened and cancelled without leaking server tasks or Redis connections."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from sqlalchemy import text

from boxoffice.grpc import ticket_pb2 as pb
from boxoffice.grpc import ticket_pb2_grpc as pb_grpc
from boxoffice.redis.streams import StreamSlots
from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.grpc_support import error_info, meta, ticket_stub
from tests.integration.test_booking_support import assert_invariants

pytestmark = pytest.mark.slow

USERS, ATTEMPTS, SEATS, CHANNELS = 200, 1000, 10, 20


async def test_grpc_hold_burst_one_winner_per_seat(runtime: Runtime, grpc_target: str) -> None:
    show = await make_show(runtime, seats=SEATS)
    sid, seat_ids = show["show_id"], show["seat_ids"]
    users = [await make_user(runtime) for _ in range(USERS)]
    metas = [meta(u, runtime=runtime, show_id=sid) for u in users]
    rng = random.Random(7)
    plan = [(i % USERS, rng.sample(seat_ids, rng.choice([1, 1, 2, 3]))) for i in range(ATTEMPTS)]
    channels = [grpc.aio.insecure_channel(grpc_target) for _ in range(CHANNELS)]
    stubs = [pb_grpc.TicketServiceStub(c) for c in channels]  # type: ignore[no-untyped-call]
    for c in channels:
        await asyncio.wait_for(c.channel_ready(), 10)
    gate = asyncio.Event()

    async def attempt(i: int, user: int, seats: list[int]) -> tuple[Any, ...]:
        await gate.wait()
        try:
            hold = await stubs[i % CHANNELS].Hold(
                pb.HoldRequest(show_id=sid, seat_ids=seats), metadata=metas[user]
            )
        except grpc.aio.AioRpcError as exc:
            return ("lost", seats, exc.code(), error_info(exc))
        return ("won", seats, hold)

    try:
        tasks = [asyncio.create_task(attempt(i, u, s)) for i, (u, s) in enumerate(plan)]
        await asyncio.sleep(0.05)
        gate.set()
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks), 120)
    finally:
        for c in channels:
            await c.close()

    won = [o[2] for o in outcomes if o[0] == "won"]
    lost = [o for o in outcomes if o[0] == "lost"]
    assert len(won) + len(lost) == ATTEMPTS
    reasons = Counter((o[2], o[3].reason) for o in lost)
    assert set(reasons) <= {
        (grpc.StatusCode.ABORTED, "SEATS_TAKEN"),
        (grpc.StatusCode.FAILED_PRECONDITION, "HOLD_EXISTS"),
    }, reasons
    for _, asked, _code, info in lost:
        if info.reason == "SEATS_TAKEN":  # names the taken seats, among those asked for
            named = {int(s) for s in info.metadata["seat_ids"].split(",")}
            assert named and named <= set(asked), (named, asked)
    seats_won = [s.id for h in won for s in h.seats]
    assert len(seats_won) == len(set(seats_won)), "a seat was held twice"
    assert sorted(seats_won) == seat_ids, "every seat has exactly one winner"
    async with runtime.sessions() as s:
        rows = (
            await s.execute(
                text("SELECT id, reservation_id FROM seats WHERE show_id = :s AND status <> 'AVAILABLE'"),
                {"s": sid},
            )
        ).all()
    assert dict(rows) == {seat.id: h.reservation_id for h in won for seat in h.seats}
    await assert_invariants(runtime)


async def _redis_clients(runtime: Runtime) -> tuple[int, int]:
    info = await runtime.redis.info("clients")
    return int(info["connected_clients"]), int(info["blocked_clients"])


async def _settled(
    runtime: Runtime, tasks_before: int, clients_before: int, deadline: float = 15.0
) -> tuple[int, int, int]:
    """Poll until the server's tasks and Redis clients are back near where they started."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        tasks = len(asyncio.all_tasks())
        clients, blocked = await _redis_clients(runtime)
        if (
            tasks <= tasks_before + 2 and clients <= clients_before + 2 and blocked == 0
        ) or loop.time() > end:
            return tasks, clients, blocked
        await asyncio.sleep(0.1)


@pytest.fixture
def uncapped_streams(runtime: Runtime) -> Iterator[None]:
    """One fan opening 60 streams at once: past the per-user cap that every stream has (its own
    tests are in tests/security/test_every_stream_capped.py), which is not what this test measures."""
    capped, runtime.streams = runtime.streams, StreamSlots(10_000, 10_000)
    yield
    runtime.streams = capped


@pytest.mark.usefixtures("uncapped_streams")
async def test_cancelled_streams_free_their_resources(runtime: Runtime, grpc_target: str) -> None:
    show = await make_show(runtime, seats=2)
    sid = show["show_id"]
    fan = await make_user(runtime)
    seat_meta = meta(fan, runtime=runtime, show_id=sid)
    queue_req = pb.QueueRequest(concert_id=show["concert_id"], show_id=sid)
    async with ticket_stub(grpc_target) as stub:
        await stub.JoinQueue(queue_req, metadata=meta(fan))

        async def seats_cycle() -> None:
            call = stub.WatchSeats(pb.WatchSeatsRequest(show_id=sid), metadata=seat_meta)
            await asyncio.wait_for(call.initial_metadata(), 10)
            call.cancel()

        async def queue_cycle() -> None:
            call = stub.WatchQueue(queue_req, metadata=meta(fan))
            first = await asyncio.wait_for(call.read(), 10)
            assert first.status == pb.QUEUE_STATE_WAITING
            call.cancel()

        await asyncio.gather(*(seats_cycle() for _ in range(10)), *(queue_cycle() for _ in range(10)))
        tasks_before, _, _ = await _settled(runtime, 10**6, 10**6, deadline=0)
        clients_before, _ = await _redis_clients(runtime)
        await _settled(runtime, tasks_before, clients_before, deadline=5)
        tasks_before = len(asyncio.all_tasks())
        clients_before, _ = await _redis_clients(runtime)

        # 1,000 WatchSeats and 200 WatchQueue, 60 open at a time.
        for _ in range(20):
            await asyncio.gather(*(seats_cycle() for _ in range(50)), *(queue_cycle() for _ in range(10)))
        pool_size = runtime.settings.redis_pool_size
        tasks, clients, blocked = await _settled(runtime, tasks_before, clients_before + pool_size)
    assert blocked == 0, f"{blocked} Redis clients still blocked in XREAD"
    assert tasks <= tasks_before + 2, f"tasks {tasks_before} -> {tasks}"
    assert clients <= clients_before + pool_size, f"Redis clients {clients_before} -> {clients}"
    # Every pooled connection is back: as many commands at once as the pool holds all get one.
    await asyncio.wait_for(asyncio.gather(*(runtime.redis.ping() for _ in range(pool_size))), 3)


async def test_a_crowd_of_calls_is_answered_not_cancelled(runtime: Runtime, grpc_target: str) -> None:
    """gRPC core's default cancels calls at random past 1,000 waiting to be picked up; a flash
    sale's first second is exactly that, so the server lets them queue and answers every one."""
    fan = await make_user(runtime)
    async with ticket_stub(grpc_target) as stub:

        async def one() -> grpc.StatusCode:
            try:
                await stub.GetReservation(pb.ReservationRef(reservation_id=-1), metadata=meta(fan))
            except grpc.aio.AioRpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

        codes = Counter(await asyncio.wait_for(asyncio.gather(*(one() for _ in range(2500))), 120))
    assert codes == {grpc.StatusCode.INVALID_ARGUMENT: 2500}, codes

"""The promise of seed 004: 1,000 hold attempts at once on the same seats, never an overbooking.

Every attempt is a real HTTP request over its own connection to a real uvicorn server; the
database is asserted on afterwards. Also with Redis stopped halfway (a dedicated Redis server) and
with Redis flushed halfway: PostgreSQL alone still refuses every double sale.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from boxoffice.app import create_app
from boxoffice.ops.backends.redis import EmbeddedRedis
from boxoffice.runtime import Runtime, open_runtime
from tests.factories import make_user
from tests.helpers.server import serve
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import assert_invariants, queue_token

pytestmark = pytest.mark.slow

USERS = 200
ATTEMPTS = 1000
SEATS = 10


async def _users(runtime: Runtime, show_id: int) -> list[dict[str, Any]]:
    users = [await make_user(runtime) for _ in range(USERS)]
    for u in users:
        u["headers"] = {**u["headers"], "X-Queue-Token": queue_token(runtime, u["id"], show_id)}
    return users


def _plan(
    seat_ids: list[int], users: list[dict[str, Any]], n: int, seed: int
) -> list[tuple[dict[str, Any], list[int]]]:
    rng = random.Random(seed)
    return [(users[i % len(users)], rng.sample(seat_ids, rng.choice([1, 1, 2, 3]))) for i in range(n)]


async def _fire(
    base_url: str, show_id: int, plan: list[tuple[dict[str, Any], list[int]]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(plan), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as c:
        return await asyncio.gather(
            *(
                c.post(
                    "/api/reservations", json={"show_id": show_id, "seat_ids": seats}, headers=u["headers"]
                )
                for u, seats in plan
            )
        )


async def _assert_one_winner_per_seat(
    runtime: Runtime, show_id: int, responses: list[httpx.Response]
) -> None:
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses  # every loser gets a clean 409, never a 5xx
    won = [r.json() for r in responses if r.status_code == 201]
    seats_won = [s["id"] for body in won for s in body["seats"]]
    assert len(seats_won) == len(set(seats_won)), "a seat was sold twice"
    codes = Counter(r.json()["code"] for r in responses if r.status_code == 409)
    assert set(codes) <= {"SEATS_TAKEN", "HOLD_EXISTS"}, codes
    async with runtime.sessions() as s:
        rows = (
            await s.execute(
                text("SELECT id, reservation_id FROM seats WHERE show_id = :s AND status <> 'AVAILABLE'"),
                {"s": show_id},
            )
        ).all()
        live = (
            await s.execute(
                text("SELECT count(*) FROM reservations WHERE show_id = :s AND status = 'TEMP_RESERVED'"),
                {"s": show_id},
            )
        ).scalar_one()
    by_seat = {seat: rid for seat, rid in rows}
    expected = {s["id"]: body["reservation_id"] for body in won for s in body["seats"]}
    assert by_seat == expected
    assert live == len(won)
    await assert_invariants(runtime)


async def test_burst_one_winner_per_seat(runtime, live_server):  # type: ignore[no-untyped-def]
    show = await make_show(runtime, seats=SEATS)
    users = await _users(runtime, show["show_id"])
    responses = await _fire(live_server, show["show_id"], _plan(show["seat_ids"], users, ATTEMPTS, seed=1))
    await _assert_one_winner_per_seat(runtime, show["show_id"], responses)
    assert sum(1 for r in responses if r.status_code == 201) >= 1
    # most refusals came from the shield, without PostgreSQL
    refused = runtime.metrics.holds.labels("shield_refused")._value.get()
    assert refused > 0


async def test_burst_with_redis_flushed_halfway(runtime, live_server):  # type: ignore[no-untyped-def]
    show = await make_show(runtime, seats=SEATS)
    users = await _users(runtime, show["show_id"])
    plan = _plan(show["seat_ids"], users, ATTEMPTS, seed=2)
    first = await _fire(live_server, show["show_id"], plan[: ATTEMPTS // 2])
    await runtime.redis.flushall()
    second = await _fire(live_server, show["show_id"], plan[ATTEMPTS // 2 :])
    await _assert_one_winner_per_seat(runtime, show["show_id"], first + second)


async def test_burst_with_redis_stopped_halfway(settings, backends, clock, tmp_path, runtime):  # type: ignore[no-untyped-def]
    redis_server = EmbeddedRedis(tmp_path, persist=False)
    redis_server.start()
    small = settings.model_copy(update={"db_pool_size": 10, "db_pool_overflow": 10})
    try:
        async with open_runtime(small, backends.database_url, redis_server.url, clock=clock) as rt:
            async with serve(create_app(small, runtime=rt)) as base:
                show = await make_show(rt, seats=SEATS)
                users = await _users(rt, show["show_id"])
                plan = _plan(show["seat_ids"], users, ATTEMPTS, seed=3)
                first = await _fire(base, show["show_id"], plan[: ATTEMPTS // 2])
                redis_server.stop()
                second = await _fire(base, show["show_id"], plan[ATTEMPTS // 2 :])
                assert rt.metrics.holds.labels("shield_skipped")._value.get() > 0
                await _assert_one_winner_per_seat(runtime, show["show_id"], first + second)
    finally:
        redis_server.stop()

"""Concurrency with real Redis over separate connections: one place per user under a join storm,
distinct tickets for concurrent joiners, and admission workers ticking together never over-admit."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import httpx

from boxoffice.config import Settings
from boxoffice.kit.clock import OffsetClock
from boxoffice.runtime import Runtime, open_runtime
from boxoffice.waiting_room import flows, service, store
from tests.factories import make_user
from tests.integration.test_queue_support import make_show


async def test_100_concurrent_joins_by_one_user_keep_one_ticket(live_server: str, runtime: Runtime) -> None:
    show = await make_show(runtime)
    fan = await make_user(runtime)
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=live_server, timeout=30, limits=limits) as c:
        responses = await asyncio.gather(
            *(c.post("/api/queue", json=show["body"], headers=fan["headers"]) for _ in range(100))
        )
    assert all(r.status_code == 200 for r in responses), {r.status_code for r in responses}
    assert {r.json()["position"] for r in responses} == {1}
    k = store.keys(show["id"])
    assert await runtime.redis.hgetall(k.members) == {str(fan["id"]).encode(): b"1"}  # type: ignore[misc]
    assert await runtime.redis.get(k.next) == b"1"


async def test_concurrent_joiners_get_distinct_consecutive_tickets(runtime: Runtime) -> None:
    show = await make_show(runtime)
    users = list(range(1, 301))
    views = await asyncio.gather(*(service.join(runtime, u, show["concert_id"], show["id"]) for u in users))
    assert sorted(v.position for v in views) == list(range(1, 301))  # type: ignore[type-var]
    members = await runtime.redis.hgetall(store.keys(show["id"]).members)  # type: ignore[misc]
    assert sorted(int(t) for t in members.values()) == list(range(1, 301))


async def test_workers_ticking_together_never_admit_past_max_active(
    runtime: Runtime, settings: Settings, clock: OffsetClock
) -> None:
    max_active = 7
    show = await make_show(runtime, admit_per_second=1000, max_active=max_active)
    sid = show["id"]
    for u in range(1, 201):
        await service.join(runtime, u, show["concert_id"], sid)
    async with AsyncExitStack() as stack:
        # four workers, each with its own PostgreSQL and Redis pools (separate connections)
        workers = [
            await stack.enter_async_context(
                open_runtime(settings, runtime.database_url, runtime.redis_url, clock=clock)
            )
            for _ in range(4)
        ]
        admitted: list[int] = []
        for round_no in range(40):
            results = await asyncio.gather(*(flows.tick_show(w, sid) for _ in range(3) for w in workers))
            for r in results:
                assert r is not None
                admitted.extend(r.admitted_users)
            active = await store.active_users(runtime.redis, sid)
            assert len(active) <= max_active, (round_no, active)
            # two buyers pay, so room opens for the next round
            for uid in active[:2]:
                await service.issue_release_lease(runtime.hot_redis, sid, uid)
            clock.advance(0.5)
    assert len(admitted) == len(set(admitted))  # never admitted twice
    # user u holds ticket u: admission stayed in queue order when the admitted are exactly the first n
    assert sorted(admitted) == list(range(1, len(admitted) + 1))
    assert len(admitted) == max_active + 2 * 39  # every round refilled exactly the freed room

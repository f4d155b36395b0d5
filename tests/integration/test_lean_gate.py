"""Lean units of work (the hot writes' one statement) past the pool's size queue on a cheap
semaphore, never in the pool's own wait: at most pool_size of them hold a connection at once, and
the pool's overflow stays for the ORM's requests."""

from __future__ import annotations

import asyncio

from sqlalchemy.pool import QueuePool

from boxoffice.db.uow import lean_unit_of_work
from boxoffice.runtime import Runtime


async def test_lean_writes_past_the_pool_size_wait_their_turn(runtime: Runtime) -> None:
    pool = runtime.engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    size = pool.size()
    inside = peak = 0

    async def one() -> int:
        nonlocal inside, peak
        async with lean_unit_of_work(runtime.engine) as uow:
            inside += 1
            peak = max(peak, inside)
            value = int(await uow.conn.fetchval("SELECT 1 FROM pg_sleep(0.02)"))
            inside -= 1
        return value

    results = await asyncio.gather(*(one() for _ in range(3 * size)))
    assert results == [1] * (3 * size)
    assert peak == size  # all the permits were used, never more
    assert pool.checkedout() == 0  # every connection went back

"""Lean units of work (the hot writes' one statement) past the pool's size queue on a cheap
semaphore, never in the pool's own wait: at most pool_size of them hold a connection at once, and
the pool's overflow stays for the ORM's requests. Between lean writes their connections stay out
of the pool, idle for the next one (SQLAlchemy's checkout and check-in were ~42 µs of CPU a write),
and go back once unused for a second, or when the runtime closes."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from boxoffice.db.uow import _LeanPool, close_lean, lean_unit_of_work
from boxoffice.runtime import Runtime


@pytest.fixture(autouse=True)
async def _no_idle_lean_connections(runtime: Runtime) -> None:
    """Each test starts with every connection in the pool (an earlier test's lean writes keep
    theirs for a second)."""
    await close_lean(runtime.engine)


def _pool(runtime: Runtime) -> QueuePool:
    pool = runtime.engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    return pool


async def _back_in_pool(pool: QueuePool) -> None:
    """Wait (bounded) for the unused connections' return: IDLE_SECONDS and a check-in each."""
    for _ in range(100):
        if pool.checkedout() == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{pool.checkedout()} connections still out of the pool")


async def test_lean_writes_past_the_pool_size_wait_their_turn(runtime: Runtime) -> None:
    pool = _pool(runtime)
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
    assert pool.checkedout() == size  # kept for the next lean writes, no more than the permits
    await asyncio.sleep(_LeanPool.IDLE_SECONDS / 2)
    assert pool.checkedout() == size  # not before they were unused for IDLE_SECONDS
    await _back_in_pool(pool)


async def test_the_next_lean_write_reuses_the_connection_without_the_pool(runtime: Runtime) -> None:
    pool = _pool(runtime)
    seen = []
    for _ in range(5):
        async with lean_unit_of_work(runtime.engine) as uow:
            seen.append(uow.conn)
            assert await uow.conn.fetchval("SELECT 1") == 1
    assert all(conn is seen[0] for conn in seen)
    assert pool.checkedout() == 1
    await close_lean(runtime.engine)
    assert pool.checkedout() == 0  # closing the runtime gives them back before the dispose


async def test_a_connection_the_server_closed_is_not_handed_out(runtime: Runtime) -> None:
    async with lean_unit_of_work(runtime.engine) as uow:
        first = uow.conn
        pid = first.get_server_pid()
    async with runtime.sessions() as session:  # another connection ends the idle one's backend
        assert (await session.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})).scalar()
    for _ in range(100):  # the loop reads the server's goodbye
        if first.is_closed():
            break
        await asyncio.sleep(0.02)
    async with lean_unit_of_work(runtime.engine) as uow:
        assert uow.conn is not first
        assert await uow.conn.fetchval("SELECT 1") == 1


async def test_a_write_cut_off_mid_statement_is_not_reused(runtime: Runtime) -> None:
    pool = _pool(runtime)
    started = asyncio.Event()
    cut: list[object] = []

    async def slow() -> None:
        async with lean_unit_of_work(runtime.engine) as uow:
            cut.append(uow.conn)
            started.set()
            await uow.conn.fetchval("SELECT pg_sleep(5)")

    task = asyncio.create_task(slow())
    await started.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with lean_unit_of_work(runtime.engine) as uow:
        assert uow.conn is not cut[0]  # invalidated: its state was unknown
        assert await uow.conn.fetchval("SELECT 1") == 1
    assert pool.checkedout() == 1


async def test_a_refused_statement_leaves_the_connection_reusable(runtime: Runtime) -> None:
    with pytest.raises(asyncpg.DivisionByZeroError):
        async with lean_unit_of_work(runtime.engine) as uow:
            first = uow.conn
            await uow.conn.fetchval("SELECT 1 / 0")
    async with lean_unit_of_work(runtime.engine) as uow:
        assert uow.conn is first
        assert await uow.conn.fetchval("SELECT 2") == 2

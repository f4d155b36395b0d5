"""Ceilings: the raw rates of the building blocks, measured from this process the same way the app
uses them, so every rate of a run can stand next to the most it could be on this machine.

- Redis: the booking shield's hold Lua script (EVALSHA through redis-py), one call at a time per
  connection and pipelined.
- PostgreSQL: the seat-hold statement (UPDATE ... WHERE id = ANY($1) AND status = 'AVAILABLE'
  RETURNING id, in its own transaction) on a scratch copy of the seats table, N connections.
- HTTP: GET /healthz on the target through the same load client as the fans.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Any

from boxoffice.bench import repository
from boxoffice.bench.client import HttpError, HttpPool, StepStats, own_cpu_seconds

SEATS_PER_HOLD = 2
KEYSPACE = 50_000


def hold_script() -> tuple[str, str]:
    """(lua, source): the booking shield's own script, so the ceiling measures what holds run."""
    from boxoffice.booking.shield import MARK

    return MARK.source, "boxoffice.booking.shield"


def _rate_summary(stats: StepStats, calls: int, wall: float, cpu: float) -> dict[str, Any]:
    summary = stats.summary()
    return {
        "per_second": round(calls / wall, 1) if wall else None,
        "calls": calls,
        "seconds": round(wall, 2),
        "latency_ms": summary["latency_ms"],
        "client_cores_busy": round(cpu / wall, 2) if wall else None,
    }


async def redis_hold(
    redis_url: str, seconds: float, concurrency: int = 32, depth: int = 50
) -> dict[str, Any]:
    from redis.asyncio import Redis, RedisCluster
    from redis.asyncio.connection import BlockingConnectionPool

    from boxoffice.redis.client import detect_cluster, plain_redis_url

    lua, source = hold_script()
    cluster = await detect_cluster(redis_url)
    pool = None
    if cluster:  # one show = one slot = one master: the ceiling of a show's holds
        redis: Redis | RedisCluster = RedisCluster.from_url(
            plain_redis_url(redis_url), max_connections=concurrency
        )
    else:
        pool = BlockingConnectionPool.from_url(redis_url, max_connections=concurrency, timeout=10)
        redis = Redis(connection_pool=pool)
    script = redis.register_script(lua)
    namespace = f"bo:{{bench-ceiling-{os.getpid()}}}:held:"
    rng = random.Random(7)

    def keys() -> list[str]:
        start = rng.randrange(KEYSPACE)
        return [f"{namespace}{start + i}" for i in range(SEATS_PER_HOLD)]

    def args(owner: int) -> list[int]:
        now = int(time.time() * 1000)
        return [owner, now, now + 300, 2_000]  # holds live 0.3 s: a steady mix of wins and refusals

    async def single(owner: int, until: float, stats: StepStats, t0: float) -> int:
        n = 0
        while time.perf_counter() < until:
            started = time.perf_counter() - t0
            await script(keys=keys(), args=args(owner))
            stats.record(started, time.perf_counter() - t0, True)
            n += 1
        return n

    async def piped(owner: int, until: float, stats: StepStats, t0: float) -> int:
        n = 0
        while time.perf_counter() < until:
            started = time.perf_counter() - t0
            pipe: Any = redis.pipeline(transaction=False)
            for _ in range(depth):
                await script(keys=keys(), args=args(owner), client=pipe)
            await pipe.execute()
            stats.record(started, time.perf_counter() - t0, True)
            n += depth
        return n

    result: dict[str, Any] = {
        "script": source,
        "seats_per_call": SEATS_PER_HOLD,
        "connections": concurrency,
        "cluster": cluster,
    }
    try:
        await script(keys=keys(), args=args(0))  # load the script (EVALSHA from here on)
        # redis-py's cluster pipeline refuses EVALSHA: on a cluster only the single-call rate.
        variants = (("single", single),) if cluster else (("single", single), ("pipelined", piped))
        for name, body in variants:
            stats = StepStats(name)
            t0 = time.perf_counter()
            cpu0 = own_cpu_seconds()
            until = t0 + seconds
            counts = await asyncio.gather(*(body(i + 1, until, stats, t0) for i in range(concurrency)))
            wall = time.perf_counter() - t0
            result[name] = _rate_summary(stats, sum(counts), wall, own_cpu_seconds() - cpu0)
        if not cluster:
            result["pipelined"]["depth"] = depth
    finally:
        await redis.aclose()
        if pool is not None:
            await pool.disconnect()
    return result


async def postgres_hold(database_url: str, seconds: float, connections: int = 16) -> dict[str, Any]:
    import asyncpg

    from boxoffice.db.uow import plain_url

    table = f"bench_ceiling_seats_{os.getpid()}"
    per_conn = 10_000
    url = plain_url(database_url)
    admin = await asyncpg.connect(url)
    conns: list[asyncpg.Connection] = []
    try:
        await repository.create_scratch_seats(admin, table, connections * per_conn)
        conns = list(await asyncio.gather(*(asyncpg.connect(url) for _ in range(connections))))
        hold = repository.scratch_hold_sql(table)
        reset = repository.scratch_reset_sql(table)
        stats = StepStats("pg_hold")

        async def run(index: int, conn: asyncpg.Connection, until: float, t0: float) -> tuple[int, int]:
            stmt = await conn.prepare(hold)
            base = index * per_conn + 1
            cursor = 0
            won = refused = 0
            while time.perf_counter() < until:
                if cursor + SEATS_PER_HOLD > per_conn:
                    await conn.execute(reset, base, base + per_conn - 1)
                    cursor = 0
                ids = [base + cursor + i for i in range(SEATS_PER_HOLD)]
                cursor += SEATS_PER_HOLD
                started = time.perf_counter() - t0
                async with conn.transaction():
                    rows = await stmt.fetch(ids, index)
                stats.record(started, time.perf_counter() - t0, True)
                if len(rows) == SEATS_PER_HOLD:
                    won += 1
                else:
                    refused += 1
            return won, refused

        t0 = time.perf_counter()
        cpu0 = own_cpu_seconds()
        outcomes = await asyncio.gather(*(run(i, c, t0 + seconds, t0) for i, c in enumerate(conns)))
        wall = time.perf_counter() - t0
        won = sum(o[0] for o in outcomes)
        summary = _rate_summary(stats, won + sum(o[1] for o in outcomes), wall, own_cpu_seconds() - cpu0)
        summary.update(
            {
                "won": won,
                "connections": connections,
                "seats_per_hold": SEATS_PER_HOLD,
                "statement": hold.strip(),
            }
        )
        return summary
    finally:
        for conn in conns:
            await conn.close()
        try:
            await repository.drop_scratch_seats(admin, table)
        finally:
            await admin.close()


async def http_trivial(base_url: str, seconds: float, concurrency: int = 64) -> dict[str, Any]:
    pool = HttpPool(base_url, size=concurrency)
    stats = StepStats("healthz")
    errors = 0

    async def run(until: float, t0: float) -> int:
        nonlocal errors
        n = 0
        while time.perf_counter() < until:
            started = time.perf_counter() - t0
            try:
                response = await pool.request("GET", "/healthz")
                ok = response.status == 200
            except HttpError:
                ok = False
            stats.record(started, time.perf_counter() - t0, ok)
            errors += not ok
            n += 1
        return n

    try:
        await pool.warm(concurrency)
        t0 = time.perf_counter()
        cpu0 = own_cpu_seconds()
        counts = await asyncio.gather(*(run(t0 + seconds, t0) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        result = _rate_summary(stats, sum(counts), wall, own_cpu_seconds() - cpu0)
        result.update({"path": "/healthz", "connections": concurrency, "errors": errors})
        return result
    finally:
        await pool.close()


async def measure(
    *,
    database_url: str,
    redis_url: str,
    base_url: str | None,
    seconds: float,
    pg_connections: int = 16,
    http_concurrency: int = 64,
    redis_connections: int = 32,
) -> dict[str, Any]:
    """All ceilings, one after the other (never concurrently: each gets the whole machine)."""
    started = time.perf_counter()
    result: dict[str, Any] = {
        "seconds_each": seconds,
        "redis_hold_lua": await redis_hold(redis_url, seconds, redis_connections),
        "postgres_hold_update": await postgres_hold(database_url, seconds, pg_connections),
        "http_trivial": await http_trivial(base_url, seconds, http_concurrency) if base_url else None,
    }
    result["measured_in_seconds"] = round(time.perf_counter() - started, 1)
    return result

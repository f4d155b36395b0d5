"""Runtime: the long-lived resources an entrypoint opens once (pools, clients, metrics, clock).

The API lifespan, the worker and CLI commands each open one with `open_runtime` and pass it down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from boxoffice.clock import Clock, SystemClock
from boxoffice.config import Settings
from boxoffice.db import create_engine, session_factory
from boxoffice.observability import Metrics
from boxoffice.redis_client import create_redis


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    redis_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    http: httpx.AsyncClient
    metrics: Metrics = field(default_factory=Metrics)
    clock: Clock = field(default_factory=SystemClock)

    async def check_database(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def check_redis(self) -> None:
        await self.redis.ping()


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    database_url: str,
    redis_url: str,
    *,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
) -> AsyncIterator[Runtime]:
    engine = create_engine(settings, database_url)
    redis = create_redis(settings, redis_url)
    http = httpx.AsyncClient(
        timeout=settings.payment_provider_timeout_seconds,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
    )
    runtime = Runtime(
        settings=settings,
        database_url=database_url,
        redis_url=redis_url,
        engine=engine,
        sessions=session_factory(engine),
        redis=redis,
        http=http,
        metrics=metrics or Metrics(),
        clock=clock or SystemClock(),
    )
    try:
        yield runtime
    finally:
        await http.aclose()
        await redis.aclose()
        await engine.dispose()

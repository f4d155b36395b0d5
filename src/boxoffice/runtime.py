"""Runtime: the long-lived resources an entrypoint opens once (pools, clients, metrics, clock).

The API lifespan, the worker and CLI commands each open one with `open_runtime` and pass it down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
import structlog
from argon2 import PasswordHasher
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from boxoffice.config import Settings
from boxoffice.db import warm
from boxoffice.db.uow import close_lean, create_engine, session_factory
from boxoffice.kit.clock import Clock, SystemClock
from boxoffice.kit.failures import FailureLog
from boxoffice.kit.limits import PasswordWork
from boxoffice.kit.localcache import LocalCache, WriteBehind
from boxoffice.observability import Metrics
from boxoffice.redis.client import RedisClient, create_redis, detect_cluster
from boxoffice.redis.mux import MuxRedis
from boxoffice.redis.streams import StreamHub, StreamSlots


class Component(Protocol):
    def discard(self) -> None: ...

    async def aclose(self) -> None: ...


C = TypeVar("C", bound=Component)

log = structlog.get_logger("boxoffice.runtime")


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    redis_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: RedisClient
    # The hot paths' Redis (polls, joins, holds, the deny-list): one multiplexed connection per
    # process (per cluster master); everything else uses `redis`. See redis_mux.py for why.
    hot_redis: MuxRedis
    redis_cluster: bool
    http: httpx.AsyncClient
    metrics: Metrics = field(default_factory=Metrics)
    failures: FailureLog = field(default_factory=FailureLog)
    password_work: PasswordWork = field(default_factory=PasswordWork)
    streams: StreamSlots = field(default_factory=lambda: StreamSlots(4, 32))
    # The process's one reader per watched Redis event stream, shared by every live stream of it.
    stream_hub: StreamHub = field(default_factory=StreamHub)
    clock: Clock = field(default_factory=SystemClock)
    # Per-process caches for the hot paths (see localcache.py for what may live in them).
    show_rules: LocalCache[int, Any] = field(
        default_factory=lambda: LocalCache(ttl_seconds=2, max_entries=10_000)
    )
    # Tokens whose signature this process already checked: one cache per token type, keyed by the
    # exact token string, so a token of one kind can never be found as another kind (an admission
    # token presented as a bearer token is just an unknown access token). An entry lives as long
    # as its token (put's ttl); the expiry and the deny-list are checked on every use.
    access_tokens: LocalCache[str, Any] = field(  # values: auth.tokens.AccessClaims
        default_factory=lambda: LocalCache(ttl_seconds=60, max_entries=50_000)
    )
    queue_tokens: LocalCache[str, Any] = field(  # values: waiting_room.tokens.QueueClaims
        default_factory=lambda: LocalCache(ttl_seconds=60, max_entries=50_000)
    )
    queue_tickets: LocalCache[str, Any] = field(  # values: waiting_room.tokens.QueueTicket
        default_factory=lambda: LocalCache(ttl_seconds=60, max_entries=50_000)
    )
    # The web layer's refresh single-flight (web/session.py): the rotation a browser's concurrent
    # requests share, keyed by a digest of the refresh token and the browser's CSRF secret.
    web_refreshes: LocalCache[str, Any] = field(  # values: auth.schemas.TokenPair
        default_factory=lambda: LocalCache(ttl_seconds=60, max_entries=50_000)
    )
    # Access tokens the deny-list let through in the last second (queue polls may rely on it).
    recently_allowed: LocalCache[str, bool] = field(
        default_factory=lambda: LocalCache(ttl_seconds=1.0, max_entries=200_000)
    )
    # The waiting room's shared view of each show's serving number (read from Redis at most every
    # 200 ms per process), the queue tickets found stale, and the batched `seen` marks of polls.
    queue_boards: LocalCache[int, Any] = field(
        default_factory=lambda: LocalCache(ttl_seconds=0.2, max_entries=10_000)
    )
    queue_gone: LocalCache[tuple[int, int, int], bool] = field(
        default_factory=lambda: LocalCache(ttl_seconds=300, max_entries=100_000)
    )
    queue_seen: WriteBehind[int, int, tuple[int, int]] = field(default_factory=lambda: WriteBehind(1.0))
    # Per-process state a domain keeps on the runtime without the runtime importing the domain
    # (the sale statistics' in-memory counters): created on first use by `component`, discarded
    # with the local caches, closed with the runtime.
    components: dict[str, Component] = field(default_factory=dict)

    def component(self, name: str, create: Callable[[], C]) -> C:
        found = self.components.get(name)
        if found is None:
            found = self.components[name] = create()
        return found  # type: ignore[return-value]

    def clear_local_caches(self) -> None:
        for component in self.components.values():
            component.discard()  # e.g. counts not flushed yet belong to data that is being wiped
        self.show_rules = LocalCache(self.show_rules.ttl, self.show_rules.max_entries)
        self.access_tokens = LocalCache(self.access_tokens.ttl, self.access_tokens.max_entries)
        self.queue_tokens = LocalCache(self.queue_tokens.ttl, self.queue_tokens.max_entries)
        self.queue_tickets = LocalCache(self.queue_tickets.ttl, self.queue_tickets.max_entries)
        self.web_refreshes = LocalCache(self.web_refreshes.ttl, self.web_refreshes.max_entries)
        self.recently_allowed = LocalCache(self.recently_allowed.ttl, self.recently_allowed.max_entries)
        self.queue_boards = LocalCache(self.queue_boards.ttl, self.queue_boards.max_entries)
        self.queue_gone = LocalCache(self.queue_gone.ttl, self.queue_gone.max_entries)
        self.queue_seen.cancel()  # a flush scheduled for the old data must not write into the new
        self.queue_seen = WriteBehind(self.queue_seen.interval)

    async def check_database(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def check_redis(self) -> None:
        await self.redis.ping()

    async def warm_up(self, connections: int) -> None:
        """Open pool connections before traffic: a flash sale's first second must not pay for
        connects (asyncpg type introspection, Redis handshakes) while thousands of requests wait.
        Each connection plans the buyers' hot statements once (db/warm.py), so the first holds of a
        sale do not load PostgreSQL's catalogs. A backend that is down costs nothing more here:
        the pools connect once it is back."""
        db_conns = await asyncio.gather(
            *(self.engine.connect() for _ in range(min(connections, self.settings.db_pool_size))),
            return_exceptions=True,
        )
        opened = [conn for conn in db_conns if not isinstance(conn, BaseException)]
        warmed = await asyncio.gather(*(_warm_statements(conn) for conn in opened), return_exceptions=True)
        failed = [w for w in warmed if isinstance(w, Exception)]
        if failed:  # the statements run unwarmed (and still work): say why, once
            log.warning("warm_up_failed", connections=len(failed), error=repr(failed[0])[:300])
        await asyncio.gather(*(conn.close() for conn in opened))
        redis_conns = min(connections, self.settings.redis_pool_size)
        await asyncio.gather(*(self.redis.ping() for _ in range(redis_conns)), return_exceptions=True)


async def _warm_statements(conn: AsyncConnection) -> None:
    raw = await conn.get_raw_connection()
    await warm.warm(raw.driver_connection)


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
    cluster = await detect_cluster(redis_url)
    redis = create_redis(settings, redis_url, cluster=cluster)
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
        hot_redis=MuxRedis(redis_url, timeout=5.0, cluster=cluster),
        redis_cluster=cluster,
        http=http,
        metrics=metrics or Metrics(),
        clock=clock or SystemClock(),
        password_work=PasswordWork(
            settings.argon2_concurrency,
            settings.argon2_max_waiting,
            PasswordHasher(
                time_cost=settings.argon2_time_cost,
                memory_cost=settings.argon2_memory_kib,
                parallelism=settings.argon2_parallelism,
            ),
        ),
        streams=StreamSlots(settings.max_streams_per_user, settings.max_streams_per_process),
    )
    try:
        yield runtime
    finally:
        await runtime.stream_hub.aclose()
        for component in runtime.components.values():
            await component.aclose()
        await runtime.hot_redis.aclose()
        await http.aclose()
        await redis.aclose()
        await close_lean(engine)
        await engine.dispose()

"""The seat map of a show: built from PostgreSQL once per version (single-flight through a Redis
lock), kept in Redis (catalog/cache.py), refreshed from the seat statuses only (a show's layout
never changes), served as JSON bytes."""

from __future__ import annotations

import asyncio
import uuid

import structlog
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.catalog import cache, repository
from boxoffice.catalog.schemas import (
    SeatStatus,
)
from boxoffice.errors import (
    ShowNotFound,
)
from boxoffice.runtime import Runtime

log = structlog.get_logger("boxoffice.catalog")

COLD_READ_WAIT_SECONDS = 5.0  # a reader waits this long for another process's rebuild, then reads itself
COLD_READ_POLL_SECONDS = 0.02


async def seat_statuses(session: AsyncSession, show_id: int) -> tuple[int, str]:
    """(first seat id, one letter per seat in id order: A/T/R) straight from PostgreSQL."""
    summary = await repository.fetch_status_summary(session, show_id)
    if summary["n"] == 0:
        return 0, ""
    if summary["n"] == summary["top"] - summary["base"] + 1:
        return int(summary["base"]), str(summary["chars"])
    pairs = await repository.fetch_seat_statuses(session, show_id)
    return int(summary["base"]), cache.status_string(
        int(summary["base"]), summary["top"] - summary["base"] + 1, pairs
    ).decode()


async def _load_seat_map(runtime: Runtime, show_id: int) -> cache.BuiltSeatMap:
    async with runtime.sessions() as session:
        rows = await repository.fetch_seat_rows(session, show_id)
        if not rows:
            if not await repository.show_exists(session, show_id):
                raise ShowNotFound(f"Show {show_id} not found", show_id=show_id)
    return cache.build_seat_map([cache.SeatRow(*r) for r in rows])


async def _load_statuses(runtime: Runtime, show_id: int, base: int, span: int) -> bytes | None:
    """The current statuses aligned with a cached layout, or None when the layout no longer fits."""
    async with runtime.sessions() as session:
        summary = await repository.fetch_status_summary(session, show_id)
        if summary["n"] == 0 or summary["base"] != base or summary["top"] - base + 1 != span:
            return None
        if summary["n"] == span:  # contiguous ids (the usual case): PostgreSQL built the string
            return str(summary["chars"]).encode()
        pairs = await repository.fetch_seat_statuses(session, show_id)
    return cache.status_string(base, span, pairs)


async def _rebuild(runtime: Runtime, show_id: int, token: str, gen: str) -> cache.BuiltSeatMap | None:
    """Holding the lock: read the whole map from PostgreSQL and store it. -> the map to serve when it
    was invalidated meanwhile (so not stored), else None (the caller re-reads Redis)."""
    try:
        built = await _load_seat_map(runtime, show_id)
    except BaseException:
        await cache.release_lock(runtime.redis, show_id, token)
        raise
    version = await cache.store_seat_map(runtime.redis, show_id, token, gen, built, full=True)
    return built if version is None else None


async def _refresh(runtime: Runtime, show_id: int, token: str, gen: str, cached: cache.CachedSeatMap) -> None:
    """Holding the lock: re-read only the statuses (the layout of a show never changes)."""
    try:
        base = await cache.cached_base(runtime.redis, show_id)
        status = None if base is None else await _load_statuses(runtime, show_id, base, len(cached.status))
    except BaseException:
        await cache.release_lock(runtime.redis, show_id, token)
        raise
    if status is None or base is None:
        await cache.release_lock(runtime.redis, show_id, token)
        await cache.invalidate_seat_map(runtime.redis, show_id)
        return
    built = cache.BuiltSeatMap(base=base, layout=cached.layout, status=status)
    await cache.store_seat_map(runtime.redis, show_id, token, gen, built, full=False)


async def seat_map(runtime: Runtime, show_id: int, status: SeatStatus | None = None) -> bytes:
    """The seat map as JSON bytes {show_id, version, seats}, served from Redis.

    Cold: one reader (Redis SET NX lock) rebuilds from PostgreSQL while the others wait for it, so
    a stampede of cold reads costs one query. Warm but older than FRESH_MS: one reader re-reads the
    statuses while the others serve the cached copy (patched on every committed change anyway).
    Redis down: read PostgreSQL directly (the map is a cache; losing it loses nothing).
    """
    try:
        return await _seat_map_cached(runtime, show_id, status)
    except RedisError:
        log.warning("seat_map_cache_unavailable", show_id=show_id)
        built = await _load_seat_map(runtime, show_id)
        return cache.render(show_id, 0, built.layout, built.status, status)


async def _seat_map_cached(runtime: Runtime, show_id: int, status: SeatStatus | None) -> bytes:
    redis = runtime.redis
    token = uuid.uuid4().hex
    loop = asyncio.get_running_loop()
    deadline = loop.time() + COLD_READ_WAIT_SECONDS
    refreshed = False
    while True:
        cached = await cache.read_seat_map(redis, show_id)
        if cached is not None and (cached.fresh or refreshed):
            return cache.render(show_id, cached.version, cached.layout, cached.status, status)
        gen = await cache.try_lock(redis, show_id, token)
        if gen is None:
            if cached is not None:  # another reader is refreshing: this copy is patched anyway
                return cache.render(show_id, cached.version, cached.layout, cached.status, status)
        else:
            # Double-check under the lock: the previous holder may have stored it just now.
            current = await cache.read_seat_map(redis, show_id)
            if current is not None and current.fresh:
                await cache.release_lock(redis, show_id, token)
                return cache.render(show_id, current.version, current.layout, current.status, status)
            if current is not None:
                refreshed = True
                await _refresh(runtime, show_id, token, gen, current)
                continue
            built = await _rebuild(runtime, show_id, token, gen)
            if built is not None:
                return cache.render(show_id, 0, built.layout, built.status, status)
            continue
        if loop.time() > deadline:
            # The rebuilder is stuck: answer from PostgreSQL rather than keep the fan waiting.
            built = await _load_seat_map(runtime, show_id)
            return cache.render(show_id, 0, built.layout, built.status, status)
        await asyncio.sleep(COLD_READ_POLL_SECONDS)

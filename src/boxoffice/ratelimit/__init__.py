"""Per-user and per-address limits: 429 + Retry-After with a problem code (RATE_LIMITED).

Fixed windows in Redis, shared by every API process. Fail open: when Redis does not answer, the
limit is not enforced (a limiter must not stop a sale that PostgreSQL can still serve).
"""

from __future__ import annotations

from collections.abc import Awaitable

import structlog
from redis.exceptions import RedisError

from boxoffice.errors import RateLimited, TooManyRequests
from boxoffice.ratelimit import store
from boxoffice.runtime import Runtime

log = structlog.get_logger("boxoffice.ratelimit")


async def enforce(
    runtime: Runtime,
    scope: str,
    subject: str | int,
    *,
    limit: int,
    window_seconds: int = 60,
    error: type[TooManyRequests] = RateLimited,
    detail: str | None = None,
) -> None:
    await begin(runtime, scope, subject, limit=limit, window_seconds=window_seconds).enforce(error, detail)


class Hit:
    """One event counted against a limit: its Redis command is written when `begin` returns, and
    `await hit.enforce()` judges the reply. Other Redis work issued in between shares the one wait
    for the replies (a hold's admission check)."""

    __slots__ = ("_reply", "runtime", "scope")

    def __init__(self, runtime: Runtime, scope: str, reply: Awaitable[list[int]] | None) -> None:
        self.runtime = runtime
        self.scope = scope
        self._reply = reply

    async def enforce(self, error: type[TooManyRequests] = RateLimited, detail: str | None = None) -> None:
        if self._reply is None:
            return
        try:
            allowed, retry_after = store.verdict(await self._reply)
        except RedisError as exc:
            log.warning("rate_limit_unavailable", scope=self.scope, error=type(exc).__name__)
            return
        if not allowed:
            self.runtime.metrics.rate_limited.labels(self.scope).inc()
            raise error(
                detail or f"Too many requests ({self.scope}); retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
                retry_after_seconds=retry_after,
            )


def begin(runtime: Runtime, scope: str, subject: str | int, *, limit: int, window_seconds: int = 60) -> Hit:
    """Count one event now (fail open: no limit when Redis does not answer); enforce it later."""
    if limit <= 0:
        return Hit(runtime, scope, None)
    key = store.key(scope, subject)
    return Hit(runtime, scope, store.hit(runtime.hot_redis, key, limit=limit, window_seconds=window_seconds))


async def clear(runtime: Runtime, scope: str, subject: str | int) -> None:
    try:
        await store.clear(runtime.hot_redis, store.key(scope, subject))
    except RedisError:
        pass

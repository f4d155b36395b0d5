"""Per-user and per-address limits: 429 + Retry-After with a problem code (RATE_LIMITED).

Fixed windows in Redis, shared by every API process. Fail open: when Redis does not answer, the
limit is not enforced (a limiter must not stop a sale that PostgreSQL can still serve).
"""

from __future__ import annotations

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
    if limit <= 0:
        return
    try:
        allowed, retry_after = await store.hit(
            runtime.hot_redis, store.key(scope, subject), limit=limit, window_seconds=window_seconds
        )
    except RedisError as exc:
        log.warning("rate_limit_unavailable", scope=scope, error=type(exc).__name__)
        return
    if not allowed:
        runtime.metrics.rate_limited.labels(scope).inc()
        raise error(
            detail or f"Too many requests ({scope}); retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
            retry_after_seconds=retry_after,
        )


async def clear(runtime: Runtime, scope: str, subject: str | int) -> None:
    try:
        await store.clear(runtime.hot_redis, store.key(scope, subject))
    except RedisError:
        pass

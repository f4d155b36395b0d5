"""Redis connection pool (TCP, TLS or unix socket URLs)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.connection import BlockingConnectionPool

from boxoffice.config import Settings


def create_redis(settings: Settings, url: str) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.redis_pool_size,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
        decode_responses=False,
        # No CLIENT SETINFO per connection: it costs a round trip and an importlib.metadata
        # lookup each time the pool grows, which is exactly when a burst arrives.
        driver_info=None,
    )
    return Redis(connection_pool=pool)

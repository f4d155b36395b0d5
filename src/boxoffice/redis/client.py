"""The Redis clients of a process, and the one Lua-script helper.

Two clients, one per kind of use: `RedisClient` (redis-py's pooled client: pipelines, streams,
blocking reads, admin jobs) and `MuxRedis` (redis_mux.py: single commands and scripts on the hot
paths). Both speak to a single server or to a Redis Cluster. Cluster mode is detected: an explicit
`redis+cluster://host:port` URL says so, otherwise the node named by `redis://host:port` is asked
(`INFO cluster` -> `cluster_enabled:1`). Any node of the cluster will do; the others are learned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Generator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import BlockingConnectionPool
from redis.exceptions import NoScriptError, RedisError

from boxoffice.config import Settings
from boxoffice.redis.mux import Arg, Issued, MuxRedis

RedisClient = Redis | RedisCluster
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


class Script:
    """A Lua script, defined once at import (module level) and run by SHA on either client:
    EVALSHA, and EVAL when the server (a fresh node, a promoted replica) does not know it yet."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()  # Redis names scripts so

    async def __call__(self, redis: RedisClient | MuxRedis, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
        except NoScriptError:
            return await redis.eval(self.source, len(keys), *keys, *args)  # type: ignore[no-untyped-call]

    def issue(self, redis: MuxRedis, keys: Sequence[Arg], args: Sequence[Arg]) -> Awaitable[Any]:
        """EVALSHA written now (MuxRedis.issue); awaiting the result gives the reply, by EVAL when
        the server did not know the script."""
        return _ScriptReply(
            self, redis, keys, args, redis.issue("EVALSHA", self.sha, len(keys), *keys, *args)
        )


class _ScriptReply:
    __slots__ = ("_args", "_keys", "_redis", "_reply", "_script")

    def __init__(
        self, script: Script, redis: MuxRedis, keys: Sequence[Arg], args: Sequence[Arg], reply: Issued
    ) -> None:
        self._script, self._redis, self._keys, self._args, self._reply = script, redis, keys, args, reply

    def __await__(self) -> Generator[Any, None, Any]:
        return self._settle().__await__()

    async def _settle(self) -> Any:
        try:
            return await self._reply
        except NoScriptError:
            return await self._redis.eval(self._script.source, len(self._keys), *self._keys, *self._args)


def plain_redis_url(url: str) -> str:
    """The URL without the `+cluster` marker (what redis-py and redis-cli understand)."""
    parts = urlsplit(url)
    if parts.scheme not in CLUSTER_SCHEMES:
        return url
    return urlunsplit((CLUSTER_SCHEMES[parts.scheme], *parts[1:]))


async def detect_cluster(url: str) -> bool:
    """Cluster or single server. A node that does not answer at start-up is taken for a single
    server (the process still starts and /readyz says Redis is down): production cluster
    deployments therefore name the mode with `redis+cluster://`."""
    if urlsplit(url).scheme in CLUSTER_SCHEMES:
        return True
    probe = MuxRedis(url, timeout=5.0)
    try:
        info: bytes = await probe.execute("INFO", "cluster")
    except RedisError:
        return False
    finally:
        await probe.aclose()
    return b"cluster_enabled:1" in info


def create_redis(settings: Settings, url: str, *, cluster: bool) -> RedisClient:
    options: dict[str, Any] = {
        "socket_timeout": 5,
        "socket_connect_timeout": 2,
        "health_check_interval": 30,
        "decode_responses": False,
        # No CLIENT SETINFO per connection: it costs a round trip and an importlib.metadata
        # lookup each time the pool grows, which is exactly when a burst arrives.
        "driver_info": None,
    }
    if cluster:
        # redis-py follows MOVED/ASK and re-reads the slot table after errors (failover).
        return RedisCluster.from_url(
            plain_redis_url(url), max_connections=settings.redis_pool_size, **options
        )
    pool = BlockingConnectionPool.from_url(
        url, max_connections=settings.redis_pool_size, timeout=5, **options
    )
    return Redis(connection_pool=pool)

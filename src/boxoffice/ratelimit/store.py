"""Rate-limit counters in Redis: one fixed-window counter per key (one key per command, so any
Redis Cluster slot is fine).

Keys: bo:rl:<scope>:<subject>  (the subject is a user id, or a SHA-256 of an address or email:
no addresses or emails in key names).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable

from boxoffice.redis.client import Script
from boxoffice.redis.mux import MuxRedis

# -> {allowed 0/1, retry_after_seconds}
_HIT = Script(
    """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])) end
if n > tonumber(ARGV[1]) then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])); ttl = tonumber(ARGV[2]) end
  return {0, ttl}
end
return {1, 0}
"""
)


def key(scope: str, subject: str | int) -> str:
    if isinstance(subject, str):
        subject = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return f"bo:rl:{scope}:{subject}"


def hit(redis: MuxRedis, key_name: str, *, limit: int, window_seconds: int) -> Awaitable[list[int]]:
    """Count one event, the command written now; the reply (see verdict) when awaited."""
    return _HIT.issue(redis, [key_name], [limit, window_seconds])


def verdict(reply: list[int]) -> tuple[bool, int]:
    """(allowed, seconds until the window ends when refused) from hit's reply."""
    allowed, retry_after = int(reply[0]), int(reply[1])
    return allowed == 1, max(1, retry_after) if not allowed else 0


async def clear(redis: MuxRedis, key_name: str) -> None:
    await redis.execute("DEL", key_name)

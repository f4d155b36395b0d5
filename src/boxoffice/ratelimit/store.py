"""Rate-limit counters in Redis: one fixed-window counter per key (one key per command, so any
Redis Cluster slot is fine).

Keys: bo:rl:<scope>:<subject>  (the subject is a user id, or a SHA-256 of an address or email:
no addresses or emails in key names).
"""

from __future__ import annotations

import hashlib

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


async def hit(redis: MuxRedis, key_name: str, *, limit: int, window_seconds: int) -> tuple[bool, int]:
    """Count one event; (allowed, seconds until the window ends when refused)."""
    allowed, retry_after = await _HIT(redis, [key_name], [limit, window_seconds])
    return int(allowed) == 1, max(1, int(retry_after)) if not int(allowed) else 0


async def clear(redis: MuxRedis, key_name: str) -> None:
    await redis.execute("DEL", key_name)

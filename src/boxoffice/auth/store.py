"""Auth keys in Redis: the access-token deny-list (logout). Refresh tokens live here too."""

from __future__ import annotations

from redis.asyncio import Redis


def _denied_key(jti: str) -> str:
    return f"bo:auth:denied:{jti}"


async def deny_access_token(redis: Redis, jti: str, ttl_seconds: int) -> None:
    """Refuse this access token until it would have expired anyway."""
    await redis.set(_denied_key(jti), b"1", ex=max(1, ttl_seconds))


async def is_access_token_denied(redis: Redis, jti: str) -> bool:
    return bool(await redis.exists(_denied_key(jti)))

"""Auth state in Redis: refresh-token families, login-attempt counters, the access-token deny-list
and the "user revoked" marker of soft-deleted accounts.

Keys (all under bo:auth:):
- bo:auth:{u<user_id>}:denied:<jti>        access token refused until it would have expired (logout)
- bo:auth:{u<user_id>}:revoked             every access token of a soft-deleted user is refused
- bo:auth:{u<user_id>}:ended:<session_id>  every access token of one login is refused (logout, reuse)
- bo:auth:refresh:<family>        one login: hash {user_id, current, expires_at, revoked, r:<sha256>...}
- bo:auth:login-fail:<sha256>     failed-login counters, one per address and one per account+address
                                  (hashed: no addresses or emails in key names)

Refresh tokens are never stored: only their SHA-256 (the token has 256 random bits, so a plain
hash is enough). A user's two deny-list keys share the hash tag `{u<user_id>}`, so one EXISTS
checks both on a Redis Cluster too. Family expiry is decided against the injected clock (`now`),
with a Redis TTL slightly longer for cleanup.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from boxoffice.redis.client import RedisClient, Script
from boxoffice.redis.mux import Issued, MuxRedis

# Redis keeps the key a little longer than the rule (decided by expires_at vs the injected clock).
_TTL_SLACK_SECONDS = 3600


def _denied_key(user_id: int, jti: str) -> str:
    return f"bo:auth:{{u{user_id}}}:denied:{jti}"


def _revoked_user_key(user_id: int) -> str:
    return f"bo:auth:{{u{user_id}}}:revoked"


def _ended_session_key(user_id: int, session_id: str) -> str:
    return f"bo:auth:{{u{user_id}}}:ended:{session_id}"


def _family_key(family: str) -> str:
    return f"bo:auth:refresh:{family}"


def _user_families_key(user_id: int) -> str:
    return f"bo:auth:{{u{user_id}}}:families"


def _login_fail_key(email: str) -> str:
    return "bo:auth:login-fail:" + hashlib.sha256(email.encode()).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- access tokens -----------------------------------------------------------------------------


async def deny_access_token(redis: RedisClient, user_id: int, jti: str, ttl_seconds: int) -> None:
    """Refuse this access token until it would have expired anyway."""
    await redis.set(_denied_key(user_id, jti), b"1", ex=max(1, ttl_seconds))


async def revoke_user(redis: RedisClient, user_id: int, ttl_seconds: int) -> None:
    """Refuse every access token of this user (soft delete) for as long as any could be valid."""
    await redis.set(_revoked_user_key(user_id), b"1", ex=max(1, ttl_seconds))


async def end_session(redis: RedisClient, user_id: int, session_id: str, ttl_seconds: int) -> None:
    """Refuse every access token of this login for as long as any of them could be valid."""
    await redis.set(_ended_session_key(user_id, session_id), b"1", ex=max(1, ttl_seconds))


def issue_access_check(redis: MuxRedis, user_id: int, jti: str, session_id: str | None = None) -> Issued:
    """Deny-listed jti, ended login or revoked user: one EXISTS over keys of the user's one slot
    (one command, one round trip; cheaper than a pipeline on the path every authenticated request
    takes, and legal on a Redis Cluster), written now; its reply (a count) is > 0 when refused."""
    keys = [_denied_key(user_id, jti), _revoked_user_key(user_id)]
    if session_id is not None:
        keys.append(_ended_session_key(user_id, session_id))
    return redis.issue("EXISTS", *keys)


# --- login attempts ----------------------------------------------------------------------------

# Counts an attempt BEFORE the password is checked, so concurrent guesses cannot slip past the
# limit; a successful login clears the counter. Fixed window from the first attempt.
_ATTEMPT = Script(
    """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])) end
if n > tonumber(ARGV[1]) then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 0 then
    redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
    ttl = tonumber(ARGV[2])
  end
  return {0, ttl}
end
return {1, n}
"""
)


@dataclass(frozen=True)
class AttemptGate:
    allowed: bool
    retry_after_seconds: int


# An attempt that turned out not to be a failure (a success, a busy refusal) gives its count back.
_REFUND = Script(
    """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 1
"""
)


async def register_login_attempt(
    redis: RedisClient, subject: str, *, limit: int, window_seconds: int
) -> AttemptGate:
    """Count one attempt of `subject` (an address, or an account+address) before the password is
    checked; refused once `limit` attempts that were not given back are in the window."""
    allowed, value = await _ATTEMPT(redis, [_login_fail_key(subject)], [limit, window_seconds])
    if int(allowed) == 1:
        return AttemptGate(True, 0)
    return AttemptGate(False, max(1, int(value)))


async def refund_login_attempt(redis: RedisClient, subject: str) -> None:
    """The attempt was not a failure: it no longer counts."""
    await _REFUND(redis, [_login_fail_key(subject)], [])


async def clear_login_attempts(redis: RedisClient, subject: str) -> None:
    await redis.delete(_login_fail_key(subject))


# --- refresh-token families --------------------------------------------------------------------

_CREATE_FAMILY = Script(
    """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'current', ARGV[2], 'expires_at', ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""
)

# Atomic rotation. A token of the family that was already rotated means someone replayed it:
# the whole family is revoked (tombstoned until it would have expired), including the newest
# token, which is then refused too.
_ROTATE = Script(
    """
local fam = KEYS[1]
local h = ARGV[1]
local uid = redis.call('HGET', fam, 'user_id')
if not uid then return {'INVALID', ''} end
local cur = redis.call('HGET', fam, 'current')
if redis.call('HGET', fam, 'revoked') == '1' then
  if redis.call('HEXISTS', fam, 'r:' .. h) == 1 then return {'REUSED', uid} end
  return {'INVALID', ''}
end
if cur ~= h then
  if redis.call('HEXISTS', fam, 'r:' .. h) == 1 then
    redis.call('HDEL', fam, 'current')
    redis.call('HSET', fam, 'revoked', '1', 'r:' .. cur, ARGV[3])
    return {'REUSED', uid}
  end
  return {'INVALID', ''}
end
if tonumber(redis.call('HGET', fam, 'expires_at')) <= tonumber(ARGV[3]) then
  redis.call('DEL', fam)
  return {'EXPIRED', uid}
end
redis.call('HSET', fam, 'current', ARGV[2], 'r:' .. h, ARGV[3], 'expires_at', ARGV[4])
redis.call('EXPIRE', fam, tonumber(ARGV[5]))
return {'OK', uid}
"""
)

RotateOutcome = Literal["OK", "REUSED", "INVALID", "EXPIRED"]


@dataclass(frozen=True)
class RotateResult:
    outcome: RotateOutcome
    user_id: int | None


async def create_refresh_family(
    redis: RedisClient, family: str, *, user_id: int, token_sha256: str, now_ts: int, ttl_seconds: int
) -> None:
    await _CREATE_FAMILY(
        redis,
        [_family_key(family)],
        [user_id, token_sha256, now_ts + ttl_seconds, ttl_seconds + _TTL_SLACK_SECONDS],
    )
    # The user's logins, so a password reset can end them all (the set outlives its newest member).
    await redis.sadd(_user_families_key(user_id), family)
    await redis.expire(_user_families_key(user_id), ttl_seconds + _TTL_SLACK_SECONDS)


async def end_every_session(redis: RedisClient, user_id: int, access_ttl_seconds: int) -> int:
    """Every login of the user ends: its refresh tokens are gone and its access tokens refused
    (the per-login marker the hot path already checks). Returns how many logins there were."""
    families = [
        f.decode() if isinstance(f, bytes) else f for f in await redis.smembers(_user_families_key(user_id))
    ]
    for family in families:
        await end_session(redis, user_id, family, access_ttl_seconds)
        await redis.delete(_family_key(family))
    await redis.delete(_user_families_key(user_id))
    return len(families)


async def rotate_refresh_token(
    redis: RedisClient, family: str, *, presented_sha256: str, new_sha256: str, now_ts: int, ttl_seconds: int
) -> RotateResult:
    outcome, uid = await _ROTATE(
        redis,
        [_family_key(family)],
        [presented_sha256, new_sha256, now_ts, now_ts + ttl_seconds, ttl_seconds + _TTL_SLACK_SECONDS],
    )
    text = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
    raw_uid = uid.decode() if isinstance(uid, bytes) else str(uid)
    return RotateResult(outcome=text, user_id=int(raw_uid) if raw_uid else None)  # type: ignore[arg-type]


async def delete_refresh_family(redis: RedisClient, family: str) -> None:
    await redis.delete(_family_key(family))

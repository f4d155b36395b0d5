"""All waiting-room Redis keys and Lua (house rule 2).

One show's keys share the hash tag `{<show_id>}` so every script runs in one cluster slot:

    bo:{S}:q:next         counter; INCR hands out tickets
    bo:{S}:q:serving      counter; tickets <= serving have been admitted or skipped
    bo:{S}:q:members      hash user -> ticket (a user's one place; joining again keeps it)
    bo:{S}:q:tickets      hash ticket -> user (admission walks it; holes = users who left)
    bo:{S}:q:seen         hash user -> last poll (ms); unseen waiters are skipped at admission
    bo:{S}:q:active       zset user -> lease expiry (ms); admitted users count against caps
    bo:{S}:q:meta         hash: last_tick, credit, rate (EWMA), counters, pre-queue state, seed;
                          adaptive admission: ad_rate (the rate chosen), ad_cut (ms of the last
                          cut), ad_p99 (the buyers' p99 it saw, ms; '' none), ad_target (ms),
                          ad_ceiling (the configured rate it steered under)
    bo:{S}:q:pre          list of pre-queue joins in join order (the published join list)
    bo:{S}:q:pre_members  hash user -> join index, until the pre-queue is sealed
    bo:{S}:q:show         JSON cache of the show's queue settings and remaining seats
    bo:{S}:q:toll:<hex>   a spent toll solution (SET NX, until the challenge expires): single use
    bo:queue:shows        set of show ids with a live queue (what the admission worker ticks)

Join, status, leave and release touch a fixed number of hash fields: O(1) whatever the queue length.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from boxoffice.redis.client import RedisClient, Script
from boxoffice.redis.mux import Issued, MuxRedis

SHOWS_KEY = "bo:queue:shows"
# Worker-side copy of a show's settings lives a little longer than a tick; API misses refill it.
SHOW_CACHE_TTL_SECONDS = 3


def _k(show_id: int, name: str) -> str:
    return f"bo:{{{show_id}}}:q:{name}"


@dataclass(frozen=True)
class Keys:
    next: str
    serving: str
    members: str
    tickets: str
    seen: str
    active: str
    meta: str
    pre: str
    pre_members: str
    show: str


def keys(show_id: int) -> Keys:
    return Keys(*(_k(show_id, n) for n in Keys.__dataclass_fields__))


# A join and, in the same call, what the fan's status reads (_STATUS's fields, the show's settings
# apart: the joiner has them): the answer needs no second round trip.
# KEYS: members tickets seen next meta pre pre_members active serving
# ARGV: user now_ms phase(PRE|OPEN) seed_candidate
# -> {ticket (0 = provisional pre-queue slot), created 0/1, pre 0/1,
#     then _STATUS's reply, the show's settings '': ticket|-1, serving, lease_ms|-1, pre 0/1,
#     rate|'', sealed 0/1, '', next, blocked 0/1}
_JOIN = Script(
    """
local user = ARGV[1]
local function place()  -- {ticket, created, pre}
  local t = redis.call('HGET', KEYS[1], user)
  if t then
    local tn = tonumber(t)
    local serving = tonumber(redis.call('GET', KEYS[9]) or '0')
    local lease = redis.call('ZSCORE', KEYS[8], user)
    if tn > serving or (lease and tonumber(lease) > tonumber(ARGV[2])) then
      redis.call('HSET', KEYS[3], user, ARGV[2])
      return {tn, 0, 0}
    end
    -- admitted earlier and the lease is over: that place is spent, a new one follows
    redis.call('HDEL', KEYS[1], user)
    if redis.call('ZREM', KEYS[8], user) == 1 then redis.call('HINCRBY', KEYS[5], 'no_show', 1) end
  end
  if redis.call('HEXISTS', KEYS[7], user) == 1 then
    redis.call('HSET', KEYS[3], user, ARGV[2])
    return {0, 0, 1}
  end
  local closed = redis.call('HGET', KEYS[5], 'closed')
  if ARGV[3] == 'PRE' and not closed then
    redis.call('HSETNX', KEYS[5], 'seed', ARGV[4])
    local idx = redis.call('RPUSH', KEYS[6], user)
    redis.call('HSET', KEYS[7], user, idx)
    redis.call('HSET', KEYS[3], user, ARGV[2])
    return {0, 1, 1}
  end
  if not closed then
    -- the first open-phase join freezes the pre-queue: its joiners own tickets 1..n
    redis.call('HSET', KEYS[5], 'closed', '1')
    local n = redis.call('LLEN', KEYS[6])
    if n > 0 then redis.call('SET', KEYS[4], n) end
  end
  local ticket = redis.call('INCR', KEYS[4])
  redis.call('HSET', KEYS[1], user, ticket)
  redis.call('HSET', KEYS[2], ticket, user)
  redis.call('HSET', KEYS[3], user, ARGV[2])
  return {ticket, 1, 0}
end
local r = place()
local t = redis.call('HGET', KEYS[1], user)
local pre = 0
if not t and redis.call('HEXISTS', KEYS[7], user) == 1 then pre = 1 end
local m = redis.call('HMGET', KEYS[5], 'rate', 'sealed', 'blocked')
r[4] = tonumber(t or '-1')
r[5] = tonumber(redis.call('GET', KEYS[9]) or '0')
r[6] = tonumber(redis.call('ZSCORE', KEYS[8], user) or '-1')
r[7] = pre
r[8] = m[1] or ''
r[9] = m[2] == '1' and 1 or 0
r[10] = ''  -- the show's settings: the joiner has them
r[11] = tonumber(redis.call('GET', KEYS[4]) or '0')
r[12] = m[3] == '1' and 1 or 0
return r
"""
)

# KEYS: members serving active seen meta pre_members show next
# ARGV: user now_ms touch(0/1)
# -> {ticket|-1, serving, lease_ms|-1, pre 0/1, rate|'', sealed 0/1, show_json|'', next, blocked 0/1}
_STATUS = Script(
    """
local user = ARGV[1]
local t = redis.call('HGET', KEYS[1], user)
local pre = 0
if not t and redis.call('HEXISTS', KEYS[6], user) == 1 then pre = 1 end
if ARGV[3] == '1' and (t or pre == 1) then redis.call('HSET', KEYS[4], user, ARGV[2]) end
local lease = redis.call('ZSCORE', KEYS[3], user)
local m = redis.call('HMGET', KEYS[5], 'rate', 'sealed', 'blocked')
local sealed = 0
if m[2] == '1' then sealed = 1 end
local blocked = 0
if m[3] == '1' then blocked = 1 end
return {
  tonumber(t or '-1'),
  tonumber(redis.call('GET', KEYS[2]) or '0'),
  tonumber(lease or '-1'),
  pre,
  m[1] or '',
  sealed,
  redis.call('GET', KEYS[7]) or '',
  tonumber(redis.call('GET', KEYS[8]) or '0'),
  blocked,
}
"""
)

# The show's serving state, read by each API process every few hundred ms and shared by its polls.
# KEYS: serving next meta show -> {serving, next, rate|'', sealed 0/1, blocked 0/1, show_json|''}
_BOARD = Script(
    """
local m = redis.call('HMGET', KEYS[3], 'rate', 'sealed', 'blocked')
local sealed = 0
if m[2] == '1' then sealed = 1 end
local blocked = 0
if m[3] == '1' then blocked = 1 end
return {
  tonumber(redis.call('GET', KEYS[1]) or '0'),
  tonumber(redis.call('GET', KEYS[2]) or '0'),
  m[1] or '',
  sealed,
  blocked,
  redis.call('GET', KEYS[4]) or '',
}
"""
)

# Polls answered from a ticket are remembered per process and written here in one batch: the
# `seen` mark that keeps a waiter from being skipped as stale. A ticket whose place is no longer
# the user's (left, or re-joined under a new number) is reported back as gone.
# KEYS: members pre_members seen ; ARGV: triples user number(0 = provisional) seen_ms
# -> the users whose ticket no longer matches their place
_TOUCH = Script(
    """
local gone = {}
for i = 1, #ARGV, 3 do
  local u = ARGV[i]
  local n = ARGV[i + 1]
  local here
  if n == '0' then
    here = redis.call('HEXISTS', KEYS[2], u) == 1
  else
    here = redis.call('HGET', KEYS[1], u) == n
  end
  if here then
    redis.call('HSET', KEYS[3], u, ARGV[i + 2])
  else
    gone[#gone + 1] = u
  end
end
return gone
"""
)

# KEYS: members tickets seen active pre_members meta
# ARGV: user -> 1 when the user had a place (waiting, admitted or provisional)
_LEAVE = Script(
    """
local user = ARGV[1]
local found = 0
local t = redis.call('HGET', KEYS[1], user)
if t then
  redis.call('HDEL', KEYS[1], user)
  if redis.call('HGET', KEYS[2], t) == user then redis.call('HDEL', KEYS[2], t) end
  found = 1
end
if redis.call('HDEL', KEYS[5], user) == 1 then found = 1 end
redis.call('HDEL', KEYS[3], user)
if redis.call('ZREM', KEYS[4], user) == 1 then
  redis.call('HINCRBY', KEYS[6], 'left_active', 1)
  found = 1
end
return found
"""
)

# KEYS: active members seen meta ; ARGV: user -> 1 when a lease was released
_RELEASE = Script(
    """
local user = ARGV[1]
if redis.call('ZREM', KEYS[1], user) == 1 then
  redis.call('HDEL', KEYS[2], user)
  redis.call('HDEL', KEYS[3], user)
  redis.call('HINCRBY', KEYS[4], 'converted', 1)
  return 1
end
return 0
"""
)

# The admission step: expire leases, then advance `serving` over at most k live tickets where
# k = min(floor(credit), cap - active). One script, so any number of workers may tick at once.
# KEYS: next serving members tickets seen active meta
# ARGV: now_ms admit_per_second cap(-1 none) stale_ms lease_ms max_scan tau_s paused(0/1)
#       max_credit_s default_dt_s inventory_cap(-1 none)
# -> {admitted, stale, expired, rate|'', serving, next, active, sealed 0/1, user...}
_TICK = Script(
    """
local now = tonumber(ARGV[1])
local m = redis.call('HMGET', KEYS[7], 'last_tick', 'credit', 'rate', 'sealed')
if m[4] ~= '1' then return {0, 0, 0, m[3] or '', 0, 0, 0, 0} end
local expired = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now)
for _, u in ipairs(expired) do
  redis.call('HDEL', KEYS[3], u)
  redis.call('HDEL', KEYS[5], u)
end
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
  redis.call('HINCRBY', KEYS[7], 'no_show', #expired)
end
local rate_cfg = tonumber(ARGV[2])
local last = tonumber(m[1])
local dt = tonumber(ARGV[10])
if last then dt = (now - last) / 1000 end
if dt < 0 then dt = 0 end
local last_new = now
if last and last > now then last_new = last end
local paused = ARGV[8] == '1'
local credit = tonumber(m[2] or '0') + rate_cfg * dt
local max_credit = math.max(1, rate_cfg * tonumber(ARGV[9]))
if paused then credit = 0 end
if credit > max_credit then credit = max_credit end
local active = redis.call('ZCARD', KEYS[6])
local k = math.floor(credit)
local cap = tonumber(ARGV[3])
if cap >= 0 and cap - active < k then k = cap - active end
if k < 0 then k = 0 end
local serving = tonumber(redis.call('GET', KEYS[2]) or '0')
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = serving
local had_waiters = nxt > serving
local lease = now + tonumber(ARGV[5])
local stale_before = now - tonumber(ARGV[4])
local max_scan = tonumber(ARGV[6])
local admitted, stale, scanned = 0, 0, 0
local users = {}
while admitted < k and serving < nxt and scanned < max_scan do
  serving = serving + 1
  scanned = scanned + 1
  local u = redis.call('HGET', KEYS[4], serving)
  if u then
    redis.call('HDEL', KEYS[4], serving)
    if redis.call('HGET', KEYS[3], u) == tostring(serving) then
      local seen = tonumber(redis.call('HGET', KEYS[5], u) or '0')
      if seen < stale_before then
        redis.call('HDEL', KEYS[3], u)
        redis.call('HDEL', KEYS[5], u)
        stale = stale + 1
      else
        redis.call('ZADD', KEYS[6], lease, u)
        admitted = admitted + 1
        users[#users + 1] = u
      end
    end
  end
end
if serving > start then redis.call('SET', KEYS[2], serving) end
credit = credit - admitted
local rate = m[3]
-- a tick that drained the line measured the line, not the pace: it does not move the EWMA
if had_waiters and not paused and dt > 0 and (serving < nxt or admitted >= k) then
  local sample = (serving - start) / dt
  if rate then
    local r = tonumber(rate)
    rate = r + (1 - math.exp(-dt / tonumber(ARGV[7]))) * (sample - r)
  else
    rate = sample
  end
  rate = string.format('%.6f', rate)
end
-- blocked: the remaining seats are spoken for; only returning seats let anyone in (no honest ETA)
local inv_cap = tonumber(ARGV[11])
local blocked = '0'
if inv_cap >= 0 and active + admitted >= inv_cap and serving < nxt then blocked = '1' end
local credit_s = string.format('%.6f', credit)
redis.call('HSET', KEYS[7], 'last_tick', last_new, 'credit', credit_s, 'blocked', blocked)
if rate then redis.call('HSET', KEYS[7], 'rate', rate) end
if admitted > 0 then redis.call('HINCRBY', KEYS[7], 'admitted_total', admitted) end
if stale > 0 then redis.call('HINCRBY', KEYS[7], 'stale_skipped', stale) end
local out = {admitted, stale, #expired, rate or '', serving, nxt, active + admitted, 1}
for _, u in ipairs(users) do out[#out + 1] = u end
return out
"""
)

# KEYS: meta pre next ; freezes the pre-queue (once) -> {length of the join list, seed|'', sealed 0/1}
_CLOSE = Script(
    """
if redis.call('HGET', KEYS[1], 'closed') ~= '1' then
  redis.call('HSET', KEYS[1], 'closed', '1')
  local n = redis.call('LLEN', KEYS[2])
  if n > 0 then redis.call('SET', KEYS[3], n) end
end
local m = redis.call('HMGET', KEYS[1], 'seed', 'sealed')
local sealed = 0
if m[2] == '1' then sealed = 1 end
return {redis.call('LLEN', KEYS[2]), m[1] or '', sealed}
"""
)

# KEYS: meta pre pre_members members tickets
# ARGV: expected join-list length, then the users in permuted order (ticket i = ARGV[i + 1])
# -> 1 sealed now, 0 already sealed, -1 join list changed (retry)
_SEAL = Script(
    """
if redis.call('HGET', KEYS[1], 'sealed') == '1' then return 0 end
if redis.call('HGET', KEYS[1], 'closed') ~= '1' then return -1 end
if redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[1]) then return -1 end
local placed = 0
for i = 2, #ARGV do
  local u = ARGV[i]
  local t = i - 1
  if redis.call('HEXISTS', KEYS[3], u) == 1 then
    redis.call('HSET', KEYS[4], u, t)
    redis.call('HSET', KEYS[5], t, u)
    placed = placed + 1
  end
end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[1], 'sealed', '1', 'pre_placed', placed)
return 1
"""
)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _float_or_none(value: Any) -> float | None:
    text = _s(value) if value is not None else ""
    return float(text) if text else None


@dataclass(frozen=True)
class StatusRaw:
    ticket: int | None
    serving: int
    lease_ms: int | None
    pre_queue: bool
    rate: float | None
    sealed: bool
    show_json: str | None
    next: int
    blocked: bool


@dataclass(frozen=True)
class JoinResult:
    ticket: int  # 0 for a provisional pre-queue slot
    created: bool
    pre_queue: bool
    status: StatusRaw  # the fan's status right after the join (show_json None)


@dataclass(frozen=True)
class TickResult:
    sealed: bool
    admitted: int
    stale: int
    expired: int
    rate: float | None
    serving: int
    next: int
    active: int
    admitted_users: list[int]


async def join(
    redis: MuxRedis, show_id: int, user_id: int, now_ms: int, *, pre_queue: bool, seed: str
) -> JoinResult:
    """The place (and the status it gives) in one round trip; the show is tracked for the
    admission worker (SADD, idempotent) in the same write: on a Redis Cluster its key lives in
    another slot, so it cannot be the script's."""
    k = keys(show_id)
    with redis.one_write():
        joined = _JOIN.issue(
            redis,
            [k.members, k.tickets, k.seen, k.next, k.meta, k.pre, k.pre_members, k.active, k.serving],
            [user_id, now_ms, "PRE" if pre_queue else "OPEN", seed],
        )
        tracked = redis.issue("SADD", SHOWS_KEY, show_id)
    res = await joined
    await tracked
    return JoinResult(
        ticket=int(res[0]), created=bool(res[1]), pre_queue=bool(res[2]), status=_status_raw(res[3:])
    )


async def status(
    redis: MuxRedis, show_id: int, user_id: int, now_ms: int, *, touch: bool = True
) -> StatusRaw:
    k = keys(show_id)
    res = await _STATUS(
        redis,
        [k.members, k.serving, k.active, k.seen, k.meta, k.pre_members, k.show, k.next],
        [user_id, now_ms, "1" if touch else "0"],
    )
    return _status_raw(res)


def _status_raw(reply: list[Any]) -> StatusRaw:
    """_STATUS's reply (and the tail of _JOIN's, in the same order)."""
    ticket, serving, lease, pre, rate, sealed, show_json, nxt, blocked = reply
    return StatusRaw(
        ticket=None if int(ticket) < 0 else int(ticket),
        serving=int(serving),
        lease_ms=None if int(lease) < 0 else int(lease),
        pre_queue=bool(pre),
        rate=_float_or_none(rate),
        sealed=bool(sealed),
        show_json=_s(show_json) or None,
        next=int(nxt),
        blocked=bool(blocked),
    )


# bo:{S}:q:ended_ms  user -> when (unix ms) the user left the queue: admission tokens issued until
# then are refused (a token outliving its place would let a fan who left keep choosing seats).
ENDED_TTL_SECONDS = 86_400  # longer than any admission token (token_ttl_seconds <= 86400)


async def end_admission(redis: RedisClient, show_id: int, user_id: int, now_ms: int) -> None:
    key = _k(show_id, "ended_ms")
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, str(user_id), now_ms)
        pipe.expire(key, ENDED_TTL_SECONDS)
        await pipe.execute()


def issue_admission_ended_at(redis: MuxRedis, show_id: int, user_id: int) -> Issued:
    """admission_ended_at's command, written now (its reply awaited later)."""
    return redis.issue("HGET", _k(show_id, "ended_ms"), user_id)


async def admission_ended_at(issued: Awaitable[Any]) -> int | None:
    """When the fan's admission to the show ended (they left), in ms, from its issued read."""
    raw = await issued
    return None if raw is None else int(raw)


@dataclass(frozen=True)
class BoardRaw:
    serving: int
    next: int
    rate: float | None
    sealed: bool
    blocked: bool
    show_json: str | None


async def board(redis: MuxRedis, show_id: int) -> BoardRaw:
    k = keys(show_id)
    serving, nxt, rate, sealed, blocked, show_json = await _BOARD(
        redis, [k.serving, k.next, k.meta, k.show], []
    )
    return BoardRaw(
        serving=int(serving),
        next=int(nxt),
        rate=_float_or_none(rate),
        sealed=bool(sealed),
        blocked=bool(blocked),
        show_json=_s(show_json) or None,
    )


async def touch_seen(redis: MuxRedis, show_id: int, seen: list[tuple[int, int, int]]) -> list[int]:
    """seen: (user, ticket number, poll ms) -> the users whose ticket is no longer their place."""
    k = keys(show_id)
    args: list[Any] = []
    for user_id, number, ms in seen:
        args.extend((user_id, number, ms))
    gone = await _TOUCH(redis, [k.members, k.pre_members, k.seen], args)
    return [int(_s(u)) for u in gone]


async def leave(redis: RedisClient, show_id: int, user_id: int) -> bool:
    k = keys(show_id)
    res = await _LEAVE(redis, [k.members, k.tickets, k.seen, k.active, k.pre_members, k.meta], [user_id])
    return bool(res)


def issue_release(redis: MuxRedis, show_id: int, user_id: int) -> Awaitable[Any]:
    """The fan's admission lease released (its active entry and its place), written now
    (MuxRedis.issue); awaiting it gives the script's reply (1: a lease was released)."""
    k = keys(show_id)
    return _RELEASE.issue(redis, [k.active, k.members, k.seen, k.meta], [user_id])


async def tick(
    redis: RedisClient,
    show_id: int,
    *,
    now_ms: int,
    admit_per_second: float,
    cap: int | None,
    stale_ms: int,
    lease_ms: int,
    max_scan: int,
    tau_seconds: float,
    paused: bool,
    max_credit_seconds: float,
    default_dt_seconds: float,
    inventory_cap: int | None,
) -> TickResult:
    k = keys(show_id)
    res = await _TICK(
        redis,
        [k.next, k.serving, k.members, k.tickets, k.seen, k.active, k.meta],
        [
            now_ms,
            repr(float(admit_per_second)),
            -1 if cap is None else cap,
            stale_ms,
            lease_ms,
            max_scan,
            repr(float(tau_seconds)),
            "1" if paused else "0",
            repr(float(max_credit_seconds)),
            repr(float(default_dt_seconds)),
            -1 if inventory_cap is None else inventory_cap,
        ],
    )
    return TickResult(
        admitted=int(res[0]),
        stale=int(res[1]),
        expired=int(res[2]),
        rate=_float_or_none(res[3]),
        serving=int(res[4]),
        next=int(res[5]),
        active=int(res[6]),
        sealed=bool(res[7]),
        admitted_users=[int(_s(u)) for u in res[8:]],
    )


async def close_pre_queue(redis: RedisClient, show_id: int) -> tuple[int, str | None, bool]:
    """Freeze the join list (idempotent) -> (its length, seed or None, already sealed)."""
    k = keys(show_id)
    n, seed, sealed = await _CLOSE(redis, [k.meta, k.pre, k.next], [])
    return int(n), (_s(seed) or None), bool(sealed)


async def seal_pre_queue(redis: RedisClient, show_id: int, expected_len: int, order: list[int]) -> int:
    k = keys(show_id)
    res = await _SEAL(redis, [k.meta, k.pre, k.pre_members, k.members, k.tickets], [expected_len, *order])
    return int(res)


async def join_list(redis: RedisClient, show_id: int) -> list[int]:
    """The pre-queue join list (audit only: O(n), never on a poll path)."""
    return [int(_s(u)) for u in await redis.lrange(keys(show_id).pre, 0, -1)]  # type: ignore[misc]


async def fairness_state(redis: RedisClient, show_id: int) -> dict[str, str]:
    raw = await redis.hmget(keys(show_id).meta, ["seed", "closed", "sealed"])  # type: ignore[misc]
    return {name: _s(v) for name, v in zip(("seed", "closed", "sealed"), raw, strict=True) if v is not None}


async def get_show_cache(redis: MuxRedis, show_id: int) -> str | None:
    return show_cache_text(await issue_show_cache(redis, show_id))


def issue_show_cache(redis: MuxRedis, show_id: int) -> Issued:
    """The show's cached settings, read now (MuxRedis.issue); `show_cache_text` of the reply."""
    return redis.issue("GET", keys(show_id).show)


def show_cache_text(raw: bytes | None) -> str | None:
    return None if raw is None else _s(raw)


async def set_show_cache(
    redis: MuxRedis, show_id: int, payload: str, ttl_seconds: int = SHOW_CACHE_TTL_SECONDS
) -> None:
    await redis.set(keys(show_id).show, payload, ex=ttl_seconds)


async def drop_show_cache(redis: RedisClient, show_id: int) -> None:
    await redis.delete(keys(show_id).show)


async def expire_show(redis: RedisClient, show_id: int, seconds: int) -> None:
    """A closed sale's queue keys go away after `seconds` (the audit data stays readable until then)."""
    k = keys(show_id)
    async with redis.pipeline(transaction=False) as pipe:
        for name in Keys.__dataclass_fields__:
            if name != "show":
                pipe.expire(getattr(k, name), seconds)
        await pipe.execute()


async def untrack_show(redis: RedisClient, show_id: int) -> None:
    await redis.srem(SHOWS_KEY, show_id)  # type: ignore[misc]


async def tracked_shows(redis: RedisClient) -> list[int]:
    return sorted(int(_s(s)) for s in await redis.smembers(SHOWS_KEY))  # type: ignore[misc]


@dataclass(frozen=True)
class QueueStats:
    waiting: int
    active: int
    admitted_total: int
    rate: float | None
    no_shows: int
    converted: int
    left_active: int
    stale_skipped: int
    serving: int
    next: int


async def stats(redis: RedisClient, show_id: int, now_ms: int) -> QueueStats:
    k = keys(show_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hlen(k.members)
        pipe.hlen(k.pre_members)
        pipe.zcount(k.active, f"({now_ms}", "+inf")
        pipe.zcard(k.active)
        pipe.hmget(k.meta, ["admitted_total", "rate", "no_show", "converted", "left_active", "stale_skipped"])
        pipe.get(k.serving)
        pipe.get(k.next)
        members, pre_members, live_active, all_active, meta, serving, nxt = await pipe.execute()

    def num(v: Any) -> int:
        return int(_s(v)) if v else 0

    return QueueStats(
        # members holds waiters and admitted users with a lease; the provisional pre-queue waits too
        waiting=max(0, int(members) - int(all_active)) + int(pre_members),
        active=int(live_active),
        admitted_total=num(meta[0]),
        rate=_float_or_none(meta[1]),
        no_shows=num(meta[2]),
        converted=num(meta[3]),
        left_active=num(meta[4]),
        stale_skipped=num(meta[5]),
        serving=num(serving),
        next=num(nxt),
    )


async def active_users(redis: RedisClient, show_id: int) -> list[int]:
    """Admitted users by lease expiry (admin / tests; the active set is bounded by the caps)."""
    return [int(_s(u)) for u in await redis.zrange(keys(show_id).active, 0, -1)]


# ---------------------------------------------------------------------------- the toll (toll.py)

# KEYS: meta next pre ; ARGV: now_ms tau_seconds
# The join rate (EWMA over joins counted as max(next, pre-queue length)), next to the admission
# rate the tick measures -> {join_rate|'', admission_rate|''}
_CROWD = Script(
    """
local now = tonumber(ARGV[1])
local joins = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('LLEN', KEYS[3]))
local m = redis.call('HMGET', KEYS[1], 'join_last_n', 'join_last_ms', 'join_rate', 'rate')
local last_n, last_ms, rate = tonumber(m[1]), tonumber(m[2]), m[3]
if last_n and last_ms and now > last_ms then
  local dt = (now - last_ms) / 1000
  local sample = math.max(0, joins - last_n) / dt
  if rate then
    local r = tonumber(rate)
    rate = r + (1 - math.exp(-dt / tonumber(ARGV[2]))) * (sample - r)
  else
    rate = sample
  end
  rate = string.format('%.6f', rate)
  redis.call('HSET', KEYS[1], 'join_rate', rate)
end
if not last_ms or now > last_ms then
  redis.call('HSET', KEYS[1], 'join_last_n', joins, 'join_last_ms', now)
end
return {rate or '', m[4] or ''}
"""
)


async def sample_crowd(
    redis: RedisClient, show_id: int, now_ms: int, tau_seconds: float
) -> tuple[float | None, float | None]:
    """(join rate, admission rate) per second; the join rate moves once per call (a worker tick)."""
    k = keys(show_id)
    join_rate, admission_rate = await _CROWD(redis, [k.meta, k.next, k.pre], [now_ms, tau_seconds])
    return _float_or_none(join_rate), _float_or_none(admission_rate)


# KEYS: show meta -> {show_json|'', join_rate|'', admission_rate|''}: what issuing a challenge needs
_TOLL = Script(
    """
local m = redis.call('HMGET', KEYS[2], 'join_rate', 'rate')
return {redis.call('GET', KEYS[1]) or '', m[1] or '', m[2] or ''}
"""
)


async def toll_inputs(redis: MuxRedis, show_id: int) -> tuple[str | None, float | None, float | None]:
    k = keys(show_id)
    show_json, join_rate, admission_rate = await _TOLL(redis, [k.show, k.meta], [])
    return _s(show_json) or None, _float_or_none(join_rate), _float_or_none(admission_rate)


async def spend_solution(redis: MuxRedis, show_id: int, challenge: str, user_id: int, ttl_ms: int) -> bool:
    """Single use: True the first time a solved challenge is spent, False ever after (until it
    expires, when the signature refuses it anyway)."""
    ok = await redis.execute(
        "SET", _k(show_id, f"toll:{challenge[:64]}"), user_id, "NX", "PX", max(1000, ttl_ms)
    )
    return ok is not None


@dataclass(frozen=True)
class Adaptive:
    """Adaptive admission's state for a show (admission.adaptive_rate), as the worker left it."""

    rate: float | None  # the admission rate the loop chose (None: not steered yet)
    last_cut_ms: int | None
    p99_ms: float | None  # the buyers' p99 it last saw
    target_ms: float | None
    ceiling: float | None = None  # the show's configured rate then


_ADAPTIVE_FIELDS = ["ad_rate", "ad_cut", "ad_p99", "ad_target", "ad_ceiling"]


async def held_back(redis: RedisClient, show_id: int) -> bool:
    """Fans wait behind the admission rate: the line is not empty, and not blocked by the
    inventory cap (then returning seats, not the rate, let the next fans in)."""
    k = keys(show_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(k.next)
        pipe.get(k.serving)
        pipe.hget(k.meta, "blocked")
        nxt, serving, blocked = await pipe.execute()
    return int(nxt or 0) > int(serving or 0) and _s(blocked) != "1"


async def adaptive(redis: RedisClient, show_id: int) -> Adaptive:
    raw = await redis.hmget(keys(show_id).meta, _ADAPTIVE_FIELDS)  # type: ignore[misc]
    rate, cut, p99, target, ceiling = (_float_or_none(v) for v in raw)
    return Adaptive(rate, None if cut is None else int(cut), p99, target, ceiling)


async def set_adaptive(redis: RedisClient, show_id: int, state: Adaptive) -> None:
    fields = {
        "ad_rate": "" if state.rate is None else repr(float(state.rate)),
        "ad_cut": "" if state.last_cut_ms is None else str(state.last_cut_ms),
        "ad_p99": "" if state.p99_ms is None else repr(float(state.p99_ms)),
        "ad_target": "" if state.target_ms is None else repr(float(state.target_ms)),
        "ad_ceiling": "" if state.ceiling is None else repr(float(state.ceiling)),
    }
    await redis.hset(keys(show_id).meta, mapping=fields)  # type: ignore[misc,arg-type]


async def forget_adaptive(redis: RedisClient, show_id: int) -> None:
    """A show admitting at its static rate keeps no loop state: nothing stale on the console, and
    switched back on, the loop starts again from the configured rate."""
    await redis.hdel(keys(show_id).meta, *_ADAPTIVE_FIELDS)  # type: ignore[misc]

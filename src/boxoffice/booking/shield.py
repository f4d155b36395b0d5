"""The Redis shield in front of PostgreSQL (house rule 2: every booking Redis key and Lua is here).

Keys, per show (the braces keep a show's keys in one cluster slot):
- `bo:{S}:held:{seat}`  "<user_id>:<deadline_ms>" while a hold is believed live, "<user_id>:S" once
                        sold. The deadline is the hold's expires_at by the app clock, compared with
                        the caller's `now` (not Redis time), so a hold is dead here exactly when it
                        is dead in PostgreSQL. PX TTL only reclaims memory.
                        After a fan's hold of the seat ends (cancelled, expired, refunded):
                        "<user_id>:C<until_ms>", free for everyone but that fan until then (the
                        re-hold cool-down: a fan cannot keep seats off sale by cancelling and
                        holding them again).
- `bo:{S}:booking:rules` a few seconds' cache of the show's hold rules (no PostgreSQL on refusals).
- `bo:payable:{R}`      what paying reservation R needs of its hold, written by the winning hold
                        (`Payable`): the fan, the show, the holder's name and the seats with their
                        section, row and number. The balance payment signs its tickets from it
                        instead of reading them from PostgreSQL first; its statement still checks
                        that the signed seats are exactly the hold's, so a missing or stale entry
                        costs only the read it replaces. Expires with the hold (plus a minute).

The shield may only say "no" early (house rule 4): a mark it misses (Redis flushed, restarted,
down) just sends the request on to PostgreSQL, which decides. Every function here swallows Redis
errors and reports "unavailable" so a Redis outage never fails a hold.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import structlog
from redis.exceptions import RedisError

from boxoffice.booking.rules import ShowRules
from boxoffice.db.outbox import show_stream
from boxoffice.redis.client import RedisClient, Script
from boxoffice.redis.mux import MuxRedis
from boxoffice.redis.streams import stream_id_key

log = structlog.get_logger("boxoffice.booking.shield")

SOLD = "S"
SOLD_TTL_MS = 7 * 24 * 3600 * 1000
RULES_TTL_SECONDS = 10
EVENTS_PAGE = 500
# What a Redis outage looks like from redis-py (connection refused, reset, timeouts).
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


def seat_key(show_id: int, seat_id: int) -> str:
    return f"bo:{{{show_id}}}:held:{seat_id}"


def rules_key(show_id: int) -> str:
    return f"bo:{{{show_id}}}:booking:rules"


# KEYS: seat keys. ARGV: owner, now_ms, deadline_ms, ttl_ms, cool_ms.
# -> {1, newly_marked_indexes}, {0, taken_indexes} or {2, cooling_indexes} (seats this owner let go
# of a moment ago: released, or held by the owner's own hold that died less than cool_ms ago and
# is not swept yet). All or nothing: nothing is marked on refusal.
MARK = Script(
    """
local owner, now, cool_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[5] or '0')
local taken, fresh, cooling = {}, {}, {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v then
    local sep = string.find(v, ':', 1, true)
    local who, deadline = string.sub(v, 1, sep - 1), string.sub(v, sep + 1)
    if string.sub(deadline, 1, 1) == 'C' then
      if who == owner and tonumber(string.sub(deadline, 2)) > now then
        cooling[#cooling + 1] = i
      else
        fresh[#fresh + 1] = i
      end
    elseif deadline == 'S' or tonumber(deadline) > now then
      if who ~= owner then taken[#taken + 1] = i end
    elseif who == owner and tonumber(deadline) + cool_ms > now then
      cooling[#cooling + 1] = i
    else
      fresh[#fresh + 1] = i
    end
  else
    fresh[#fresh + 1] = i
  end
end
if #taken > 0 then return {0, taken} end
if #cooling > 0 then return {2, cooling} end
local value = owner .. ':' .. ARGV[3]
for _, i in ipairs(fresh) do redis.call('SET', KEYS[i], value, 'PX', ARGV[4]) end
return {1, fresh}
"""
)

# KEYS: seat keys. ARGV: owner, cool_until_ms (0: none), cool_ttl_ms. Only marks that owner still
# holds (a newer hold keeps its own): deleted, or turned into the owner's cool-down mark.
_RELEASE = Script(
    """
local n = 0
local prefix = ARGV[1] .. ':'
local cool = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v and string.sub(v, 1, #prefix) == prefix then
    if cool > 0 then
      redis.call('SET', key, prefix .. 'C' .. ARGV[2], 'PX', ARGV[3])
    else
      redis.call('DEL', key)
    end
    n = n + 1
  end
end
return n
"""
)

# KEYS: seat keys. ARGV: owner, ttl_ms. A sold seat is refused early until it is refunded.
_SOLD = Script(
    """
for _, key in ipairs(KEYS) do redis.call('SET', key, ARGV[1] .. ':S', 'PX', ARGV[2]) end
return #KEYS
"""
)


@dataclass(frozen=True, slots=True)
class ShieldVerdict:
    """available=False: Redis did not answer, the shield was skipped (PostgreSQL decides alone)."""

    available: bool
    ok: bool
    taken: list[int]
    marked: list[int]
    cooling: list[int] = field(default_factory=list)  # seats this fan released a moment ago


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


async def try_mark(
    redis: MuxRedis,
    show_id: int,
    user_id: int,
    seat_ids: Sequence[int],
    *,
    now: datetime,
    expires_at: datetime,
    ttl_ms: int,
    cool_seconds: int = 0,
) -> ShieldVerdict:
    """Check and mark all seats atomically, or name the taken (or, for this user, cooling) ones
    (nothing marked then)."""
    keys = [seat_key(show_id, s) for s in seat_ids]
    try:
        # The mark outlives its hold by the cool-down: the owner's dead hold keeps cooling until
        # the sweep turns it into a cool-down mark.
        cool_ms = cool_seconds * 1000
        ok, idx = await MARK(redis, keys, [user_id, _ms(now), _ms(expires_at), ttl_ms + cool_ms, cool_ms])
    except REDIS_ERRORS as exc:
        log.warning("shield_unavailable", error=type(exc).__name__, reason=str(exc)[:200], show_id=show_id)
        return ShieldVerdict(available=False, ok=True, taken=[], marked=[])
    picked = [seat_ids[int(i) - 1] for i in idx]
    if int(ok) == 1:
        return ShieldVerdict(available=True, ok=True, taken=[], marked=picked)
    if int(ok) == 2:
        return ShieldVerdict(available=True, ok=False, taken=[], marked=[], cooling=sorted(picked))
    return ShieldVerdict(available=True, ok=False, taken=sorted(picked), marked=[])


async def release(
    redis: MuxRedis,
    show_id: int,
    user_id: int,
    seat_ids: Sequence[int],
    *,
    now: datetime | None = None,
    cool_seconds: int = 0,
) -> bool:
    """Clear the marks `user_id` holds on these seats (hold refused, cancelled, expired, refunded).
    With `cool_seconds` (a hold that existed has ended) the seats stay refused to that user, and
    to that user only, for that long after `now`."""
    if not seat_ids:
        return True
    try:
        await issue_release(redis, show_id, user_id, seat_ids, now=now, cool_seconds=cool_seconds)
    except REDIS_ERRORS as exc:
        log.warning("shield_release_failed", error=type(exc).__name__, reason=str(exc)[:200], show_id=show_id)
        return False
    return True


def issue_release(
    redis: MuxRedis,
    show_id: int,
    user_id: int,
    seat_ids: Sequence[int],
    *,
    now: datetime | None = None,
    cool_seconds: int = 0,
) -> Awaitable[Any]:
    """release written now (MuxRedis.issue), its reply awaited later (Redis errors raise there)."""
    cool_until = _ms(now) + cool_seconds * 1000 if now is not None and cool_seconds > 0 else 0
    return _RELEASE.issue(
        redis, [seat_key(show_id, s) for s in seat_ids], [user_id, cool_until, max(1, cool_seconds * 1000)]
    )


def issue_sold(redis: MuxRedis, show_id: int, user_id: int, seat_ids: Sequence[int]) -> Awaitable[Any]:
    """Mark the seats sold (refused early until refunded), written now; awaited later."""
    return _SOLD.issue(redis, [seat_key(show_id, s) for s in seat_ids], [user_id, SOLD_TTL_MS])


PAYABLE_GRACE_SECONDS = 60


def payable_key(reservation_id: int) -> str:
    return f"bo:payable:{reservation_id}"


def issue_payable(
    redis: MuxRedis,
    *,
    reservation_id: int,
    user_id: int,
    show_id: int,
    holder: str,
    seats: Sequence[dict[str, Any]],
    ttl_seconds: int,
) -> None:
    """The winning hold's `bo:payable:{R}`, written now (inside the hold's one_write), never
    awaited: a lost write only sends the payment to PostgreSQL for its seats."""
    value = msgspec.json.encode(
        [user_id, show_id, holder, [[s["id"], s["section"], s["row"], s["number"]] for s in seats]]
    )
    redis.issue("SET", payable_key(reservation_id), value, "EX", ttl_seconds + PAYABLE_GRACE_SECONDS)


class Payable:
    """The balance payment's read of `bo:payable:{R}`, issued with the payment's first Redis round
    (its rate-limit count). Awaited: the seats to sign tickets for, in the shape of
    tickets.repository.seats_to_sell (ordered by seat id), or None when Redis has no entry (or
    did not answer), or the entry is another fan's: the payment then reads them from PostgreSQL."""

    __slots__ = ("_reply", "_user_id")

    def __init__(self, redis: MuxRedis, reservation_id: int, user_id: int) -> None:
        self._user_id = user_id
        self._reply = redis.issue("GET", payable_key(reservation_id))

    def __await__(self) -> Generator[Any, None, list[dict[str, Any]] | None]:
        return self._seats().__await__()

    async def _seats(self) -> list[dict[str, Any]] | None:
        try:
            raw = await self._reply
        except REDIS_ERRORS:
            return None
        if raw is None:
            return None
        try:
            owner, show_id, holder, seats = msgspec.json.decode(raw)
            if owner != self._user_id:
                return None
            return [
                {
                    "seat_id": seat_id,
                    "section": section,
                    "row": row,
                    "number": number,
                    "show_id": show_id,
                    "user_id": owner,
                    "holder": holder,
                }
                for seat_id, section, row, number in sorted(seats)
            ]
        except (ValueError, TypeError):  # not an entry of ours: PostgreSQL has the seats
            return None


class Probe:
    """The seats' marks read at the start of a hold (MGET: nothing changes), issued with the
    hold's first Redis round, so that a hold of seats another fan holds is refused without MARK's
    round trip. Awaited: the seats taken by others, by MARK's own rule (sorted), or None when
    Redis did not answer (MARK then decides, or PostgreSQL). A snapshot a moment older than MARK's
    is the answer the hold would have had arriving that moment earlier."""

    __slots__ = ("_now_ms", "_owner", "_reply", "_seat_ids")

    def __init__(
        self, redis: MuxRedis, show_id: int, user_id: int, seat_ids: Sequence[int], now: datetime
    ) -> None:
        self._seat_ids = list(seat_ids)
        self._owner = str(user_id).encode()
        self._now_ms = _ms(now)
        self._reply = redis.issue("MGET", *[seat_key(show_id, s) for s in self._seat_ids])

    def __await__(self) -> Generator[Any, None, list[int] | None]:
        return self._taken().__await__()

    async def _taken(self) -> list[int] | None:
        try:
            values = await self._reply
            return sorted(
                seat
                for seat, value in zip(self._seat_ids, values, strict=True)
                if value is not None and _held_by_other(value, self._owner, self._now_ms)
            )
        except REDIS_ERRORS:  # no answer: MARK decides (or PostgreSQL)
            return None
        except ValueError:  # a mark it cannot read: MARK decides
            return None


def _held_by_other(value: bytes, owner: bytes, now_ms: int) -> bool:
    """MARK's "taken": sold, or a hold alive at `now`, by someone else (a cool-down mark and a
    dead hold are free for others)."""
    who, _, deadline = value.partition(b":")
    if deadline == b"S":
        return who != owner
    if deadline[:1] == b"C":
        return False
    return int(deadline) > now_ms and who != owner


async def cached_rules(redis: MuxRedis, show_id: int) -> ShowRules | None:
    try:
        raw = await redis.get(rules_key(show_id))
    except REDIS_ERRORS:
        return None
    if raw is None:
        return None
    data = json.loads(raw)
    return ShowRules(
        show_id=show_id,
        starts_at=datetime.fromisoformat(data["starts_at"]),
        sale_opens_at=datetime.fromisoformat(data["sale_opens_at"]),
        sale_closes_at=datetime.fromisoformat(data["sale_closes_at"]) if data["sale_closes_at"] else None,
        hold_seconds=int(data["hold_seconds"]),
        max_seats=int(data["max_seats"]),
        verified_email_required=bool(data.get("verified_email_required", False)),
    )


async def cache_rules(redis: MuxRedis, rules: ShowRules) -> None:
    data = {
        "starts_at": rules.starts_at.isoformat(),
        "sale_opens_at": rules.sale_opens_at.isoformat(),
        "sale_closes_at": rules.sale_closes_at.isoformat() if rules.sale_closes_at else None,
        "hold_seconds": rules.hold_seconds,
        "max_seats": rules.max_seats,
        "verified_email_required": rules.verified_email_required,
    }
    try:
        await redis.set(rules_key(rules.show_id), json.dumps(data), ex=RULES_TTL_SECONDS)
    except REDIS_ERRORS:
        return


# ---------------------------------------------------------------- live seat events


def valid_stream_id(value: str) -> bool:
    """A Redis stream id "<ms>-<seq>" (from a client's Last-Event-ID header)."""
    ms, sep, seq = value.partition("-")
    return bool(sep) and ms.isdigit() and seq.isdigit() and len(value) <= 40


async def latest_event_id(redis: RedisClient, show_id: int) -> str:
    """The newest id on the show's event stream, "0-0" when empty: where a new watcher starts."""
    last: Any = await redis.xrevrange(show_stream(show_id), count=1)
    return str(last[0][0].decode()) if last else "0-0"


async def resumable(redis: RedisClient, show_id: int, cursor: str) -> bool:
    """Whether a watcher that saw `cursor` can resume from it: the entry after it is still on the
    stream. False when the stream was trimmed past it, or lost and started again (Redis restarted)."""
    first: Any = await redis.xrange(show_stream(show_id), count=1)
    last: Any = await redis.xrevrange(show_stream(show_id), count=1)
    if not first:
        return False
    first_id, last_id = stream_id_key(first[0][0].decode()), stream_id_key(last[0][0].decode())
    seen = stream_id_key(cursor)
    return first_id <= seen <= last_id


async def read_show_events(
    redis: RedisClient, show_id: int, cursor: str, *, block_ms: int | None
) -> list[tuple[str, dict[str, str]]]:
    """Entries after `cursor` on the show's event stream (`bo:{S}:events`, written by the relay),
    at most EVENTS_PAGE; block_ms=None answers at once."""
    reply: Any = await redis.xread({show_stream(show_id): cursor}, count=EVENTS_PAGE, block=block_ms)
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        # redis-py (8.1) can swallow a cancellation that lands as a command starts and answer as if
        # nothing came; the task still says it is being cancelled. Honour that, or a stream reader
        # being stopped would loop here for ever, holding a pool connection in XREAD.
        raise asyncio.CancelledError
    out: list[tuple[str, dict[str, str]]] = []
    for _name, entries in reply or []:
        for entry_id, fields in entries:
            out.append((entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()}))
    return out

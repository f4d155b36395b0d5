"""The Redis copy of a show's seat map (house rule 2: every catalog Redis key and Lua lives here).

Layout, per show (the braces keep one show's keys in one cluster slot):
- `bo:{S}:seatmap:layout`  static JSON fragments, one line per seat id from `base` upwards
                           (`{"id":..,"section":..,"row":..,"number":..,"price":..,"status":"`),
                           an empty line where an id belongs to another show;
- `bo:{S}:seatmap:status`  one byte per id from `base`: A(VAILABLE) T(EMP_RESERVED) R(ESERVED), `-` gap;
- `bo:{S}:seatmap:base`    the lowest seat id;  `bo:{S}:seatmap:version`  bumped by every change;
- `bo:{S}:seatmap:fresh`   present for FRESH_MS after the status was read from PostgreSQL;
- `bo:{S}:seatmap:lock`    the single rebuilder (SET NX); `...:dirty` changes patched while it works;
- `bo:{S}:seatmap:gen`     bumped by invalidation, so a rebuild that started before it is dropped;
- `bo:{S}:seatmap:rebuilds` / `...:refreshes`  how often PostgreSQL was read (observable in tests).

A seat change costs one SETRANGE (a patch), a read is one MULTI of GETs and a join of fragments.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from boxoffice.redis.client import RedisClient, Script
from boxoffice.redis.mux import MuxRedis

FRESH_MS = 1000  # the status is re-read from PostgreSQL at most this long after the last read
LOCK_MS = 10_000  # a crashed rebuilder blocks others for at most this long
TTL_SECONDS = 6 * 3600  # idle maps leave Redis; the next read rebuilds them
DIRTY_MS = 30_000

STATUS_CHAR = {"AVAILABLE": "A", "TEMP_RESERVED": "T", "RESERVED": "R"}
GAP = ord("-")
SUFFIX = {ord("A"): b'AVAILABLE"}', ord("T"): b'TEMP_RESERVED"}', ord("R"): b'RESERVED"}'}


def _key(show_id: int, name: str) -> str:
    return f"bo:{{{show_id}}}:seatmap:{name}"


def _keys(show_id: int, *names: str) -> list[str]:
    return [_key(show_id, n) for n in names]


# KEYS: status, base, version, lock, dirty. ARGV: id1, char1, id2, char2, ...
_APPLY = Script(
    """
local base = tonumber(redis.call('GET', KEYS[2]) or '-1')
local len = redis.call('STRLEN', KEYS[1])
local rebuilding = redis.call('EXISTS', KEYS[4]) == 1
for i = 1, #ARGV - 1, 2 do
  local off = tonumber(ARGV[i]) - base
  if base >= 0 and off >= 0 and off < len and redis.call('GETRANGE', KEYS[1], off, off) ~= '-' then
    redis.call('SETRANGE', KEYS[1], off, ARGV[i + 1])
  end
  if rebuilding then redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 1]) end
end
if rebuilding then redis.call('PEXPIRE', KEYS[5], ARGV[#ARGV]) end
return redis.call('INCR', KEYS[3])
"""
)

# KEYS: lock, dirty, gen. ARGV: token, lock_ms. -> {acquired, gen}
_ACQUIRE = Script(
    """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return {1, redis.call('GET', KEYS[3]) or '0'}
end
return {0, '0'}
"""
)

# KEYS: status, layout, base, version, fresh, lock, dirty, gen, counter.
# ARGV: token, gen, status, layout ('' keeps the cached one), base, fresh_ms, ttl_s. -> version or -1
_STORE = Script(
    """
local function unlock()
  if redis.call('GET', KEYS[6]) == ARGV[1] then redis.call('DEL', KEYS[6]) end
end
if (redis.call('GET', KEYS[8]) or '0') ~= ARGV[2] then
  unlock()
  return -1
end
local ttl = tonumber(ARGV[7])
redis.call('SET', KEYS[1], ARGV[3], 'EX', ttl)
if ARGV[4] ~= '' then redis.call('SET', KEYS[2], ARGV[4], 'EX', ttl)
else redis.call('EXPIRE', KEYS[2], ttl) end
redis.call('SET', KEYS[3], ARGV[5], 'EX', ttl)
local base = tonumber(ARGV[5])
local len = string.len(ARGV[3])
-- Changes committed after our PostgreSQL snapshot were patched into `dirty` meanwhile: replay them.
local dirty = redis.call('HGETALL', KEYS[7])
for i = 1, #dirty, 2 do
  local off = tonumber(dirty[i]) - base
  if off >= 0 and off < len and redis.call('GETRANGE', KEYS[1], off, off) ~= '-' then
    redis.call('SETRANGE', KEYS[1], off, dirty[i + 1])
  end
end
redis.call('DEL', KEYS[7])
redis.call('SET', KEYS[5], '1', 'PX', ARGV[6])
redis.call('INCR', KEYS[9])
unlock()
return redis.call('INCR', KEYS[4])
"""
)

# KEYS: lock. ARGV: token
_RELEASE = Script(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
)


@dataclass(frozen=True, slots=True)
class CachedSeatMap:
    layout: bytes  # b"" when read without it (read_seat_map(layout=False))
    status: bytes
    version: int
    fresh: bool
    base: int | None = None
    gen: str = "0"


@dataclass(frozen=True, slots=True)
class BuiltSeatMap:
    """A seat map rendered from PostgreSQL rows, ready to store and to serve."""

    base: int
    layout: bytes
    status: bytes


@dataclass(frozen=True, slots=True)
class SeatRow:
    id: int
    section: str
    row: int
    number: int
    price: int
    status: str


def build_seat_map(rows: Sequence[SeatRow]) -> BuiltSeatMap:
    """rows sorted by id. Ids of other shows inside the range become gaps (empty line, `-`)."""
    if not rows:
        return BuiltSeatMap(base=0, layout=b"", status=b"")
    import json

    base = rows[0].id
    span = rows[-1].id - base + 1
    lines: list[bytes] = [b""] * span
    status = bytearray(b"-" * span)
    for r in rows:
        off = r.id - base
        lines[off] = (
            f'{{"id":{r.id},"section":{json.dumps(r.section)},"row":{r.row},'
            f'"number":{r.number},"price":{r.price},"status":"'
        ).encode()
        status[off] = ord(STATUS_CHAR[r.status])
    return BuiltSeatMap(base=base, layout=b"\n".join(lines), status=bytes(status))


def status_string(base: int, span: int, pairs: Iterable[tuple[int, str]]) -> bytes:
    """The status bytes for a refresh: (id, status) pairs of one show, `-` where no seat."""
    status = bytearray(b"-" * span)
    for seat_id, value in pairs:
        status[seat_id - base] = ord(STATUS_CHAR[value])
    return bytes(status)


def render(show_id: int, version: int, layout: bytes, status: bytes, only: str | None = None) -> bytes:
    """The response body {show_id, version, seats: [...]} as JSON bytes, without re-encoding seats."""
    want = ord(STATUS_CHAR[only]) if only else None
    frags = layout.split(b"\n") if layout else []
    pairs = zip(frags, status, strict=False)
    parts = [f + SUFFIX[c] for f, c in pairs if c != GAP and (want is None or c == want)]
    return b'{"show_id":%d,"version":%d,"seats":[%b]}' % (show_id, version, b",".join(parts))


async def read_seat_map(redis: RedisClient, show_id: int, *, layout: bool = True) -> CachedSeatMap | None:
    """The cached map, read atomically, or None when cold. Without `layout` only the small parts
    are read (the process keeps the layout it read before: it changes only with `gen`)."""
    pipe = redis.pipeline(transaction=True)
    names = ("status", "version", "fresh", "base", "gen")
    for name in ("layout", *names) if layout else names:
        pipe.get(_key(show_id, name))
    values = await pipe.execute()
    if not layout:
        values = [b"", *values]
    raw_layout, status, version, fresh, base, gen = values
    if raw_layout is None or status is None:
        return None
    return CachedSeatMap(
        layout=raw_layout,
        status=status,
        version=int(version or 0),
        fresh=fresh is not None,
        base=None if base is None else int(base),
        gen=(gen or b"0").decode(),
    )


async def read_marks(redis: MuxRedis, show_id: int) -> tuple[int, bool, str]:
    """(version, fresh, gen) in one round trip: has the map changed since a process rendered it?"""
    version, fresh, gen = await redis.execute("MGET", *_keys(show_id, "version", "fresh", "gen"))
    return int(version or 0), fresh is not None, (gen or b"0").decode()


async def cached_base(redis: RedisClient, show_id: int) -> int | None:
    value = await redis.get(_key(show_id, "base"))
    return None if value is None else int(value)


async def try_lock(redis: RedisClient, show_id: int, token: str) -> str | None:
    """Become the one rebuilder of this map; returns the invalidation generation seen, or None."""
    acquired, gen = await _ACQUIRE(redis, _keys(show_id, "lock", "dirty", "gen"), [token, LOCK_MS])
    return (gen.decode() if isinstance(gen, bytes) else str(gen)) if int(acquired) == 1 else None


async def store_seat_map(
    redis: RedisClient, show_id: int, token: str, gen: str, built: BuiltSeatMap, *, full: bool
) -> int | None:
    """Store what the lock holder read from PostgreSQL (layout too when `full`) and release the lock.

    Returns the new version, or None when the map was invalidated meanwhile (nothing stored).
    """
    counter = "rebuilds" if full else "refreshes"
    keys = _keys(show_id, "status", "layout", "base", "version", "fresh", "lock", "dirty", "gen", counter)
    args: list[bytes | str | int] = [
        token,
        gen,
        built.status,
        built.layout if full else b"",
        built.base,
        FRESH_MS,
        TTL_SECONDS,
    ]
    version = int(await _STORE(redis, keys, args))
    return None if version < 0 else version


async def release_lock(redis: RedisClient, show_id: int, token: str) -> None:
    await _RELEASE(redis, [_key(show_id, "lock")], [token])


def issue_seat_changes(redis: MuxRedis, show_id: int, changes: list[tuple[int, str]]) -> Awaitable[Any]:
    """Patch the cached map after a committed change: (seat_id, new status) pairs, not empty;
    bumps the version. Written now (MuxRedis.issue: with the change's other commands in one
    write), its reply awaited later.

    Call it after the commit of every hold, sale, release and expiry. A cold map is left cold (the
    next read rebuilds it from PostgreSQL); a rebuild running meanwhile replays these changes.
    """
    args: list[int | str] = []
    for seat_id, status in changes:
        args.append(int(seat_id))
        args.append(STATUS_CHAR[status])
    args.append(DIRTY_MS)
    return _APPLY.issue(redis, _keys(show_id, "status", "base", "version", "lock", "dirty"), args)


async def invalidate_seat_map(redis: RedisClient, show_id: int) -> None:
    """Drop the cached map (after a change made outside issue_seat_changes); the next read rebuilds."""
    pipe = redis.pipeline(transaction=True)
    pipe.incr(_key(show_id, "gen"))
    pipe.delete(*_keys(show_id, "layout", "status", "base", "fresh"))
    pipe.incr(_key(show_id, "version"))
    await pipe.execute()


async def rebuild_count(redis: RedisClient, show_id: int) -> int:
    """How many times the full map was rebuilt from PostgreSQL (tests assert on it)."""
    value = await redis.get(_key(show_id, "rebuilds"))
    return int(value or 0)

"""All Redis keys of the sale statistics (house rule 2). One show's keys share its hash slot.

bo:{S}:st:s:<minute>  hash "<second of the minute>|<field>" -> count (per-second tier, 2 h)
bo:{S}:st:m:<hour>    hash "<minute of the hour>|<field>" -> count   (per-minute tier, 30 days)
"""

from __future__ import annotations

from collections.abc import Mapping

from boxoffice.redis.client import RedisClient
from boxoffice.salestats.rules import SECOND_TIER_SECONDS

MINUTE_TIER_SECONDS = 30 * 24 * 3600

Points = dict[int, dict[str, int]]


def _second_key(show_id: int, minute: int) -> str:
    return f"bo:{{{show_id}}}:st:s:{minute}"


def _minute_key(show_id: int, hour: int) -> str:
    return f"bo:{{{show_id}}}:st:m:{hour}"


async def add(redis: RedisClient, counts: Mapping[tuple[int, int], Mapping[str, int]]) -> None:
    """Add {(show_id, epoch second): {field: n}} to both tiers, in one pipeline."""
    if not counts:
        return
    touched: set[str] = set()
    async with redis.pipeline(transaction=False) as pipe:
        for (show_id, second), fields in counts.items():
            minute = second // 60
            skey, mkey = _second_key(show_id, minute), _minute_key(show_id, minute // 60)
            for field, n in fields.items():
                pipe.hincrby(skey, f"{second % 60}|{field}", n)
                pipe.hincrby(mkey, f"{minute % 60}|{field}", n)
            touched.update((skey, mkey))
        for key in touched:
            pipe.expire(key, SECOND_TIER_SECONDS + 120 if ":st:s:" in key else MINUTE_TIER_SECONDS)
        await pipe.execute()


async def read(redis: RedisClient, show_id: int, start: int, end: int, tier: str) -> Points:
    """{epoch second of the point: {field: n}} for seconds [start, end) of one tier ("s" or "m")."""
    unit, span = (1, 60) if tier == "s" else (60, 3600)
    first, last = start // span, (end - 1) // span
    slots = list(range(first, last + 1))
    async with redis.pipeline(transaction=False) as pipe:
        for slot in slots:
            pipe.hgetall(_second_key(show_id, slot) if tier == "s" else _minute_key(show_id, slot))
        hashes = await pipe.execute()
    points: Points = {}
    for slot, raw in zip(slots, hashes, strict=True):
        for key, value in raw.items():
            k = key.decode() if isinstance(key, bytes) else str(key)
            offset, _, field = k.partition("|")
            t = slot * span + int(offset) * unit
            if start <= t < end:
                points.setdefault(t, {})[field] = int(value)
    return points

import asyncio

import pytest

from boxoffice.kit.localcache import LocalCache


async def test_single_flight_loads_once_for_a_burst() -> None:
    cache: LocalCache[str, int] = LocalCache(ttl_seconds=60, max_entries=10)
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return 42

    results = await asyncio.gather(*(cache.get_or_load("k", load) for _ in range(100)))
    assert results == [42] * 100 and calls == 1


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache: LocalCache[str, int] = LocalCache(ttl_seconds=60, max_entries=10)

    async def boom() -> int:
        await asyncio.sleep(0.01)
        raise LookupError("nope")

    results = await asyncio.gather(*(cache.get_or_load("k", boom) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)
    assert cache.get("k") is None


def test_entries_expire_and_the_size_is_bounded() -> None:
    cache: LocalCache[int, int] = LocalCache(ttl_seconds=0, max_entries=3)
    cache.put(1, 1)
    assert cache.get(1) is None  # ttl 0: already stale
    bounded: LocalCache[int, int] = LocalCache(ttl_seconds=60, max_entries=3)
    for i in range(5):
        bounded.put(i, i)
    assert [bounded.get(i) for i in range(5)] == [None, None, 2, 3, 4]


@pytest.mark.parametrize("value", [0, "", False])
def test_falsy_values_are_cached_like_any_other(value: object) -> None:
    cache: LocalCache[str, object] = LocalCache(ttl_seconds=60, max_entries=3)
    cache.put("k", value)
    assert cache.get("k") == value


def test_stale_returns_the_last_value_after_expiry() -> None:
    cache: LocalCache[int, int] = LocalCache(ttl_seconds=0, max_entries=3)
    assert cache.stale(1) is None
    cache.put(1, 7)
    assert cache.get(1) is None and cache.stale(1) == 7


async def test_write_behind_batches_per_group_and_schedules_one_flush() -> None:
    from boxoffice.kit.localcache import WriteBehind

    buffer: WriteBehind[int, int, int] = WriteBehind(interval_seconds=60)
    assert buffer.add(1, 10, 100) is True  # nothing scheduled yet: the caller schedules a flush
    assert 59 < buffer.delay() <= 60  # ... for when the interval since the last one has passed
    buffer.task = asyncio.get_running_loop().create_task(asyncio.sleep(0.01))
    assert buffer.add(1, 10, 101) is False  # scheduled already; the last write of a key wins
    buffer.add(2, 20, 200)
    assert buffer.take() == {1: {10: 101}, 2: {20: 200}}
    assert buffer.take() == {}
    await buffer.task
    assert buffer.add(1, 3, 3) is True
    buffer.task = asyncio.get_running_loop().create_task(asyncio.sleep(10))
    buffer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await buffer.task

"""A per-process TTL cache with single-flight loading.

For small data read on every hot request and changed rarely (a show's hold rules, tokens whose
signature was already verified). One instance per purpose lives on the Runtime; nothing here is
module-level state. Values are trusted only for `ttl` seconds; callers re-check time-dependent
facts (a token's exp) on every use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
G = TypeVar("G", bound=Hashable)
V = TypeVar("V")


class LocalCache(Generic[K, V]):
    def __init__(self, ttl_seconds: float, max_entries: int) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None  # an expired entry stays (see `stale`) until replaced or evicted
        return entry[1]

    def stale(self, key: K) -> V | None:
        """The last value loaded, expired or not: for decisions that a slightly old value
        cannot make wrong (a served ticket number stays served)."""
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V, ttl_seconds: float | None = None) -> None:
        """`ttl_seconds`: this entry's own lifetime (e.g. a verified token's, up to its expiry)."""
        if len(self._entries) >= self.max_entries:
            # Evict the oldest insertion (dicts keep insertion order): cheap and good enough here.
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (time.monotonic() + (self.ttl if ttl_seconds is None else ttl_seconds), value)

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """One load per key at a time in this process: a burst of cold reads waits for the first."""
        cached = self.get(key)
        if cached is not None:
            return cached
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters get it, nobody logs "never retrieved"
            raise
        finally:
            self._loading.pop(key, None)
        self.put(key, value)
        future.set_result(value)
        return value


class WriteBehind(Generic[G, K, V]):
    """Per-process writes gathered per group (a show) and flushed in one batch at most every
    `interval` seconds: many requests' small writes become one round trip, and none waits longer
    than about `interval`. Best effort: what is pending when the process stops is lost, so only
    marks that tolerate that belong here."""

    def __init__(self, interval_seconds: float) -> None:
        self.interval = interval_seconds
        self._pending: dict[G, dict[K, V]] = {}
        self._last = time.monotonic()
        self.task: asyncio.Task[None] | None = None  # the scheduled flush (kept: tasks are weak)

    def add(self, group: G, key: K, value: V) -> bool:
        """Buffer one write; True when no flush is scheduled (the caller schedules one, after
        `delay()`)."""
        self._pending.setdefault(group, {})[key] = value
        return self.task is None or self.task.done()

    def delay(self) -> float:
        """Seconds until the next flush may run (the interval since the last one)."""
        return max(0.0, self.interval - (time.monotonic() - self._last))

    def take(self) -> dict[G, dict[K, V]]:
        pending, self._pending = self._pending, {}
        self._last = time.monotonic()
        return pending

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

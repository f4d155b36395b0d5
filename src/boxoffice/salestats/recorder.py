"""The in-process side of the sale statistics: record outcomes in memory, flush every 250 ms.

`record` costs a dict update on the hot path. The first record starts one flusher task per process;
it stops by itself after a quiet spell and starts again with the next record. Losing a second of
counts when a process dies is acceptable: the database stays the truth for seats and money.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from datetime import datetime

import structlog

from boxoffice.redis.client import RedisClient
from boxoffice.runtime import Runtime
from boxoffice.salestats import rules, store

log = structlog.get_logger("boxoffice.salestats")

# 250 ms: the admission worker steers on the buyers' latency these flushes carry (adaptive
# admission, waiting_room/admission.py); a closed loop reacts no faster than it hears.
FLUSH_SECONDS = 0.25
IDLE_ROUNDS = 120  # the flusher exits after this many empty rounds (30 s)


class SaleStats:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._pending: defaultdict[tuple[int, int], defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self._task: asyncio.Task[None] | None = None

    def count(self, show_id: int, counter: str, at: datetime, n: int = 1) -> None:
        """Add n to a counter of rules.COUNTERS (holds_won, holds_refused, ...)."""
        if n:
            self._pending[(show_id, int(at.timestamp()))][rules.COUNTERS[counter]] += n
            self._ensure_flusher()

    def outcome(self, show_id: int, counter: str, latency: str, at: datetime, seconds: float) -> None:
        """A counted outcome with its latency in one call (a hold won, a payment failed ...)."""
        point = self._pending[(show_id, int(at.timestamp()))]
        point[rules.COUNTERS[counter]] += 1
        point[f"{rules.LATENCIES[latency]}{rules.bucket(seconds)}"] += 1
        self._ensure_flusher()

    def _ensure_flusher(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flusher())

    def discard(self) -> None:
        """Forget the counts not flushed yet (tests wipe the data they describe between runs)."""
        self._pending = defaultdict(lambda: defaultdict(int))

    async def flush(self) -> None:
        pending, self._pending = self._pending, defaultdict(lambda: defaultdict(int))
        if not pending:
            return
        try:
            await store.add(self._redis, pending)
        except Exception as exc:  # statistics are best effort; the sale must not notice
            log.warning("salestats_flush_failed", error=type(exc).__name__, points=len(pending))

    async def _flusher(self) -> None:
        idle = 0
        while idle < IDLE_ROUNDS:
            await asyncio.sleep(FLUSH_SECONDS)
            idle = 0 if self._pending else idle + 1
            await self.flush()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        await self.flush()


def sale_stats(runtime: Runtime) -> SaleStats:
    """This process's recorder (one per runtime, flushed when the runtime closes)."""
    return runtime.component("sale_stats", lambda: SaleStats(runtime.redis))

"""CPU limiters: bounds on expensive work per process, so a flood queues (or is refused at once)
instead of filling every core and starving the sale."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from argon2 import PasswordHasher

from boxoffice.errors import LoginBusy


class PasswordWork:
    """A bound on concurrent argon2 work in this process (on the Runtime): a login flood queues
    for `concurrency` slots instead of filling every core and starving the sale, and beyond
    `max_waiting` queued requests it is refused at once (429 LOGIN_BUSY + Retry-After).
    `hasher` is the process's argon2 parameters (settings.argon2_time_cost/_memory_kib/_parallelism)."""

    def __init__(
        self, concurrency: int = 1, max_waiting: int = 32, with_hasher: PasswordHasher | None = None
    ) -> None:
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self.hasher = with_hasher or PasswordHasher()
        self._slots: asyncio.Semaphore | None = None
        self._waiting = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots is None:  # created on first use, inside the running loop
            self._slots = asyncio.Semaphore(self.concurrency)
        if self._slots.locked() and self._waiting >= self.max_waiting:
            raise LoginBusy("Too many sign-ins at once; retry shortly", headers={"Retry-After": "1"})
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()

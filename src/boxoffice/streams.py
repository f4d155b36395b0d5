"""Caps on the Server-Sent-Event streams an API process serves (per user and in total)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

from boxoffice.errors import StreamLimit

T = TypeVar("T")


class StreamSlots:
    """Open Server-Sent-Event streams of this process (on the Runtime), capped per user and in
    total. A seat stream holds a Redis pool connection while it waits for events; uncapped, one
    fan's hundred streams emptied the pool and every login on the process answered 503."""

    def __init__(self, per_user: int, per_process: int) -> None:
        self.per_user = per_user
        self.per_process = per_process
        self.total = 0
        self._by_user: dict[int, int] = {}

    def acquire(self, user_id: int) -> None:
        mine = self._by_user.get(user_id, 0)
        if mine >= self.per_user or self.total >= self.per_process:
            scope = "you have" if mine >= self.per_user else "this server has"
            raise StreamLimit(
                f"Too many live streams ({scope} the most allowed)", headers={"Retry-After": "5"}
            )
        self._by_user[user_id] = mine + 1
        self.total += 1

    def release(self, user_id: int) -> None:
        left = self._by_user.get(user_id, 0) - 1
        if left > 0:
            self._by_user[user_id] = left
        else:
            self._by_user.pop(user_id, None)
        self.total = max(0, self.total - 1)

    async def hold(self, user_id: int, events: AsyncIterator[T]) -> AsyncIterator[T]:
        """`events`, with the slot (taken already by `acquire`) given back when the stream ends."""
        try:
            async for event in events:
                yield event
        finally:
            self.release(user_id)

"""The live Server-Sent-Event streams of an API process: the caps on how many there are
(StreamSlots) and the hub that lets them share their Redis reads (StreamHub).

A seat stream used to hold a Redis pool connection of its own (a blocking XREAD) for as long as it
was open: one fan's hundred streams emptied the pool and every login on the process answered 503.
Now every listener of a show's event stream in a process shares one reader: one blocking XREAD per
watched stream per process, whatever the number of listeners (on a Redis Cluster too, where an
XREAD may name keys of one slot only and each show's stream is its own slot).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import structlog

from boxoffice.errors import StreamLimit

T = TypeVar("T")
Item = TypeVar("Item")
log = structlog.get_logger("boxoffice.redis.streams")


class StreamSlots:
    """Open Server-Sent-Event streams of this process (on the Runtime), capped per user and in
    total: each costs the process a task, buffers and a socket (their Redis reads are shared)."""

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

    def open(self, user_id: int, events: AsyncIterator[T]) -> AsyncIterator[T]:
        """The one way a route streams: take the user's slot now (StreamLimit, a 429 or a
        RESOURCE_EXHAUSTED, before the stream starts) and give it back when the stream ends."""
        self.acquire(user_id)
        return self.hold(user_id, events)

    @contextlib.contextmanager
    def slot(self, user_id: int) -> Iterator[None]:
        """A slot for the duration of a block (the gRPC server streams)."""
        self.acquire(user_id)
        try:
            yield
        finally:
            self.release(user_id)

    async def hold(self, user_id: int, events: AsyncIterator[T]) -> AsyncIterator[T]:
        """`events`, with the slot (taken already by `acquire`) given back when the stream ends."""
        try:
            async for event in events:
                yield event
        finally:
            self.release(user_id)


# ---------------------------------------------------------------- the hub


def stream_id_key(stream_id: str) -> tuple[int, int]:
    """A Redis stream id "<ms>-<seq>" as a sortable pair."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


class Feed(Protocol[Item]):
    """A Redis stream the hub reads for its listeners; its Redis commands live with its keys
    (the seat map's: booking/service.py over booking/shield.py)."""

    @property
    def name(self) -> str:
        """The stream's key: one reader per name per process."""
        ...

    async def latest(self) -> str:
        """The newest entry's id ("0-0" when empty): where a reader starts."""
        ...

    async def read(self, cursor: str, *, block_ms: int | None) -> list[tuple[str, Item | None]]:
        """Entries after `cursor` (waiting up to block_ms for one; None: not at all). An entry
        whose item is None is not for listeners (another kind of event): it only moves the cursor."""
        ...

    async def resumable(self, cursor: str) -> bool:
        """Whether the stream still holds what came after `cursor` (not trimmed, not lost)."""
        ...


@dataclass(frozen=True, slots=True)
class Resync:
    """Given in place of entries a listener will not get (it fell behind, or Redis lost them):
    reload the whole state, then carry on with what follows, which is after `stream_id`."""

    stream_id: str | None


class Listener(Generic[Item]):
    """One stream's share of a channel: a bounded queue the reader fills and the stream drains.

    A listener that falls `size` entries behind (a client reading slowly) does not slow the reader
    or the other listeners: what it has not taken is dropped for one Resync, and it goes on from
    there. Entries are shared objects: nothing is copied per listener."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: deque[tuple[str, Item] | Resync] = deque()
        self._arrived = asyncio.Event()
        self.resyncs = 0

    def resync(self, at: str | None) -> None:
        self._items.clear()
        self._items.append(Resync(at))
        self.resyncs += 1
        self._arrived.set()

    def offer(self, entry: tuple[str, Item], before: str | None) -> None:
        if len(self._items) >= self._size:
            self.resync(before)
        self._items.append(entry)
        self._arrived.set()

    async def next(self, idle_seconds: float) -> tuple[str, Item] | Resync | None:
        """The next entry or Resync; None after `idle_seconds` without one."""
        if not self._items:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle_seconds):
                    await self._arrived.wait()
            if not self._items:
                return None
        return self._items.popleft()


@dataclass(eq=False)
class _Channel:
    feed: Feed[Any]
    listeners: set[Listener[Any]] = field(default_factory=set)
    cursor: str | None = None  # the last entry fanned out (or where reading starts)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class StreamHub:
    """One reader per Redis stream per process, fanning out to its listeners (on the Runtime).

    The first listener of a stream starts its reader; the reader ends (and its pool connection goes
    back) after the read in progress when the last listener has left. When Redis fails, the reader
    retries every `retry_seconds` while listeners keep getting their idle ticks; once Redis answers,
    it resumes from its cursor if the stream still holds it (nothing was lost: the outbox relay
    publishes what it could not), else every listener gets a Resync."""

    def __init__(self, *, queue_size: int = 1000, block_ms: int = 1000, retry_seconds: float = 1.0) -> None:
        self.queue_size = queue_size
        self.block_ms = block_ms
        self.retry_seconds = retry_seconds
        self._channels: dict[str, _Channel] = {}

    def listeners(self) -> dict[str, int]:
        """Stream name -> listeners in this process (readers still winding down show 0)."""
        return {name: len(channel.listeners) for name, channel in self._channels.items()}

    @asynccontextmanager
    async def listen(self, feed: Feed[Item]) -> AsyncIterator[Listener[Item]]:
        """A listener of `feed` from now on: entered once the reader knows its starting point, so
        nothing published after the `async with` began is missed."""
        channel = self._channels.get(feed.name)
        if channel is None:
            channel = self._channels[feed.name] = _Channel(feed)
            # A context of its own: the reader outlives the request that started it (and its log id).
            channel.task = asyncio.get_running_loop().create_task(
                self._read(channel), context=contextvars.Context()
            )
        listener: Listener[Item] = Listener(self.queue_size)
        channel.listeners.add(listener)
        try:
            await channel.ready.wait()
            yield listener
        finally:
            channel.listeners.discard(listener)

    async def _read(self, channel: _Channel) -> None:
        feed = channel.feed
        lost = False  # a call failed: once Redis answers, check what the listeners may have missed
        try:
            while channel.listeners:
                try:
                    if channel.cursor is None or lost:
                        await self._recover(channel, lost)
                        if lost:
                            log.info("stream_hub_recovered", stream=feed.name)
                        lost = False
                    channel.ready.set()
                    entries = await feed.read(channel.cursor or "0-0", block_ms=self.block_ms)
                except Exception as exc:  # an outage (or a bug): never the end of the channel
                    if not lost:
                        log.warning("stream_hub_read_failed", stream=feed.name, error=type(exc).__name__)
                    lost = True
                    channel.ready.set()  # listeners wait with idle ticks, not at the door
                    await asyncio.sleep(self.retry_seconds)
                    continue
                for entry_id, item in entries:
                    before, channel.cursor = channel.cursor, entry_id
                    if item is not None:
                        for listener in channel.listeners:
                            listener.offer((entry_id, item), before)
        finally:
            channel.ready.set()
            if self._channels.get(feed.name) is channel:
                del self._channels[feed.name]

    @staticmethod
    async def _recover(channel: _Channel, lost: bool) -> None:
        """Where to read from: the newest entry for a new reader; after a failure, the cursor if
        the stream still holds it, else the newest entry and a Resync for every listener."""
        if channel.cursor is not None and await channel.feed.resumable(channel.cursor):
            return
        channel.cursor = await channel.feed.latest()
        if lost:
            for listener in channel.listeners:
                listener.resync(channel.cursor)

    async def aclose(self) -> None:
        """Stop every reader (the process is shutting down); their listeners get idle ticks."""
        tasks = [c.task for c in self._channels.values() if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

"""The dashboard hub: one frame per show per second per process, shared by every open stream.

Ten browsers watching a show cost one frame computation a second, not ten (the issue's < 2 % of the
sale's throughput). A show's loop runs while it has subscribers and stops with the last one. The hub
lives on the app's state (one per process), never at module level.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from boxoffice.admin import service
from boxoffice.admin.schemas import DashboardFrame
from boxoffice.runtime import Runtime

log = structlog.get_logger("boxoffice.admin")

FRAME_SECONDS = 1.0
STREAM_MAX_SECONDS = 3600.0


@dataclass
class _Show:
    subscribers: int = 0
    # The frame as SSE data, serialized once per second for all viewers: with and without the heat.
    full: str | None = None
    lean: str | None = None
    heat: str | None = None
    frame: DashboardFrame | None = None
    at: float = 0.0
    seq: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    task: asyncio.Task[None] | None = None


class DashboardHub:
    def __init__(self) -> None:
        self._shows: dict[int, _Show] = {}

    async def _run(self, runtime: Runtime, show_id: int, state: _Show) -> None:
        while state.subscribers > 0:
            started = time.monotonic()
            full = lean = heat = computed = None
            try:
                computed = DashboardFrame.model_validate(await service.frame(runtime, show_id))
                full = computed.model_dump_json()
                lean = computed.model_copy(update={"heat": None}).model_dump_json()
                heat = computed.heat.status if computed.heat else None
            except Exception as exc:
                log.warning("dashboard_frame_failed", show_id=show_id, error=type(exc).__name__)
            async with state.changed:
                state.full, state.lean, state.heat = full, lean, heat
                state.frame, state.at = computed, time.monotonic()
                state.seq += 1
                state.changed.notify_all()
            await asyncio.sleep(max(0.05, FRAME_SECONDS - (time.monotonic() - started)))

    async def frames(
        self, runtime: Runtime, show_id: int, disconnected: Callable[[], Awaitable[bool]]
    ) -> AsyncIterator[str]:
        """Server-Sent Events: `event: frame` once a second; the seat heat only when it changed."""
        state = self._shows.setdefault(show_id, _Show())
        state.subscribers += 1
        if state.task is None or state.task.done():
            state.task = asyncio.get_running_loop().create_task(self._run(runtime, show_id, state))
        started = time.monotonic()
        seen, last_heat = state.seq, None
        try:
            yield "retry: 2000\n\n"
            while time.monotonic() - started < STREAM_MAX_SECONDS:
                async with state.changed:
                    if state.seq == seen:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(state.changed.wait(), 5.0)
                seen = state.seq
                if await disconnected():
                    return
                if state.full is None or state.lean is None:
                    yield ": frame unavailable\n\n"
                    continue
                body = state.lean if state.heat == last_heat else state.full
                last_heat = state.heat
                yield f"event: frame\ndata: {body}\n\n"
        finally:
            state.subscribers -= 1
            if state.subscribers <= 0:
                self._shows.pop(show_id, None)

    def latest_dict(self, show_id: int) -> dict[str, Any] | None:
        """The frame the streams got this second, so a snapshot beside open streams costs no new one."""
        state = self._shows.get(show_id)
        if state is None or state.frame is None or time.monotonic() - state.at > FRAME_SECONDS * 1.5:
            return None
        return state.frame.model_dump()

    def viewers(self, show_id: int) -> int:
        state = self._shows.get(show_id)
        return state.subscribers if state else 0

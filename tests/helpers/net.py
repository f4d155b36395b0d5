"""The one free-port helper, and polling under a deadline (never a sleep as synchronisation)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from boxoffice.kit.net import free_port

__all__ = ["eventually", "free_port", "wait_until"]


def wait_until(check: Callable[[], bool], *, deadline: float, what: str, every: float = 0.05) -> None:
    """Poll `check` until it is true; fail naming `what` after `deadline` seconds."""
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline} s waiting for {what}")
        time.sleep(every)


async def eventually(
    check: Callable[[], Awaitable[bool]], *, deadline: float, what: str, every: float = 0.02
) -> None:
    """The async twin of `wait_until`."""
    end = time.monotonic() + deadline
    while not await check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline} s waiting for {what}")
        await asyncio.sleep(every)

"""`boxoffice up`'s supervision of what it runs beside the API: the worker, the payment-provider
simulator and the embedded PostgreSQL and Redis. A child that dies is logged once, counted in
/metrics (boxoffice_child_restarts_total), reported by /readyz while it is down, and restarted
with a growing delay (a coroutine child: 1 s doubling to 30 s, back to 1 s after a minute of
health; an embedded server: retried every 0.5 s doubling to 3 s until it starts)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from boxoffice.runtime import Runtime

log = structlog.get_logger("boxoffice.supervisor")
MAX_DELAY_SECONDS = 30.0
SERVER_RETRY_MAX_SECONDS = 3.0
HEALTHY_AFTER_SECONDS = 60.0
POLL_SECONDS = 0.5


class Supervisor:
    def __init__(self, runtime: Runtime, stop: asyncio.Event) -> None:
        self.runtime = runtime
        self.stop = stop

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    def _died(self, name: str, reason: str) -> None:
        self.runtime.children[name] = f"restarting: {reason}"
        self.runtime.metrics.child_restarts.labels(name).inc()
        log.warning("child_died", child=name, reason=reason)

    def _back(self, name: str) -> None:
        self.runtime.children[name] = "ok"
        log.info("child_restarted", child=name)

    async def keep_running(self, name: str, run: Callable[[], Awaitable[object]]) -> None:
        """A coroutine child (the worker, the simulator): run again whenever it ends early."""
        loop = asyncio.get_running_loop()
        delay = 1.0
        self.runtime.children[name] = "ok"
        while not self.stop.is_set():
            started = loop.time()
            try:
                await run()
                reason = "exited"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = type(exc).__name__
            if self.stop.is_set():
                return
            self._died(name, reason)
            delay = 1.0 if loop.time() - started > HEALTHY_AFTER_SECONDS else delay
            await self._pause(delay)
            delay = min(delay * 2, MAX_DELAY_SECONDS)
            if not self.stop.is_set():
                self._back(name)

    async def watch_process(self, name: str, alive: Callable[[], bool], restart: Callable[[], None]) -> None:
        """An embedded server: when its process is gone, start it again (in a thread: starting
        PostgreSQL blocks for a second or two) until it is back."""
        self.runtime.children[name] = "ok"
        while not self.stop.is_set():
            await self._pause(POLL_SECONDS)
            if self.stop.is_set() or alive():
                continue
            self._died(name, "process exited")
            # A killed postmaster's backends take a moment to notice and exit; until then a new
            # one refuses to start. Retry soon (a failed start is cheap), never slower than 3 s.
            delay = 0.5
            while not self.stop.is_set():
                try:
                    await asyncio.to_thread(restart)
                except Exception as exc:
                    log.warning("child_restart_failed", child=name, reason=str(exc)[:200], retry_in=delay)
                    await self._pause(delay)
                    delay = min(delay * 2, SERVER_RETRY_MAX_SECONDS)
                    continue
                self._back(name)
                break

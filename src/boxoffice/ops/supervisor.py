"""`boxoffice up`'s supervision of what it runs: the API processes (HTTP and gRPC), the worker
process, the payment-provider simulator (a coroutine) and the embedded PostgreSQL and Redis.

A child that dies is logged once (`child_died`), counted, reported by /readyz while it is down, and
restarted: a process or coroutine after 0.25 s doubling to 30 s (back to 0.25 s after a minute
of health), an embedded server retried every 0.5 s doubling to 3 s until it starts. The API processes
are other processes than `up`: they read the children's state and restart counts from the data
dir's supervision.json, which `up` rewrites on every change (see `supervised`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Awaitable, Callable
from multiprocessing.process import BaseProcess
from pathlib import Path

import structlog

from boxoffice.kit.supervision import STATE_FILE

log = structlog.get_logger("boxoffice.ops.supervisor")
FIRST_DELAY_SECONDS = 0.25
MAX_DELAY_SECONDS = 30.0
SERVER_RETRY_MAX_SECONDS = 3.0
HEALTHY_AFTER_SECONDS = 60.0
POLL_SECONDS = 0.2  # how soon a death is seen (a waitpid or a poll() each time: cheap)
STOP_SECONDS = 10.0  # a child process asked to stop (SIGTERM) is killed after this


def _exit_reason(proc: BaseProcess) -> str:
    code = proc.exitcode
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _stop_process(proc: BaseProcess) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if it is still there after STOP_SECONDS."""
    proc.terminate()
    proc.join(STOP_SECONDS)
    if proc.is_alive():
        proc.kill()
        proc.join(5)


class Supervisor:
    def __init__(self, data_dir: Path, stop: asyncio.Event) -> None:
        self.path = data_dir / STATE_FILE
        self.stop = stop
        self.children: dict[str, str] = {}
        self.restarts: dict[str, int] = {}
        self.pids: dict[str, int] = {}  # the child processes' (for operators, and the chaos test)
        # Not part of readiness: an API process is not unready because a sibling is restarting
        # (the one answering is alive, and the shared listener queues connections meanwhile).
        self.siblings: set[str] = set()

    def _set(self, name: str, state: str) -> None:
        self.children[name] = state
        ready = {n: s for n, s in self.children.items() if n not in self.siblings}
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(
                {"pid": os.getpid(), "children": ready, "restarts": self.restarts, "pids": self.pids}, out
            )
        tmp.replace(self.path)

    def close(self) -> None:
        self.path.unlink(missing_ok=True)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    def _died(self, name: str, reason: str) -> None:
        self.restarts[name] = self.restarts.get(name, 0) + 1
        self._set(name, f"restarting: {reason}")
        log.warning("child_died", child=name, reason=reason)

    def _back(self, name: str) -> None:
        self._set(name, "ok")
        log.info("child_restarted", child=name)

    async def keep_running(self, name: str, run: Callable[[], Awaitable[object]]) -> None:
        """A coroutine child (the simulator): run again whenever it ends early. `run` may return
        why it ended (a string)."""
        loop = asyncio.get_running_loop()
        delay = FIRST_DELAY_SECONDS
        self._set(name, "ok")
        while not self.stop.is_set():
            started = loop.time()
            try:
                ended = await run()
                reason = ended if isinstance(ended, str) else "exited"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = type(exc).__name__
            if self.stop.is_set():
                return
            self._died(name, reason)
            delay = FIRST_DELAY_SECONDS if loop.time() - started > HEALTHY_AFTER_SECONDS else delay
            await self._pause(delay)
            delay = min(delay * 2, MAX_DELAY_SECONDS)
            if not self.stop.is_set():
                self._back(name)

    async def keep_process(
        self, name: str, start: Callable[[], BaseProcess], *, readiness: bool = True
    ) -> None:
        """A child process (an API process, the worker): started, and started again whenever it
        exits, as a coroutine child is; asked to stop (SIGTERM, then SIGKILL) when `up` stops."""
        if not readiness:
            self.siblings.add(name)

        async def run() -> str:
            proc = start()
            self.pids[name] = int(proc.pid or 0)
            self._set(name, "ok")
            try:
                while proc.is_alive() and not self.stop.is_set():
                    await self._pause(POLL_SECONDS)
            finally:
                if proc.is_alive():
                    await asyncio.to_thread(_stop_process, proc)
            return _exit_reason(proc)

        await self.keep_running(name, run)

    async def watch_process(self, name: str, alive: Callable[[], bool], restart: Callable[[], None]) -> None:
        """An embedded server: when its process is gone, start it again (in a thread: starting
        PostgreSQL blocks for a second or two) until it is back."""
        self._set(name, "ok")
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

"""The job runner: a Job is a name, an interval and a coroutine; `run_jobs` ticks each in a loop.

Imports no domain: the domains' job functions live in their `flows.py`, and `worker.py` is the one
table that names them (with their intervals from Settings).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from boxoffice.runtime import Runtime

log = structlog.get_logger("boxoffice.worker")


@dataclass(frozen=True)
class Job:
    name: str
    interval_seconds: float
    run: Callable[[Runtime], Awaitable[object]]


async def _loop(runtime: Runtime, job: Job, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await job.run(runtime)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A failing tick is logged (one line; a trace at most once a minute) and retried on
            # the next one; the worker keeps going.
            runtime.failures.report(log, "job_failed", exc, job=job.name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), job.interval_seconds)


async def run_jobs(runtime: Runtime, stop: asyncio.Event, jobs: list[Job]) -> None:
    log.info("worker_started", jobs=[j.name for j in jobs])
    await asyncio.gather(*(_loop(runtime, job, stop) for job in jobs))
    log.info("worker_stopped")

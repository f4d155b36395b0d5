"""Background jobs: each domain lists its periodic jobs; `run_worker` ticks them.

Any number of workers may run at once: every job is written so that two ticking together never do
the same work twice (SKIP LOCKED batches in PostgreSQL, one atomic Lua step in Redis).
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


def all_jobs() -> list[Job]:
    from boxoffice.booking.expiry import JOBS as booking_jobs
    from boxoffice.catalog.service import JOBS as catalog_jobs
    from boxoffice.events import JOBS as event_jobs
    from boxoffice.idempotency import JOBS as idempotency_jobs
    from boxoffice.payments.service import JOBS as payment_jobs
    from boxoffice.waiting_room.worker import JOBS as queue_jobs

    return [*queue_jobs, *booking_jobs, *catalog_jobs, *payment_jobs, *event_jobs, *idempotency_jobs]


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


async def run_worker(runtime: Runtime, stop: asyncio.Event, jobs: list[Job] | None = None) -> None:
    selected = all_jobs() if jobs is None else jobs
    log.info("worker_started", jobs=[j.name for j in selected])
    await asyncio.gather(*(_loop(runtime, job, stop) for job in selected))
    log.info("worker_stopped")

"""The worker: the one table of background jobs, with their intervals from Settings.

Any number of workers may run at once: every job is written so that two ticking together never do
the same work twice (SKIP LOCKED batches in PostgreSQL, one atomic Lua step in Redis). No domain
imports this module. The runner below imports no domain: a Job is a name, an interval and a
coroutine, and `run_jobs` ticks each in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from boxoffice.booking import flows as booking
from boxoffice.catalog import flows as catalog
from boxoffice.config import Settings
from boxoffice.db import idempotency
from boxoffice.db import outbox as events
from boxoffice.mail import flows as mail
from boxoffice.payments import flows as payments
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import flows as waiting_room

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


def all_jobs(settings: Settings) -> list[Job]:
    return [
        Job("queue_admission", settings.worker_tick_seconds, waiting_room.tick_all),
        Job("hold_expiry", settings.hold_expiry_interval_seconds, booking.expire_holds),
        Job("inventory_recount", settings.inventory_recount_interval_seconds, catalog.recount_on_sale),
        Job("payment_reconciliation", settings.reconcile_interval_seconds, payments.reconcile),
        Job("outbox_relay", settings.outbox_relay_interval_seconds, events.relay),
        Job("idempotency_purge", settings.idempotency_purge_interval_seconds, idempotency.purge_expired),
        Job("mail_sender", settings.mail_interval_seconds, mail.send_due),
    ]


async def run_worker(runtime: Runtime, stop: asyncio.Event, jobs: list[Job] | None = None) -> None:
    await run_jobs(runtime, stop, all_jobs(runtime.settings) if jobs is None else jobs)

"""The worker: the one table of background jobs, with their intervals from Settings.

Any number of workers may run at once: every job is written so that two ticking together never do
the same work twice (SKIP LOCKED batches in PostgreSQL, one atomic Lua step in Redis). No domain
imports this module (the runner itself is `jobs.py`).
"""

from __future__ import annotations

import asyncio

from boxoffice import events, idempotency
from boxoffice.booking import flows as booking
from boxoffice.catalog import flows as catalog
from boxoffice.config import Settings
from boxoffice.jobs import Job, run_jobs
from boxoffice.payments import flows as payments
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import flows as waiting_room


def all_jobs(settings: Settings) -> list[Job]:
    return [
        Job("queue_admission", settings.worker_tick_seconds, waiting_room.tick_all),
        Job("hold_expiry", settings.hold_expiry_interval_seconds, booking.expire_holds),
        Job("inventory_recount", settings.inventory_recount_interval_seconds, catalog.recount_on_sale),
        Job("payment_reconciliation", settings.reconcile_interval_seconds, payments.reconcile),
        Job("outbox_relay", settings.outbox_relay_interval_seconds, events.relay),
        Job("idempotency_purge", settings.idempotency_purge_interval_seconds, idempotency.purge_expired),
    ]


async def run_worker(runtime: Runtime, stop: asyncio.Event, jobs: list[Job] | None = None) -> None:
    await run_jobs(runtime, stop, all_jobs(runtime.settings) if jobs is None else jobs)

"""Shared helpers for the booking and payment tests (shows with seats, queue tokens, the simulator,
the invariant audit). Holds no tests itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text

from boxoffice.booking.flows import expire_holds
from boxoffice.catalog.service import refresh_inventory
from boxoffice.db.audit import audit
from boxoffice.payments.simulator import SimulatorConfig, create_simulator_app
from boxoffice.runtime import Runtime
from boxoffice.waiting_room.tokens import issue_queue_token
from tests.helpers.server import serve


def queue_token(runtime: Runtime, user_id: int, show_id: int) -> str:
    # Real time (PyJWT refuses an iat in its future) and a day's TTL: tests move the clock forward.
    token, _ = issue_queue_token(
        runtime.settings,
        user_id=user_id,
        show_id=show_id,
        ticket=1,
        ttl_seconds=86_400,
        now=datetime.now(UTC),
    )
    return token


def gated(runtime: Runtime, user: dict[str, Any], show_id: int, key: str | None = None) -> dict[str, str]:
    headers = {**user["headers"], "X-Queue-Token": queue_token(runtime, user["id"], show_id)}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


async def assert_invariants(runtime: Runtime) -> None:
    """The expiry sweep and the inventory recount, then SPEC I1-I4 against the database."""
    await expire_holds(runtime)
    async with runtime.sessions() as s, s.begin():
        await refresh_inventory(s, None, now=runtime.clock.now())
    async with runtime.sessions() as s, s.begin():
        report = await audit(s)
    assert report.ok, report.violations


async def seat_rows(runtime: Runtime, show_id: int) -> list[dict[str, Any]]:
    async with runtime.sessions() as s:
        rows = await s.execute(
            text("SELECT id, status, reservation_id FROM seats WHERE show_id = :s ORDER BY id"),
            {"s": show_id},
        )
        return [dict(r) for r in rows.mappings()]


async def balance(runtime: Runtime, user_id: int) -> int:
    async with runtime.sessions() as s:
        return int(
            (await s.execute(text("SELECT balance FROM users WHERE id = :u"), {"u": user_id})).scalar_one()
        )


@asynccontextmanager
async def simulator(runtime: Runtime, **config: Any) -> AsyncIterator[str]:
    """The payment-provider simulator on a free port; runtime.settings points at it meanwhile."""
    async with serve(create_simulator_app(SimulatorConfig(**config)), timeout_graceful_shutdown=1) as url:
        original = runtime.settings
        runtime.settings = original.model_copy(update={"payment_provider_url": url})
        try:
            yield url
        finally:
            runtime.settings = original


async def force(url: str, *outcomes: str) -> None:
    async with httpx.AsyncClient() as c:
        (await c.post(f"{url}/simulator/next", json={"outcomes": list(outcomes)})).raise_for_status()


async def sim_stats(url: str) -> dict[str, int]:
    async with httpx.AsyncClient() as c:
        resp = await c.get(f"{url}/simulator/stats")
        resp.raise_for_status()
        return dict(resp.json())

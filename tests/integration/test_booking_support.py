"""Shared helpers for the booking and payment tests (shows with seats, queue tokens, the simulator,
the invariant audit). Holds no tests itself."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from sqlalchemy import text

from boxoffice.audit import audit
from boxoffice.booking.expiry import expire_holds
from boxoffice.catalog.service import refresh_inventory
from boxoffice.payments.simulator import SimulatorConfig, create_simulator_app
from boxoffice.runtime import Runtime
from boxoffice.waiting_room.tokens import issue_queue_token


async def make_show(
    runtime: Runtime,
    *,
    seats: int = 10,
    price: int = 10_000,
    hold_seconds: int = 300,
    max_seats: int = 4,
    starts_in: timedelta = timedelta(days=30),
    sale_opened_ago: timedelta = timedelta(hours=1),
) -> dict[str, Any]:
    """A venue with one section of `seats` seats, a concert and a show on sale; returns ids."""
    now = datetime.now(UTC)
    async with runtime.sessions() as s, s.begin():
        venue = (await s.execute(text("INSERT INTO venues (name) VALUES ('Hall') RETURNING id"))).scalar_one()
        section = (
            await s.execute(
                text(
                    "INSERT INTO venue_sections (venue_id, name, position, rows, seats_per_row) "
                    "VALUES (:v, 'A', 1, 1, :n) RETURNING id"
                ),
                {"v": venue, "n": seats},
            )
        ).scalar_one()
        concert = (
            await s.execute(
                text("INSERT INTO concerts (venue_id, name, artist) VALUES (:v, 'Gig', 'Band') RETURNING id"),
                {"v": venue},
            )
        ).scalar_one()
        show = (
            await s.execute(
                text(
                    "INSERT INTO shows (concert_id, starts_at, sale_opens_at, hold_seconds, "
                    "max_seats_per_reservation) VALUES (:c, :starts, :opens, :hold, :max) RETURNING id"
                ),
                {
                    "c": concert,
                    "starts": now + starts_in,
                    "opens": now - sale_opened_ago,
                    "hold": hold_seconds,
                    "max": max_seats,
                },
            )
        ).scalar_one()
        await s.execute(
            text("INSERT INTO show_prices (show_id, section_id, price) VALUES (:s, :sec, :p)"),
            {"s": show, "sec": section, "p": price},
        )
        seat_ids = (
            (
                await s.execute(
                    text(
                        "INSERT INTO seats (show_id, section_id, section, row, number, price) "
                        "SELECT :s, :sec, 'A', 1, n, :p FROM generate_series(1, :n) AS n RETURNING id"
                    ),
                    {"s": show, "sec": section, "p": price, "n": seats},
                )
            )
            .scalars()
            .all()
        )
        await s.execute(
            text("INSERT INTO inventory (show_id, total, remaining) VALUES (:s, :n, :n)"),
            {"s": show, "n": seats},
        )
    return {"show_id": show, "concert_id": concert, "seat_ids": sorted(seat_ids)}


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def simulator(runtime: Runtime, **config: Any) -> AsyncIterator[str]:
    """The payment-provider simulator on a free port; runtime.settings points at it meanwhile."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_simulator_app(SimulatorConfig(**config)),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    original = runtime.settings
    runtime.settings = original.model_copy(update={"payment_provider_url": url})
    try:
        yield url
    finally:
        runtime.settings = original
        server.should_exit = True
        await task


async def force(url: str, *outcomes: str) -> None:
    async with httpx.AsyncClient() as c:
        (await c.post(f"{url}/simulator/next", json={"outcomes": list(outcomes)})).raise_for_status()


async def sim_stats(url: str) -> dict[str, int]:
    async with httpx.AsyncClient() as c:
        resp = await c.get(f"{url}/simulator/stats")
        resp.raise_for_status()
        return dict(resp.json())

"""Many concurrent card payments with a slow provider on the DEFAULT pool (20 + 10): all settle.

A card payment once held two pool connections (the idempotency claim's transaction idle across
the provider call, plus the payment's own) and could drain the pool. Idempotency's multi-step mode
keeps one connection at a time and none across the HTTP call; this fires the payments from
separate connections at a real server and checks the database and the provider's books after.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import text

from boxoffice.app import create_app
from boxoffice.config import Settings
from boxoffice.runtime import open_runtime
from tests.factories import make_user
from tests.helpers.server import serve
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import assert_invariants, gated, sim_stats, simulator

pytestmark = pytest.mark.slow

PRICE = 1_000
LATENCY_MS = 1_000
DEADLINE_SECONDS = 25  # 1 s of provider latency each, all at once: far below the pool's 30 s wait


@pytest.mark.parametrize("n", [40, 60])
async def test_concurrent_card_payments_settle_on_the_default_pool(settings, backends, clock, runtime, n):  # type: ignore[no-untyped-def]
    defaults = Settings.model_fields
    pool = settings.model_copy(
        update={
            "db_pool_size": defaults["db_pool_size"].default,
            "db_pool_overflow": defaults["db_pool_overflow"].default,
            "payment_provider_timeout_seconds": 5.0,  # above the simulator's latency
        }
    )
    assert (pool.db_pool_size, pool.db_pool_overflow) == (20, 10)
    async with open_runtime(pool, backends.database_url, backends.redis_url, clock=clock) as rt:
        show = await make_show(rt, seats=2 * n, price=PRICE, max_seats=2)
        users = [await make_user(rt) for _ in range(n)]
        async with serve(create_app(pool, runtime=rt)) as base, simulator(rt, latency_ms=LATENCY_MS) as sim:
            limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as c:
                holds = await asyncio.gather(
                    *(
                        c.post(
                            "/api/reservations",
                            json={
                                "show_id": show["show_id"],
                                "seat_ids": show["seat_ids"][2 * i : 2 * i + 2],
                            },
                            headers=gated(rt, u, show["show_id"]),
                        )
                        for i, u in enumerate(users)
                    )
                )
                assert [h.status_code for h in holds] == [201] * n
                started = time.monotonic()
                paid = await asyncio.gather(
                    *(
                        c.post(
                            "/api/payments",
                            json={"reservation_id": h.json()["reservation_id"], "method": "CARD"},
                            headers=gated(rt, u, show["show_id"], f"pay-{u['id']}"),
                        )
                        for h, u in zip(holds, users, strict=True)
                    )
                )
                elapsed = time.monotonic() - started
            stats = await sim_stats(sim)
    codes = Counter(r.status_code for r in paid)
    assert codes == {201: n}, [r.text for r in paid if r.status_code != 201][:3]
    assert elapsed < DEADLINE_SECONDS, f"{n} card payments took {elapsed:.1f} s"
    assert stats["charges"] == n and stats["captured_amount"] == n * 2 * PRICE
    async with runtime.sessions() as s:
        rows = dict((await s.execute(text("SELECT status, count(*) FROM payments GROUP BY status"))).all())
        reserved = (
            await s.execute(text("SELECT count(*) FROM reservations WHERE status = 'RESERVED'"))
        ).scalar_one()
    assert rows == {"SUCCEEDED": n} and reserved == n
    await assert_invariants(runtime)

"""50 concurrent payments for one reservation (one key / different keys, balance / card): one charge.

Real HTTP over separate connections to a real uvicorn server; the card provider is the real
simulator over HTTP; the database and the provider's books are asserted on afterwards.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import (
    assert_invariants,
    balance,
    gated,
    sim_stats,
    simulator,
)

pytestmark = pytest.mark.slow

N = 50
PRICE = 10_000


async def _held(runtime, live_server, user) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    show = await make_show(runtime, seats=4, price=PRICE)
    async with httpx.AsyncClient(base_url=live_server) as c:
        resp = await c.post(
            "/api/reservations",
            json={"show_id": show["show_id"], "seat_ids": show["seat_ids"][:2]},
            headers=gated(runtime, user, show["show_id"]),
        )
    assert resp.status_code == 201, resp.text
    return show["show_id"], resp.json()["reservation_id"]


async def _storm(runtime, live_server, user, show_id, rid, method, keys) -> list[httpx.Response]:  # type: ignore[no-untyped-def]
    limits = httpx.Limits(max_connections=N, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=live_server, limits=limits, timeout=60) as c:
        return await asyncio.gather(
            *(
                c.post(
                    "/api/payments",
                    json={"reservation_id": rid, "method": method},
                    headers=gated(runtime, user, show_id, key),
                )
                for key in keys
            )
        )


async def _money(runtime, rid) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async with runtime.sessions() as s:
        payments = (
            await s.execute(
                text("SELECT status, count(*) FROM payments WHERE reservation_id = :r GROUP BY status"),
                {"r": rid},
            )
        ).all()
        ledger = (
            await s.execute(
                text("SELECT count(*) FROM balance_ledger WHERE kind = 'PAYMENT' AND reference = :ref"),
                {"ref": f"reservation:{rid}"},
            )
        ).scalar_one()
        status = (
            await s.execute(text("SELECT status FROM reservations WHERE id = :r"), {"r": rid})
        ).scalar_one()
    return {"payments": dict(payments), "ledger": ledger, "reservation": status}


@pytest.mark.parametrize("same_key", [True, False], ids=["one-key", "different-keys"])
async def test_balance_storm_charges_once(runtime, live_server, same_key):  # type: ignore[no-untyped-def]
    u = await make_user(runtime, balance=10 * PRICE)
    show_id, rid = await _held(runtime, live_server, u)
    keys = ["same"] * N if same_key else [f"k{i}" for i in range(N)]
    responses = await _storm(runtime, live_server, u, show_id, rid, "BALANCE", keys)
    codes = Counter(r.status_code for r in responses)
    assert set(codes) <= {201, 409}, codes
    money = await _money(runtime, rid)
    assert money == {"payments": {"SUCCEEDED": 1}, "ledger": 1, "reservation": "RESERVED"}
    assert await balance(runtime, u["id"]) == 8 * PRICE
    if same_key:  # every 201 is the one payment (original or replay)
        assert len({r.json()["payment_id"] for r in responses if r.status_code == 201}) == 1
    else:
        assert codes[201] == 1
    await assert_invariants(runtime)


@pytest.mark.parametrize("same_key", [True, False], ids=["one-key", "different-keys"])
async def test_card_storm_charges_once(runtime, live_server, same_key):  # type: ignore[no-untyped-def]
    u = await make_user(runtime)
    show_id, rid = await _held(runtime, live_server, u)
    keys = ["same"] * N if same_key else [f"k{i}" for i in range(N)]
    async with simulator(runtime, latency_ms=50) as url:
        responses = await _storm(runtime, live_server, u, show_id, rid, "CARD", keys)
        stats = await sim_stats(url)
    codes = Counter(r.status_code for r in responses)
    assert set(codes) <= {201, 409}, codes
    assert stats["charges"] == 1 and stats["captured_amount"] == 2 * PRICE
    money = await _money(runtime, rid)
    assert money == {"payments": {"SUCCEEDED": 1}, "ledger": 0, "reservation": "RESERVED"}
    await assert_invariants(runtime)

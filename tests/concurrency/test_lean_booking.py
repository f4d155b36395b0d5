"""The lean booking path's guarantees under concurrency (a winning hold and a balance payment are
each ONE statement on a raw asyncpg connection, the Idempotency-Key claimed inside it).

Real HTTP over separate connections to a real uvicorn server; the database is checked afterwards.
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
from tests.integration.test_booking_support import assert_invariants, balance, gated

pytestmark = pytest.mark.slow

PRICE = 10_000


async def _fire(
    live_server: str, requests: list[tuple[str, dict[str, Any], dict[str, str]]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=live_server, limits=limits, timeout=60) as c:
        return await asyncio.gather(*(c.post(path, json=body, headers=h) for path, body, h in requests))


async def _hold(runtime, live_server, user, show, seats: int = 1) -> int:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=live_server) as c:
        resp = await c.post(
            "/api/reservations",
            json={"show_id": show["show_id"], "seat_ids": show["seat_ids"][:seats]},
            headers=gated(runtime, user, show["show_id"]),
        )
    assert resp.status_code == 201, resp.text
    return int(resp.json()["reservation_id"])


async def _scalar(runtime, sql: str, **params: Any) -> Any:  # type: ignore[no-untyped-def]
    async with runtime.sessions() as s:
        return (await s.execute(text(sql), params)).scalar_one()


async def test_many_payments_by_one_user_never_take_the_balance_below_zero(runtime, live_server):  # type: ignore[no-untyped-def]
    """12 holds of one user (one per show) paid all at once from a balance that covers 5."""
    user = await make_user(runtime, balance=5 * PRICE)
    shows = [await make_show(runtime, seats=2, price=PRICE) for _ in range(12)]
    holds = [await _hold(runtime, live_server, user, show) for show in shows]
    responses = await _fire(
        live_server,
        [
            (
                "/api/payments",
                {"reservation_id": rid, "method": "BALANCE"},
                {**user["headers"], "Idempotency-Key": f"p{i}"},
            )
            for i, rid in enumerate(holds)
        ],
    )
    answers = Counter((r.status_code, r.json().get("code")) for r in responses)
    assert answers == {(201, None): 5, (402, "INSUFFICIENT_BALANCE"): 7}, answers
    assert await balance(runtime, user["id"]) == 0
    ledger = await _scalar(
        runtime, "SELECT count(*) FROM balance_ledger WHERE user_id = :u AND kind = 'PAYMENT'", u=user["id"]
    )
    reserved = await _scalar(
        runtime, "SELECT count(*) FROM reservations WHERE user_id = :u AND status = 'RESERVED'", u=user["id"]
    )
    assert (ledger, reserved) == (5, 5)
    await assert_invariants(runtime)  # I3: the balance equals the sum of its ledger


async def test_one_key_fired_20_times_at_once_pays_once_and_every_answer_is_that_payment(
    runtime, live_server
):  # type: ignore[no-untyped-def]
    user = await make_user(runtime, balance=10 * PRICE)
    show = await make_show(runtime, seats=4, price=PRICE)
    rid = await _hold(runtime, live_server, user, show, seats=2)
    body = {"reservation_id": rid, "method": "BALANCE"}
    responses = await _fire(
        live_server, [("/api/payments", body, {**user["headers"], "Idempotency-Key": "same"})] * 20
    )
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses if r.status_code != 201]
    assert len({r.json()["payment_id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 19
    assert await balance(runtime, user["id"]) == 8 * PRICE
    payments = await _scalar(runtime, "SELECT count(*) FROM payments WHERE reservation_id = :r", r=rid)
    assert payments == 1
    await assert_invariants(runtime)


async def test_one_key_fired_20_times_at_once_holds_once(runtime, live_server):  # type: ignore[no-untyped-def]
    user = await make_user(runtime)
    show = await make_show(runtime, seats=4)
    body = {"show_id": show["show_id"], "seat_ids": show["seat_ids"][:2]}
    headers = gated(runtime, user, show["show_id"], "hold-once")
    responses = await _fire(live_server, [("/api/reservations", body, headers)] * 20)
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses if r.status_code != 201]
    assert len({r.json()["reservation_id"] for r in responses}) == 1
    assert all(r.json()["seats"] == responses[0].json()["seats"] for r in responses)
    held = await _scalar(
        runtime,
        "SELECT count(*) FROM reservations WHERE user_id = :u AND show_id = :s",
        u=user["id"],
        s=show["show_id"],
    )
    assert held == 1
    await assert_invariants(runtime)


async def test_an_expired_key_is_taken_over_inside_the_hold_statement(runtime, live_server):  # type: ignore[no-untyped-def]
    """The statement purges the expired key row and inserts the new one (no unique violation)."""
    user = await make_user(runtime)
    first, second = await make_show(runtime, seats=2), await make_show(runtime, seats=2)
    async with httpx.AsyncClient(base_url=live_server) as c:
        one = await c.post(
            "/api/reservations",
            json={"show_id": first["show_id"], "seat_ids": first["seat_ids"][:1]},
            headers=gated(runtime, user, first["show_id"], "reused-later"),
        )
        assert one.status_code == 201, one.text
        async with runtime.sessions() as s, s.begin():
            await s.execute(
                text("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = :k"),
                {"k": "reused-later"},
            )
        two = await c.post(
            "/api/reservations",
            json={"show_id": second["show_id"], "seat_ids": second["seat_ids"][:1]},
            headers=gated(runtime, user, second["show_id"], "reused-later"),
        )
    assert two.status_code == 201, two.text
    assert two.headers.get("Idempotent-Replayed") is None
    assert two.json()["reservation_id"] != one.json()["reservation_id"]
    stored = await _scalar(
        runtime,
        "SELECT response_body->>'reservation_id' FROM idempotency_keys WHERE user_id = :u AND key = 'reused-later'",
        u=user["id"],
    )
    assert int(stored) == two.json()["reservation_id"]
    await assert_invariants(runtime)

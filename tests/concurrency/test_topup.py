"""Concurrent top-ups over separate connections to a real server: exactly-once per Idempotency-Key."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from boxoffice.db import tables
from boxoffice.db.audit import audit
from boxoffice.runtime import Runtime
from tests.factories import make_user

N = 50


@pytest.fixture(autouse=True)
async def _balances_match_ledger(runtime: Runtime) -> AsyncIterator[None]:
    yield
    async with runtime.sessions() as session, session.begin():
        report = await audit(session, include_inventory=False)
    assert report.violations["I3_balance_ledger_mismatch"] == []


async def _fire(live_server: str, headers_list: list[dict[str, str]], amount: int) -> list[httpx.Response]:
    # One connection per request: the requests really overlap inside the server.
    limits = httpx.Limits(max_connections=N, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=live_server, limits=limits, timeout=30) as c:
        return await asyncio.gather(
            *(c.post("/api/users/me/balance", headers=h, json={"amount": amount}) for h in headers_list)
        )


async def _ledger(runtime: Runtime, user_id: int) -> tuple[int, int, int]:
    async with runtime.sessions() as s:
        count, total = (
            await s.execute(
                select(func.count(), func.coalesce(func.sum(tables.balance_ledger.c.amount), 0)).where(
                    tables.balance_ledger.c.user_id == user_id, tables.balance_ledger.c.kind == "TOPUP"
                )
            )
        ).one()
        balance = (
            await s.execute(select(tables.users.c.balance).where(tables.users.c.id == user_id))
        ).scalar_one()
    return int(count), int(total), int(balance)


async def test_fifty_concurrent_top_ups_with_one_key_charge_once(live_server: str, runtime: Runtime) -> None:
    user = await make_user(runtime, balance=1_000)
    headers = user["headers"] | {"Idempotency-Key": uuid.uuid4().hex}
    responses = await _fire(live_server, [headers] * N, 700)
    statuses = [r.status_code for r in responses]
    # Every answer is the one stored result, or "still in progress" for a request that gave up waiting.
    assert set(statuses) <= {200, 409}, statuses
    assert statuses.count(200) >= 1
    expected = {"user_id": user["id"], "balance": 1_700, "amount": 700, "balance_currency": "KRW"}
    assert all(r.json() == expected for r in responses if r.status_code == 200)
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "IDEMPOTENCY_IN_PROGRESS"
    assert await _ledger(runtime, user["id"]) == (1, 700, 1_700)
    # A retry after the storm replays the stored answer and changes nothing.
    again = await _fire(live_server, [headers], 700)
    assert again[0].status_code == 200 and again[0].json()["balance"] == 1_700
    assert await _ledger(runtime, user["id"]) == (1, 700, 1_700)


async def test_fifty_concurrent_top_ups_with_different_keys_all_count(
    live_server: str, runtime: Runtime
) -> None:
    user = await make_user(runtime)
    headers = [user["headers"] | {"Idempotency-Key": f"k-{i}"} for i in range(N)]
    responses = await _fire(live_server, headers, 3)
    assert [r.status_code for r in responses] == [200] * N
    # Each request saw a distinct balance: the updates serialized on the row, none was lost.
    assert sorted(r.json()["balance"] for r in responses) == [3 * (i + 1) for i in range(N)]
    assert await _ledger(runtime, user["id"]) == (N, 3 * N, 3 * N)

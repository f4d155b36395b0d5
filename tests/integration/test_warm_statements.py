"""The buyers' hot statements (db/warm.py) plan on a real PostgreSQL with NULL parameters and
execute nothing: a hold, a balance payment and its read are registered, and warming a connection
writes no row. A statement that does not plan is a warning at startup, not a failed start."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import text

from boxoffice.booking import repository as booking_repository
from boxoffice.db import warm
from boxoffice.payments import repository as payments_repository
from boxoffice.runtime import Runtime
from boxoffice.tickets import repository as tickets_repository

_ROWS = text(
    "SELECT (SELECT count(*) FROM reservations) + (SELECT count(*) FROM payments)"
    " + (SELECT count(*) FROM tickets) + (SELECT count(*) FROM idempotency_keys)"
    " + (SELECT count(*) FROM mail_outbox) + (SELECT count(*) FROM outbox)"
)


def test_the_buyers_statements_are_registered() -> None:
    for sql in (
        booking_repository._HOLD,
        payments_repository._PAY_FROM_BALANCE,
        tickets_repository._SEATS_TO_SELL,
    ):
        assert sql in warm.HOT
    assert warm.parameter_count(booking_repository._HOLD) == 10
    assert warm.parameter_count("SELECT 1") == 0


async def test_warming_plans_every_statement_and_writes_nothing(runtime: Runtime) -> None:
    async with runtime.engine.connect() as conn:
        before = (await conn.execute(_ROWS)).scalar_one()
        raw = (await conn.get_raw_connection()).driver_connection
        await warm.warm(raw)  # raises if any hot statement does not parse or plan
        plans = [await raw.fetch("EXPLAIN " + sql, *([None] * warm.parameter_count(sql))) for sql in warm.HOT]
        assert all(plan for plan in plans)
        assert (await conn.execute(_ROWS)).scalar_one() == before
    await runtime.warm_up(2)  # the startup path runs it on the pool's connections


async def test_a_statement_that_does_not_plan_is_logged_not_fatal(
    runtime: Runtime, json_logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warm, "HOT", [*warm.HOT, "SELECT no_such_column FROM shows WHERE id = $1"])
    await runtime.warm_up(2)  # does not raise: the pool's connections serve unwarmed
    events = [json.loads(line) for line in json_logs.getvalue().splitlines() if line.strip()]
    failed = [e for e in events if e.get("message") == "warm_up_failed"]
    assert len(failed) == 1 and failed[0]["connections"] == 2, events
    assert "no_such_column" in failed[0]["error"]
    async with runtime.engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1

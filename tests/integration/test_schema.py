"""The schema migrates both ways, and the database itself refuses invariant violations."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from sqlalchemy import text

from boxoffice.db.migrate import downgrade, upgrade
from boxoffice.db.uow import plain_url
from boxoffice.ops.backends.datadir import Backends
from boxoffice.runtime import Runtime
from tests.conftest import _create_database, _drop_database, _with_database


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_upgrade_from_empty_to_head_and_back_to_empty(backends: Backends) -> None:
    name = f"bo_migr_{uuid.uuid4().hex[:8]}"
    await _create_database(backends.database_url, name)
    url = _with_database(backends.database_url, name)
    try:
        assert await _tables(url) == set()
        await asyncio.to_thread(upgrade, url)
        after_up = await _tables(url)
        assert {
            "users",
            "seats",
            "reservations",
            "reservation_seats",
            "payments",
            "outbox",
            "inventory",
            "idempotency_keys",
            "balance_ledger",
            "venues",
            "venue_sections",
            "concerts",
            "shows",
        } <= after_up
        await asyncio.to_thread(downgrade, url)
        assert await _tables(url) == {"alembic_version"}
        await asyncio.to_thread(upgrade, url)  # and up again: downgrade left nothing behind
        assert "seats" in await _tables(url)
    finally:
        await _drop_database(backends.database_url, name)


async def _seed_show(conn: asyncpg.Connection) -> dict[str, int]:
    user = await conn.fetchval(
        "INSERT INTO users (email, password_hash, name) VALUES ('a@x.test', 'h', 'A') RETURNING id"
    )
    user2 = await conn.fetchval(
        "INSERT INTO users (email, password_hash, name) VALUES ('b@x.test', 'h', 'B') RETURNING id"
    )
    venue = await conn.fetchval("INSERT INTO venues (name) VALUES ('V') RETURNING id")
    section = await conn.fetchval(
        "INSERT INTO venue_sections (venue_id, name, position, rows, seats_per_row) VALUES ($1, 'A', 0, 1, 2) RETURNING id",
        venue,
    )
    concert = await conn.fetchval(
        "INSERT INTO concerts (venue_id, name, artist) VALUES ($1, 'C', 'X') RETURNING id", venue
    )
    show = await conn.fetchval(
        "INSERT INTO shows (concert_id, starts_at, sale_opens_at) VALUES ($1, now() + interval '30 days', now()) RETURNING id",
        concert,
    )
    seat = await conn.fetchval(
        "INSERT INTO seats (show_id, section_id, section, row, number, price) VALUES ($1, $2, 'A', 1, 1, 100) RETURNING id",
        show,
        section,
    )
    await conn.execute("INSERT INTO inventory (show_id, total, remaining) VALUES ($1, 2, 2)", show)
    return {"user": user, "user2": user2, "show": show, "seat": seat}


async def _reserve(conn: asyncpg.Connection, user: int, show: int, seat: int) -> int:
    rid: int = await conn.fetchval(
        "INSERT INTO reservations (user_id, show_id, status, total_price, seat_count, expires_at) "
        "VALUES ($1, $2, 'TEMP_RESERVED', 100, 1, now() + interval '5 minutes') RETURNING id",
        user,
        show,
    )
    await conn.execute(
        "INSERT INTO reservation_seats (reservation_id, seat_id, show_id, price) VALUES ($1, $2, $3, 100)",
        rid,
        seat,
        show,
    )
    return rid


async def test_database_refuses_invariant_violations_even_bypassing_the_app(runtime: Runtime) -> None:
    conn = await asyncpg.connect(plain_url(runtime.database_url))
    try:
        ids = await _seed_show(conn)
        await _reserve(conn, ids["user"], ids["show"], ids["seat"])
        # A second live reservation of the same seat (by someone else) is refused by the unique index.
        with pytest.raises(asyncpg.UniqueViolationError):
            await _reserve(conn, ids["user2"], ids["show"], ids["seat"])
        # A negative balance is refused by a CHECK.
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE users SET balance = balance - 1 WHERE id = $1", ids["user"])
        # remaining below 0 (and above total) is refused.
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE inventory SET remaining = -1 WHERE show_id = $1", ids["show"])
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE inventory SET remaining = total + 1 WHERE show_id = $1", ids["show"])
        # A negative price is refused.
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE seats SET price = -5 WHERE id = $1", ids["seat"])
        # A reservation can have at most one live (pending or succeeded) payment.
        rid = await conn.fetchval("SELECT id FROM reservations LIMIT 1")
        await conn.execute(
            "INSERT INTO payments (reservation_id, user_id, amount, method, status) VALUES ($1, $2, 100, 'BALANCE', 'SUCCEEDED')",
            rid,
            ids["user"],
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO payments (reservation_id, user_id, amount, method, status) VALUES ($1, $2, 100, 'CARD', 'PENDING')",
                rid,
                ids["user"],
            )
    finally:
        await conn.close()


async def test_the_live_flag_frees_a_seat_for_a_new_reservation(runtime: Runtime) -> None:
    """Once the old reservation's seat row is no longer live, the seat can be reserved again."""
    async with runtime.engine.connect() as sa_conn:
        assert (await sa_conn.execute(text("SELECT count(*) FROM reservation_seats"))).scalar() == 0
    conn = await asyncpg.connect(plain_url(runtime.database_url))
    try:
        ids = await _seed_show(conn)
        first = await _reserve(conn, ids["user"], ids["show"], ids["seat"])
        await conn.execute("UPDATE reservation_seats SET live = false WHERE reservation_id = $1", first)
        await conn.execute("UPDATE reservations SET status = 'EXPIRED' WHERE id = $1", first)
        await _reserve(conn, ids["user2"], ids["show"], ids["seat"])
        assert await conn.fetchval("SELECT count(*) FROM reservation_seats WHERE live") == 1
    finally:
        await conn.close()


async def test_0011_every_show_steers_by_default_and_the_column_goes_back_down(backends: Backends) -> None:
    """Shows that exist when 0011 runs keep adaptive admission (it steered them all before), new
    ones default to it, and the downgrade drops the column and nothing else."""
    name = f"bo_adapt_{uuid.uuid4().hex[:8]}"
    before = "0011_queue_adaptive-1"  # whichever revision 0011 follows
    await _create_database(backends.database_url, name)
    url = _with_database(backends.database_url, name)
    try:
        await asyncio.to_thread(upgrade, url, before)
        conn = await asyncpg.connect(plain_url(url))
        try:
            venue = await conn.fetchval("INSERT INTO venues (name) VALUES ('V') RETURNING id")
            concert = await conn.fetchval(
                "INSERT INTO concerts (venue_id, name, artist) VALUES ($1, 'C', 'X') RETURNING id", venue
            )
            new_show = (
                "INSERT INTO shows (concert_id, starts_at, sale_opens_at) "
                "VALUES ($1, now() + interval '30 days', now()) RETURNING id"
            )
            old = await conn.fetchval(new_show, concert)
            await asyncio.to_thread(upgrade, url, "0011_queue_adaptive")
            assert await conn.fetchval("SELECT queue_adaptive FROM shows WHERE id = $1", old) is True
            new = await conn.fetchval(new_show, concert)
            assert await conn.fetchval("SELECT queue_adaptive FROM shows WHERE id = $1", new) is True
            with pytest.raises(asyncpg.NotNullViolationError):
                await conn.execute("UPDATE shows SET queue_adaptive = NULL WHERE id = $1", new)
            await conn.execute("UPDATE shows SET queue_adaptive = false WHERE id = $1", new)
            await asyncio.to_thread(downgrade, url, before)
            columns = await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE column_name = 'queue_adaptive'"
            )
            assert columns == []
            assert await conn.fetchval("SELECT count(*) FROM shows") == 2
        finally:
            await conn.close()
    finally:
        await _drop_database(backends.database_url, name)

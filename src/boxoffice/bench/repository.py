"""All SQL of the bench (house rule 2): bulk fans, the ceiling's scratch seats, end-of-run counts."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _table(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"bad scratch table name {name!r}")
    return name


# ---- fans -------------------------------------------------------------------------------------

_INSERT_FANS = text(
    """
    WITH fans AS (
        INSERT INTO users (email, password_hash, name, role, balance, email_verified)
        SELECT :prefix || g || '@bench.invalid', :password_hash, 'Bench Fan ' || g, 'USER', :balance, true
        FROM generate_series(1, :count) AS g
        RETURNING id, balance
    ), ledger AS (
        INSERT INTO balance_ledger (user_id, amount, kind, reference, balance_after)
        SELECT id, balance, 'ADJUSTMENT', 'bench setup', balance FROM fans WHERE balance > 0
    )
    SELECT id FROM fans ORDER BY id
    """
)


async def insert_fans(
    session: AsyncSession, *, prefix: str, count: int, password_hash: str, balance: int
) -> list[int]:
    """`count` users with one shared password hash, their balance written through the ledger (I3)."""
    rows = await session.execute(
        _INSERT_FANS, {"prefix": prefix, "count": count, "password_hash": password_hash, "balance": balance}
    )
    return [int(r[0]) for r in rows]


# ---- end of run -------------------------------------------------------------------------------

_SEAT_COUNTS = text("SELECT status, count(*) FROM seats WHERE show_id = :show_id GROUP BY status")
_RESERVATION_COUNTS = text(
    "SELECT status, count(*) FROM reservations WHERE show_id = :show_id GROUP BY status"
)


async def seat_counts(session: AsyncSession, show_id: int) -> dict[str, int]:
    rows = await session.execute(_SEAT_COUNTS, {"show_id": show_id})
    return {str(status): int(n) for status, n in rows}


async def reservation_counts(session: AsyncSession, show_id: int) -> dict[str, int]:
    rows = await session.execute(_RESERVATION_COUNTS, {"show_id": show_id})
    return {str(status): int(n) for status, n in rows}


_SEATS_BY_USER = text(
    """
    SELECT r.user_id, sum(r.seat_count) FROM reservations r
    WHERE r.show_id = :show_id AND r.status = 'RESERVED' GROUP BY r.user_id
    """
)


async def seats_by_user(session: AsyncSession, show_id: int) -> dict[int, int]:
    """RESERVED seats of the show per buyer (the bots' report)."""
    rows = await session.execute(_SEATS_BY_USER, {"show_id": show_id})
    return {int(user_id): int(n) for user_id, n in rows}


async def reset_pg_stat_statements(session: AsyncSession) -> bool:
    try:
        async with session.begin_nested():
            await session.execute(text("SELECT pg_stat_statements_reset()"))
        return True
    except Exception:
        return False


_TOP_STATEMENTS = text(
    """
    SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 160) AS query, calls,
           round(total_exec_time::numeric, 1) AS total_ms, round(mean_exec_time::numeric, 3) AS mean_ms
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
    ORDER BY total_exec_time DESC LIMIT :limit
    """
)


async def top_statements(session: AsyncSession, limit: int = 8) -> list[dict[str, Any]]:
    """The statements that took the most PostgreSQL time during the run (empty when unavailable)."""
    try:
        async with session.begin_nested():
            rows = (await session.execute(_TOP_STATEMENTS, {"limit": limit})).mappings().all()
    except Exception:
        return []
    return [{k: (float(v) if k.endswith("_ms") else v) for k, v in row.items()} for row in rows]


# ---- ceiling scratch table (raw asyncpg: the ceiling measures the driver, not SQLAlchemy) -------


async def create_scratch_seats(conn: asyncpg.Connection, table: str, count: int) -> None:
    """A copy of the seats table's shape (status CHECK, (show_id, status) index) with `count` rows."""
    t = _table(table)
    await conn.execute(f"DROP TABLE IF EXISTS {t}")
    await conn.execute(
        f"""
        CREATE TABLE {t} (
            id bigint PRIMARY KEY,
            show_id bigint NOT NULL,
            status text NOT NULL DEFAULT 'AVAILABLE'
                CHECK (status IN ('AVAILABLE', 'TEMP_RESERVED', 'RESERVED')),
            reservation_id bigint,
            hold_expires_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    await conn.execute(f"INSERT INTO {t} (id, show_id) SELECT g, 1 FROM generate_series(1, $1::int) g", count)  # noqa: S608 - name checked by _table
    await conn.execute(f"CREATE INDEX {t}_status_idx ON {t} (show_id, status)")
    await conn.execute(f"ANALYZE {t}")


def scratch_hold_sql(table: str) -> str:
    t = _table(table)
    return (
        f"UPDATE {t} SET status = 'TEMP_RESERVED', reservation_id = $2, "  # noqa: S608 - name checked by _table
        "hold_expires_at = now() + interval '10 seconds', updated_at = now() "
        "WHERE id = ANY($1::bigint[]) AND status = 'AVAILABLE' RETURNING id"
    )


def scratch_reset_sql(table: str) -> str:
    t = _table(table)
    return (
        f"UPDATE {t} SET status = 'AVAILABLE', reservation_id = NULL, hold_expires_at = NULL "  # noqa: S608
        "WHERE id BETWEEN $1 AND $2 AND status <> 'AVAILABLE'"
    )


async def drop_scratch_seats(conn: asyncpg.Connection, table: str) -> None:
    await conn.execute(f"DROP TABLE IF EXISTS {_table(table)}")


async def make_admin(session: AsyncSession, user_id: int) -> None:
    await session.execute(text("UPDATE users SET role = 'ADMIN' WHERE id = :id"), {"id": user_id})


# ---- the door bench ---------------------------------------------------------------------------

_SHOW_SEAT_IDS = text("SELECT id FROM seats WHERE show_id = :s ORDER BY section_id, row, number")
_SHOW_TICKETS = text("SELECT id, payload, status FROM tickets WHERE show_id = :s ORDER BY id")
_DOOR_STAFF = text(
    """
    INSERT INTO users (email, password_hash, name, role, balance, email_verified)
    VALUES ('door-' || gen_random_uuid() || '@bench.invalid', 'not-a-hash', 'Bench Gate', 'DOOR', 0, true)
    RETURNING id
    """
)
# After the doors: no ticket admitted twice online, no void ticket admitted, USED = admitted.
_DOOR_AUDIT = text(
    """
    SELECT
      (SELECT count(*) FROM (SELECT ticket_id FROM checkins
                             WHERE show_id = :s AND result = 'VALID' AND NOT offline
                             GROUP BY ticket_id HAVING count(*) > 1) twice) AS entered_twice,
      (SELECT count(*) FROM tickets t WHERE t.show_id = :s AND t.status = 'VOID'
         AND EXISTS (SELECT 1 FROM checkins c WHERE c.ticket_id = t.id AND c.result = 'VALID'))
        AS void_entered,
      abs((SELECT count(*) FROM tickets WHERE show_id = :s AND status = 'USED')
          - (SELECT count(DISTINCT ticket_id) FROM checkins WHERE show_id = :s AND result = 'VALID'))
        AS used_vs_admitted_mismatch
    """
)


async def show_seat_ids(session: AsyncSession, show_id: int) -> list[int]:
    return [int(r[0]) for r in await session.execute(_SHOW_SEAT_IDS, {"s": show_id})]


async def show_tickets(session: AsyncSession, show_id: int) -> list[dict[str, Any]]:
    return [dict(r) for r in (await session.execute(_SHOW_TICKETS, {"s": show_id})).mappings()]


async def insert_door_staff(session: AsyncSession) -> int:
    return int((await session.execute(_DOOR_STAFF)).scalar_one())


async def door_audit(session: AsyncSession, show_id: int) -> dict[str, int]:
    row = (await session.execute(_DOOR_AUDIT, {"s": show_id})).mappings().one()
    return {k: int(v) for k, v in row.items()}

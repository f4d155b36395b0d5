"""All tickets SQL (house rule 2), on the raw asyncpg connection: the balance payment's lean unit of
work has only that, and a session's transaction hands it over with `driver(session)`, so both
payment paths issue tickets with the same statements inside their own confirming transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.db.warm import hot


async def driver(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under a session, inside the session's transaction."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver_conn: asyncpg.Connection = raw.driver_connection
    return driver_conn


# The seats a confirmed reservation sold, with what a ticket names (read inside the confirming
# transaction, so it sees the seats it just made RESERVED).
_SOLD_SEATS = """
SELECT s.id AS seat_id, s.section, s.row, s.number, s.show_id, r.user_id, u.name AS holder
FROM reservations r
JOIN seats s ON s.reservation_id = r.id AND s.status = 'RESERVED'
JOIN users u ON u.id = r.user_id
WHERE r.id = $1 AND r.status = 'RESERVED'
ORDER BY s.id
"""

# The seats a user's live hold would sell, with what a ticket names: the balance payment signs its
# tickets from this read, before its one statement (which sells exactly these seats or nothing).
_SEATS_TO_SELL = hot("""
SELECT s.id AS seat_id, s.section, s.row, s.number, s.show_id, r.user_id, u.name AS holder
FROM reservations r
JOIN seats s ON s.reservation_id = r.id AND s.status = 'TEMP_RESERVED'
JOIN users u ON u.id = r.user_id
WHERE r.id = $1 AND r.user_id = $2 AND r.status = 'TEMP_RESERVED'
ORDER BY s.id
""")


def issue_ctes(
    *, gate: str, codes: str, seat_ids: str, holders: str, payloads: str, key_id: str, now: str
) -> str:
    """The tickets and the order confirmation mail as CTEs of a larger statement (the balance
    payment's): `issued` inserts one ticket per signed seat when `gate` (a CTE with one row:
    reservation_id, user_id, show_id) has its row, and `mailed` queues the mail when it did. The
    other arguments are parameter markers: the signed arrays, the key id and the time."""
    return f"""issued AS (
    INSERT INTO tickets (code, reservation_id, seat_id, show_id, user_id, holder_name, key_id, payload,
                         issued_at)
    SELECT t.code, g.reservation_id, t.seat_id, g.show_id, g.user_id, t.holder, {key_id}, t.payload, {now}
    FROM {gate} g, unnest({codes}::text[], {seat_ids}::bigint[], {holders}::text[], {payloads}::text[])
         AS t(code, seat_id, holder, payload)
    RETURNING id, code, seat_id
), mailed AS (
    INSERT INTO mail_outbox (kind, user_id, reservation_id, next_attempt_at, created_at)
    SELECT 'ORDER_CONFIRMED', g.user_id, g.reservation_id, {now}, {now} FROM {gate} g
    WHERE EXISTS (SELECT 1 FROM issued)
)"""  # noqa: S608 - CTE names and parameter markers of ours; every value is bound


# The tickets, and the order confirmation mail queued for after commit (mail_outbox: the
# mail_sender job sends it; see mail/flows.py), in one statement: the card path's, inside its
# confirming transaction (the balance payment composes issue_ctes into its own statement).
_INSERT = f"""
WITH gate AS (SELECT $2::bigint AS reservation_id, $3::bigint AS show_id, $4::bigint AS user_id),
{issue_ctes(gate="gate", codes="$1", seat_ids="$7", holders="$8", payloads="$9", key_id="$5", now="$6")}
SELECT id, code, seat_id FROM issued
"""  # noqa: S608 - CTE names and parameter markers of ours; every value is bound

# Void a reservation's tickets, and queue the refund mail, in one statement.
_VOID = """
WITH voided AS (
    UPDATE tickets SET status = 'VOID', voided_at = $2, used_at = NULL
    WHERE reservation_id = $1 AND status <> 'VOID'
    RETURNING id
), mail AS (
    INSERT INTO mail_outbox (kind, user_id, reservation_id, next_attempt_at, created_at)
    SELECT 'REFUNDED', r.user_id, r.id, $2, $2 FROM reservations r WHERE r.id = $1
)
SELECT id FROM voided
"""

_VIEW = """
SELECT t.id, t.code, t.status, t.issued_at, t.used_at, t.used_gate, t.voided_at, t.payload,
       t.reservation_id, t.show_id, t.seat_id, t.user_id, t.holder_name, t.key_id,
       s.section, s.row, s.number, sh.starts_at, c.id AS concert_id, c.name AS concert, c.artist,
       v.name AS venue, v.time_zone
FROM tickets t
JOIN seats s ON s.id = t.seat_id
JOIN shows sh ON sh.id = t.show_id
JOIN concerts c ON c.id = sh.concert_id
JOIN venues v ON v.id = c.venue_id
"""
_GET = _VIEW + "WHERE t.id = $1"
_OF_USER = _VIEW + "WHERE t.user_id = $1 AND t.id < $2 ORDER BY t.id DESC LIMIT $3"
_OF_RESERVATION = _VIEW + "WHERE t.reservation_id = $1 ORDER BY t.id"

# One scan, one statement: `t` locks the ticket (so it reads the latest committed version after
# any concurrent scan), `admit` is the conditional UPDATE that lets exactly one scan through, and
# `logged` records what this scan answered. A ticket of another show is not named in that show's
# log. `$1` NULL (a payload that did not verify) finds nothing: NOT_A_TICKET.
_SCAN = """
WITH show AS (
    SELECT id FROM shows WHERE id = $2
), t AS (
    SELECT id, show_id, seat_id, status, used_at, used_gate, holder_name FROM tickets WHERE code = $1
    FOR UPDATE
), admit AS (
    UPDATE tickets SET status = 'USED', used_at = $3, used_gate = $4
    FROM t WHERE tickets.id = t.id AND t.show_id = $2 AND t.status = 'VALID'
    RETURNING tickets.id
), replay AS (
    -- an offline gate sending a scan it synced before (its answer was lost): the same admission
    SELECT 1 FROM t WHERE $6 AND t.status = 'USED' AND t.used_gate = $4 AND t.used_at = $3
), answer AS (
    SELECT CASE
        WHEN NOT EXISTS (SELECT 1 FROM t) THEN 'NOT_A_TICKET'
        WHEN (SELECT show_id FROM t) <> $2 THEN 'WRONG_SHOW'
        WHEN EXISTS (SELECT 1 FROM admit) OR EXISTS (SELECT 1 FROM replay) THEN 'VALID'
        WHEN (SELECT status FROM t) = 'VOID' THEN 'VOID'
        WHEN $6 THEN 'CONFLICT'
        ELSE 'ALREADY_USED'
    END AS result
), logged AS (
    INSERT INTO checkins (show_id, ticket_id, gate, result, offline, scanned_at, by_user)
    SELECT $2, (SELECT id FROM t WHERE show_id = $2), $4, answer.result, $6, $3, $5
    FROM answer, show WHERE NOT EXISTS (SELECT 1 FROM replay)
    RETURNING id
)
SELECT (SELECT result FROM answer) AS result,
       EXISTS (SELECT 1 FROM show) AS show_exists,
       t.id, t.status, t.used_at, t.used_gate, t.holder_name, s.section, s.row, s.number
FROM (SELECT 1) AS one
LEFT JOIN t ON t.show_id = $2
LEFT JOIN seats s ON s.id = t.seat_id
"""

# Re-entry (a show that allows it): a USED ticket back to VALID, logged as CHECKED_OUT.
_CHECK_OUT = """
WITH out AS (
    UPDATE tickets t SET status = 'VALID', used_at = NULL, used_gate = NULL
    FROM shows sh
    WHERE t.code = $1 AND t.show_id = $2 AND t.status = 'USED' AND sh.id = t.show_id AND sh.reentry
    RETURNING t.id
), logged AS (
    INSERT INTO checkins (show_id, ticket_id, gate, result, offline, scanned_at, by_user)
    SELECT $2, out.id, $4, 'CHECKED_OUT', false, $3, $5 FROM out
)
SELECT id FROM out
"""

_DOOR_LIST = """
SELECT t.code, t.status, t.used_at, t.used_gate, s.section, s.row, s.number
FROM tickets t JOIN seats s ON s.id = t.seat_id
WHERE t.show_id = $1
ORDER BY t.id
"""

_CONFLICTS = """
SELECT c.id, c.gate, c.scanned_at, c.recorded_at, t.code, t.used_at, t.used_gate,
       s.section, s.row, s.number
FROM checkins c JOIN tickets t ON t.id = c.ticket_id JOIN seats s ON s.id = t.seat_id
WHERE c.show_id = $1 AND c.result = 'CONFLICT'
ORDER BY c.id DESC LIMIT $2
"""

_ENTRIES = """
SELECT count(*) FILTER (WHERE result = 'VALID') AS admitted,
       count(*) AS scanned,
       count(*) FILTER (WHERE result = 'CONFLICT') AS conflicts,
       (SELECT count(*) FROM tickets WHERE show_id = $1 AND status = 'USED') AS inside
FROM checkins WHERE show_id = $1
"""

_ENTRIES_BY_GATE = """
SELECT gate, count(*) FILTER (WHERE result = 'VALID') AS admitted, count(*) AS scanned
FROM checkins WHERE show_id = $1 GROUP BY gate ORDER BY gate
"""

_ENTRIES_PER_MINUTE = """
SELECT date_trunc('minute', scanned_at) AS minute,
       count(*) FILTER (WHERE result = 'VALID') AS admitted, count(*) AS scanned
FROM checkins WHERE show_id = $1 AND scanned_at >= $2
GROUP BY 1 ORDER BY 1
"""

_SHOW_EXISTS = "SELECT EXISTS (SELECT 1 FROM shows WHERE id = $1)"


async def sold_seats(conn: asyncpg.Connection, reservation_id: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(_SOLD_SEATS, reservation_id))


async def seats_to_sell(conn: asyncpg.Connection, reservation_id: int, user_id: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(_SEATS_TO_SELL, reservation_id, user_id))


async def insert_tickets(
    conn: asyncpg.Connection,
    *,
    reservation_id: int,
    show_id: int,
    user_id: int,
    key_id: str,
    issued_at: datetime,
    codes: list[str],
    seat_ids: list[int],
    holders: list[str],
    payloads: list[str],
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            _INSERT, codes, reservation_id, show_id, user_id, key_id, issued_at, seat_ids, holders, payloads
        )
    )


async def void_of_reservation(conn: asyncpg.Connection, reservation_id: int, now: datetime) -> list[int]:
    return [r["id"] for r in await conn.fetch(_VOID, reservation_id, now)]


async def get(conn: asyncpg.Connection, ticket_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(_GET, ticket_id)
    return dict(row) if row is not None else None


async def of_user(conn: asyncpg.Connection, user_id: int, *, before: int, limit: int) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(_OF_USER, user_id, before, limit)]


async def of_reservation(conn: asyncpg.Connection, reservation_id: int) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(_OF_RESERVATION, reservation_id)]


async def scan(
    conn: asyncpg.Connection,
    *,
    code: str | None,
    show_id: int,
    at: datetime,
    gate: str,
    by_user: int | None,
    offline: bool,
) -> dict[str, Any]:
    row = await conn.fetchrow(_SCAN, code, show_id, at, gate, by_user, offline)
    assert row is not None
    return dict(row)


async def check_out(
    conn: asyncpg.Connection, *, code: str, show_id: int, at: datetime, gate: str, by_user: int | None
) -> bool:
    return await conn.fetchval(_CHECK_OUT, code, show_id, at, gate, by_user) is not None


async def show_exists(conn: asyncpg.Connection, show_id: int) -> bool:
    return bool(await conn.fetchval(_SHOW_EXISTS, show_id))


async def door_list(conn: asyncpg.Connection, show_id: int) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(_DOOR_LIST, show_id)]


async def conflicts(conn: asyncpg.Connection, show_id: int, limit: int) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(_CONFLICTS, show_id, limit)]


async def entries(conn: asyncpg.Connection, show_id: int, since: datetime) -> dict[str, Any]:
    totals = await conn.fetchrow(_ENTRIES, show_id)
    gates = await conn.fetch(_ENTRIES_BY_GATE, show_id)
    minutes = await conn.fetch(_ENTRIES_PER_MINUTE, show_id, since)
    assert totals is not None
    return {**dict(totals), "gates": [dict(g) for g in gates], "per_minute": [dict(m) for m in minutes]}

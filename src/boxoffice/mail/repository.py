"""All SQL of the mail outbox (house rule 2). Rows are written in the transaction of what they
announce (tickets/repository.py's issue and void statements; `enqueue` for a password reset) and
leased in batches by the mail_sender job (FOR UPDATE SKIP LOCKED: two workers never send one mail
twice at the same time; a mail whose sender died is leased again after the lease time)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

_ENQUEUE = """
INSERT INTO mail_outbox (kind, user_id, reservation_id, next_attempt_at, created_at)
VALUES ($1, $2, $3, $4, $4)
RETURNING id
"""

# Lease: push next_attempt_at past the lease so no other worker takes them meanwhile.
_LEASE = """
UPDATE mail_outbox SET next_attempt_at = $2, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM mail_outbox
    WHERE status = 'PENDING' AND next_attempt_at <= $1
    ORDER BY next_attempt_at, id LIMIT $3
    FOR UPDATE SKIP LOCKED
)
RETURNING id, kind, user_id, reservation_id, attempts
"""

_DONE = """
UPDATE mail_outbox SET status = $2, sent_at = CASE WHEN $2 = 'SENT' THEN $3 ELSE sent_at END,
       subject = coalesce($4, subject), last_error = $5
WHERE id = $1 AND status = 'PENDING'
"""

_RETRY = """
UPDATE mail_outbox SET next_attempt_at = $2, last_error = $3, subject = coalesce($4, subject)
WHERE id = $1 AND status = 'PENDING'
"""

_RECIPIENT = """
SELECT id, email, name, password_hash FROM users WHERE id = $1 AND deleted_at IS NULL
"""

_RECIPIENT_LOCALE = "SELECT locale FROM users WHERE id = $1"
_USER_BY_EMAIL = "SELECT id FROM users WHERE email = $1 AND deleted_at IS NULL"

_REFUND = """
SELECT r.id AS reservation_id, r.show_id, r.total_price, r.seat_count, r.status,
       p.amount, p.method, p.settled_at,
       sh.currency, c.name AS concert, sh.starts_at, v.name AS venue, v.time_zone
FROM reservations r
JOIN shows sh ON sh.id = r.show_id
JOIN concerts c ON c.id = sh.concert_id
JOIN venues v ON v.id = c.venue_id
LEFT JOIN LATERAL (
    SELECT amount, method, settled_at FROM payments
    WHERE reservation_id = r.id AND status = 'REFUNDED' ORDER BY id DESC LIMIT 1
) p ON true
WHERE r.id = $1
"""

# What a confirmed order cost: the paid amount (the total when nothing was paid, a free order) in
# the show's currency.
_ORDER_PAID = """
SELECT coalesce(p.amount, r.total_price) AS amount, sh.currency
FROM reservations r
JOIN shows sh ON sh.id = r.show_id
LEFT JOIN LATERAL (
    SELECT amount FROM payments
    WHERE reservation_id = r.id AND status = 'SUCCEEDED' ORDER BY id DESC LIMIT 1
) p ON true
WHERE r.id = $1
"""

_REFUND_SEATS = """
SELECT s.section, s.row, s.number FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id
WHERE rs.reservation_id = $1 ORDER BY s.id
"""

_RECENT = """
SELECT m.id, m.kind, m.status, m.attempts, m.subject, m.last_error, m.created_at, m.sent_at,
       m.reservation_id, u.email
FROM mail_outbox m JOIN users u ON u.id = m.user_id
ORDER BY m.id DESC LIMIT $1
"""

_COUNTS = "SELECT status, count(*) AS n FROM mail_outbox GROUP BY status"

# A waitlist offer (a hold the expiry job made for the next fan): while it is still open.
_OFFER = """
SELECT r.id AS reservation_id, r.expires_at, c.name AS concert, v.time_zone
FROM reservations r JOIN shows sh ON sh.id = r.show_id JOIN concerts c ON c.id = sh.concert_id
JOIN venues v ON v.id = c.venue_id
WHERE r.id = $1 AND r.status = 'TEMP_RESERVED'
"""


async def enqueue(
    conn: asyncpg.Connection, *, kind: str, user_id: int, reservation_id: int | None, now: datetime
) -> int:
    return int(await conn.fetchval(_ENQUEUE, kind, user_id, reservation_id, now))


async def user_id_by_email(conn: asyncpg.Connection, email: str) -> int | None:
    found = await conn.fetchval(_USER_BY_EMAIL, email)
    return int(found) if found is not None else None


async def lease(
    conn: asyncpg.Connection, *, now: datetime, lease_until: datetime, limit: int
) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(_LEASE, now, lease_until, limit)]


async def finish(
    conn: asyncpg.Connection,
    mail_id: int,
    status: str,
    *,
    now: datetime,
    subject: str | None = None,
    error: str | None = None,
) -> None:
    await conn.execute(_DONE, mail_id, status, now, subject, error)


async def retry_at(
    conn: asyncpg.Connection, mail_id: int, at: datetime, *, error: str, subject: str | None
) -> None:
    await conn.execute(_RETRY, mail_id, at, error, subject)


async def recipient(conn: asyncpg.Connection, user_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(_RECIPIENT, user_id)
    return dict(row) if row is not None else None


async def recipient_locale(conn: asyncpg.Connection, user_id: int) -> str | None:
    """The language the account chose (NULL: none yet)."""
    found: str | None = await conn.fetchval(_RECIPIENT_LOCALE, user_id)
    return found


async def refund(conn: asyncpg.Connection, reservation_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(_REFUND, reservation_id)
    if row is None:
        return None
    seats = await conn.fetch(_REFUND_SEATS, reservation_id)
    return {**dict(row), "seats": [dict(s) for s in seats]}


async def order_paid(conn: asyncpg.Connection, reservation_id: int) -> tuple[int, str] | None:
    """(amount in minor units, ISO 4217 currency) of the order, else None."""
    row = await conn.fetchrow(_ORDER_PAID, reservation_id)
    return (int(row["amount"]), str(row["currency"])) if row is not None else None


async def offer(conn: asyncpg.Connection, reservation_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(_OFFER, reservation_id)
    return dict(row) if row is not None else None


async def recent(conn: asyncpg.Connection, limit: int) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(_RECENT, limit)]


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {r["status"]: int(r["n"]) for r in await conn.fetch(_COUNTS)}

"""All SQL of the admin domain (house rule 2): sales totals, fans' orders, the audit, the CSV rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.db import tables

_SALES_TOTALS = text(
    """
    SELECT count(*) FILTER (WHERE status = 'RESERVED') AS orders,
           coalesce(sum(total_price) FILTER (WHERE status = 'RESERVED'), 0) AS revenue,
           coalesce(sum(seat_count) FILTER (WHERE status = 'RESERVED'), 0) AS tickets,
           count(*) FILTER (WHERE status = 'TEMP_RESERVED') AS live_holds
    FROM reservations WHERE show_id = :show_id AND status IN ('RESERVED', 'TEMP_RESERVED')
    """
)


async def sales_totals(session: AsyncSession, show_id: int) -> dict[str, int]:
    """Orders, revenue (paid reservations' totals) and tickets sold; index on (show_id, status)."""
    row = (await session.execute(_SALES_TOTALS, {"show_id": show_id})).mappings().one()
    return {k: int(v) for k, v in row.items()}


# ---- fans ------------------------------------------------------------------------------------------

_u = tables.users


async def find_user(session: AsyncSession, email: str) -> dict[str, Any] | None:
    """A user by exact email (emails are stored lower-cased), soft-deleted ones included."""
    stmt = (
        select(
            _u.c.id,
            _u.c.email,
            _u.c.name,
            _u.c.role,
            _u.c.balance,
            _u.c.balance_currency,
            _u.c.created_at,
            _u.c.deleted_at,
        )
        .where(_u.c.email == email)
        .order_by(_u.c.deleted_at.is_not(None), _u.c.id.desc())
        .limit(1)
    )
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row is not None else None


_FAN_RESERVATIONS = text(
    """
    SELECT r.id, r.show_id, s.concert_id, c.name AS concert_name, s.starts_at, r.status, r.total_price,
           s.currency, v.time_zone, r.seat_count, r.expires_at, r.created_at, r.confirmed_at, r.closed_at,
           (SELECT string_agg(st.section || ' ' || st.row || '-' || st.number, ', ' ORDER BY st.id)
              FROM reservation_seats rs JOIN seats st ON st.id = rs.seat_id
             WHERE rs.reservation_id = r.id) AS seats
    FROM reservations r JOIN shows s ON s.id = r.show_id JOIN concerts c ON c.id = s.concert_id
    JOIN venues v ON v.id = c.venue_id
    WHERE r.user_id = :user_id
    ORDER BY r.id DESC LIMIT :limit
    """
)

_FAN_PAYMENTS = text(
    """
    SELECT p.id, p.reservation_id, p.amount, s.currency, p.method, p.status, p.provider_reference,
           p.failure_code, p.created_at, p.settled_at
    FROM payments p JOIN reservations r ON r.id = p.reservation_id JOIN shows s ON s.id = r.show_id
    WHERE p.user_id = :user_id ORDER BY p.id DESC LIMIT :limit
    """
)

_FAN_LEDGER = text(
    """
    SELECT id, amount, kind, reference, balance_after, created_at
    FROM balance_ledger WHERE user_id = :user_id ORDER BY id DESC LIMIT :limit
    """
)


async def fan_reservations(session: AsyncSession, user_id: int, limit: int) -> list[dict[str, Any]]:
    rows = await session.execute(_FAN_RESERVATIONS, {"user_id": user_id, "limit": limit})
    return [dict(r) for r in rows.mappings()]


async def fan_payments(session: AsyncSession, user_id: int, limit: int) -> list[dict[str, Any]]:
    rows = await session.execute(_FAN_PAYMENTS, {"user_id": user_id, "limit": limit})
    return [dict(r) for r in rows.mappings()]


async def fan_ledger(session: AsyncSession, user_id: int, limit: int) -> list[dict[str, Any]]:
    rows = await session.execute(_FAN_LEDGER, {"user_id": user_id, "limit": limit})
    return [dict(r) for r in rows.mappings()]


async def reservation_owner(session: AsyncSession, reservation_id: int) -> dict[str, Any] | None:
    r, s = tables.reservations, tables.shows
    stmt = (
        select(r.c.id, r.c.user_id, r.c.show_id, r.c.status, r.c.total_price, s.c.currency)
        .join(s, s.c.id == r.c.show_id)
        .where(r.c.id == reservation_id)
    )
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row is not None else None


# ---- the audit -------------------------------------------------------------------------------------

_a = tables.admin_actions


async def insert_action(session: AsyncSession, values: dict[str, Any]) -> int:
    stmt = insert(_a).values(**values).returning(_a.c.id)
    return int((await session.execute(stmt)).scalar_one())


async def finish_action(session: AsyncSession, action_id: int, outcome: str, details: dict[str, Any]) -> None:
    stmt = (
        update(_a).where(_a.c.id == action_id).values(outcome=outcome, details=_a.c.details.op("||")(details))
    )
    await session.execute(stmt)


async def list_actions(
    session: AsyncSession, *, user_id: int | None, target_id: int | None, limit: int
) -> list[dict[str, Any]]:
    admins = tables.users.alias("admins")
    stmt = select(*_a.c, admins.c.email.label("admin_email")).join(admins, admins.c.id == _a.c.admin_id)
    if user_id is not None:
        stmt = stmt.where(_a.c.user_id == user_id)
    if target_id is not None:
        stmt = stmt.where(_a.c.target_id == target_id)
    rows = await session.execute(stmt.order_by(_a.c.id.desc()).limit(limit))
    return [dict(r) for r in rows.mappings()]


# ---- the CSV export --------------------------------------------------------------------------------

_SALES_PAGE = text(
    """
    SELECT r.id AS reservation_id, u.email, r.status, r.seat_count, r.total_price, s.currency, r.created_at,
           r.confirmed_at, r.closed_at,
           (SELECT string_agg(st.section || ' ' || st.row || '-' || st.number, '; ' ORDER BY st.id)
              FROM reservation_seats rs JOIN seats st ON st.id = rs.seat_id
             WHERE rs.reservation_id = r.id) AS seats,
           p.method, p.status AS payment_status, p.amount AS paid_amount, p.settled_at AS paid_at,
           (SELECT count(*) FROM tickets t
             WHERE t.reservation_id = r.id AND t.status = 'USED') AS tickets_used,
           (SELECT min(t.used_at) FROM tickets t WHERE t.reservation_id = r.id) AS checked_in_at
    FROM reservations r
    JOIN users u ON u.id = r.user_id
    JOIN shows s ON s.id = r.show_id
    LEFT JOIN LATERAL (
        SELECT method, status, amount, settled_at FROM payments
        WHERE reservation_id = r.id ORDER BY id DESC LIMIT 1
    ) p ON true
    WHERE r.show_id = :show_id AND r.id > :after
    ORDER BY r.id LIMIT :limit
    """
)


async def sales_page(session: AsyncSession, show_id: int, after: int, limit: int) -> list[dict[str, Any]]:
    """One page of a show's reservations (keyset on id), each with its fan and last payment."""
    rows = await session.execute(_SALES_PAGE, {"show_id": show_id, "after": after, "limit": limit})
    return [dict(r) for r in rows.mappings()]


async def ledger_sum(session: AsyncSession, user_id: int) -> int:
    bl = tables.balance_ledger
    stmt = select(func.coalesce(func.sum(bl.c.amount), 0)).where(bl.c.user_id == user_id)
    return int((await session.execute(stmt)).scalar_one())


# ---- signals of one person behind many accounts (admin.rules) -------------------------------------

# admin.rules.email_pattern in SQL: the local part without its +tag, dots and trailing digits.
EMAIL_PATTERN = (
    "lower(coalesce(nullif(regexp_replace(regexp_replace(split_part({col}, '@', 1), '\\+.*$', ''),"
    " '\\.|[0-9]+$', '', 'g'), ''), split_part({col}, '@', 1))) || '@' || lower(split_part({col}, '@', 2))"
)

_SIGNALS = text(
    f"""
    WITH me AS (SELECT id, {EMAIL_PATTERN.format(col="email")} AS pattern FROM users WHERE id = :user_id)
    SELECT DISTINCT 'device' AS kind, d2.user_id AS other_id, u.email
    FROM fan_devices d1
    JOIN fan_devices d2 ON d2.device_hash = d1.device_hash AND d2.user_id <> d1.user_id
    JOIN users u ON u.id = d2.user_id
    WHERE d1.user_id = :user_id
    UNION
    SELECT DISTINCT 'card', p2.user_id, u.email
    FROM payments p1
    JOIN payments p2 ON p2.card_fingerprint = p1.card_fingerprint AND p2.user_id <> p1.user_id
    JOIN users u ON u.id = p2.user_id
    WHERE p1.user_id = :user_id AND p1.card_fingerprint IS NOT NULL
    UNION
    SELECT 'email', u.id, u.email
    FROM users u, me
    WHERE u.id <> me.id AND {EMAIL_PATTERN.format(col="u.email")} = me.pattern
    ORDER BY 1, 2
    LIMIT :limit
    """  # noqa: S608 - the pattern is a constant; every value is a bound parameter
)

_EMAIL_PATTERN_OF = text(f"SELECT {EMAIL_PATTERN.format(col='CAST(:email AS text)')}")

_NOTE_DEVICE = text(
    """
    INSERT INTO fan_devices (user_id, device_hash, first_seen, last_seen)
    VALUES (:user_id, :device_hash, :now, :now)
    ON CONFLICT (user_id, device_hash) DO UPDATE SET last_seen = EXCLUDED.last_seen
    """
)


async def signals(session: AsyncSession, user_id: int, limit: int) -> list[dict[str, Any]]:
    """Other accounts sharing a device, a card fingerprint or the email pattern with this one."""
    rows = await session.execute(_SIGNALS, {"user_id": user_id, "limit": limit})
    return [dict(r) for r in rows.mappings()]


async def email_pattern_in_sql(session: AsyncSession, email: str) -> str:
    return str((await session.execute(_EMAIL_PATTERN_OF, {"email": email})).scalar_one())


async def note_device(session: AsyncSession, user_id: int, device_hash: str, now: Any) -> None:
    await session.execute(_NOTE_DEVICE, {"user_id": user_id, "device_hash": device_hash, "now": now})

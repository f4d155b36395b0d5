"""The invariants of SPEC section 3 checked against the database (tests and `boxoffice bench`).

Each check returns the offending rows; an empty report means the invariant holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CHECKS: dict[str, str] = {
    # I1: a seat is in at most one live reservation (the unique index makes this belt-and-braces).
    "I1_seat_in_two_live_reservations": """
        SELECT seat_id, array_agg(reservation_id) AS reservations
        FROM reservation_seats WHERE live GROUP BY seat_id HAVING count(*) > 1
    """,
    # I1: seat status agrees with the reservation that holds it.
    "I1_seat_status_mismatch": """
        SELECT s.id AS seat_id, s.status, r.id AS reservation_id, r.status AS reservation_status
        FROM seats s LEFT JOIN reservations r ON r.id = s.reservation_id
        WHERE (s.status = 'RESERVED' AND (r.status IS DISTINCT FROM 'RESERVED'))
           OR (s.status = 'TEMP_RESERVED' AND (r.status IS DISTINCT FROM 'TEMP_RESERVED'))
           OR (s.status <> 'AVAILABLE' AND NOT EXISTS (
                SELECT 1 FROM reservation_seats rs
                WHERE rs.seat_id = s.id AND rs.reservation_id = s.reservation_id AND rs.live))
    """,
    # I1: a live reservation's seats point back at it.
    "I1_live_reservation_lost_seat": """
        SELECT rs.reservation_id, rs.seat_id, s.status, s.reservation_id AS seat_reservation
        FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id
        JOIN reservations r ON r.id = rs.reservation_id
        WHERE rs.live AND r.status IN ('TEMP_RESERVED', 'RESERVED')
          AND s.reservation_id IS DISTINCT FROM rs.reservation_id
    """,
    # I2: inventory.remaining equals the AVAILABLE seats of the show (after the expiry sweep).
    "I2_inventory_mismatch": """
        SELECT i.show_id, i.total, i.remaining,
               (SELECT count(*) FROM seats s
                WHERE s.show_id = i.show_id AND s.status = 'AVAILABLE') AS available,
               (SELECT count(*) FROM seats s WHERE s.show_id = i.show_id) AS seats
        FROM inventory i
        WHERE i.remaining <> (SELECT count(*) FROM seats s
                              WHERE s.show_id = i.show_id AND s.status = 'AVAILABLE')
           OR i.total <> (SELECT count(*) FROM seats s WHERE s.show_id = i.show_id)
    """,
    # I3: balances are never negative and equal the sum of their ledger.
    "I3_balance_ledger_mismatch": """
        SELECT u.id AS user_id, u.balance, coalesce(sum(l.amount), 0) AS ledger_sum
        FROM users u LEFT JOIN balance_ledger l ON l.user_id = u.id
        GROUP BY u.id HAVING u.balance <> coalesce(sum(l.amount), 0) OR u.balance < 0
    """,
    # I4: a reservation is paid at most once.
    "I4_reservation_paid_twice": """
        SELECT reservation_id, count(*) AS payments
        FROM payments WHERE status IN ('SUCCEEDED', 'PENDING', 'REFUNDED')
        GROUP BY reservation_id HAVING count(*) FILTER (WHERE status IN ('SUCCEEDED', 'PENDING')) > 1
           OR count(*) FILTER (WHERE status = 'REFUNDED') > 1
    """,
    # I4: a RESERVED reservation has exactly one succeeded payment.
    "I4_reserved_without_payment": """
        SELECT r.id AS reservation_id, count(p.id) AS succeeded
        FROM reservations r LEFT JOIN payments p ON p.reservation_id = r.id AND p.status = 'SUCCEEDED'
        WHERE r.status = 'RESERVED' GROUP BY r.id HAVING count(p.id) <> 1
    """,
    # I7: every sold seat has exactly one live (not VOID) ticket, of the reservation that bought it.
    "I7_sold_seat_tickets": """
        SELECT s.id AS seat_id, s.reservation_id, count(t.id) AS live_tickets
        FROM seats s LEFT JOIN tickets t
            ON t.seat_id = s.id AND t.reservation_id = s.reservation_id AND t.status <> 'VOID'
        WHERE s.status = 'RESERVED' GROUP BY s.id, s.reservation_id HAVING count(t.id) <> 1
    """,
    # I7: a live ticket's reservation is RESERVED (a cancelled or refunded one's are VOID).
    "I7_live_ticket_unsold": """
        SELECT t.id AS ticket_id, t.status, r.status AS reservation_status
        FROM tickets t JOIN reservations r ON r.id = t.reservation_id
        WHERE t.status <> 'VOID' AND r.status <> 'RESERVED'
    """,
    # I7: a ticket is admitted online at most once per entry (re-entry: once more per check-out).
    "I7_ticket_admitted_twice": """
        SELECT ticket_id, count(*) FILTER (WHERE result = 'VALID') AS admitted,
               count(*) FILTER (WHERE result = 'CHECKED_OUT') AS checked_out
        FROM checkins WHERE ticket_id IS NOT NULL AND NOT offline GROUP BY ticket_id
        HAVING count(*) FILTER (WHERE result = 'VALID')
               > 1 + count(*) FILTER (WHERE result = 'CHECKED_OUT')
    """,
}


@dataclass
class AuditReport:
    violations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def summary(self) -> str:
        if self.ok:
            return "all invariants hold (I1-I4, I7)"
        return "; ".join(f"{name}: {len(rows)} rows" for name, rows in self.violations.items() if rows)


async def audit(session: AsyncSession, *, include_inventory: bool = True) -> AuditReport:
    """Run every check in one read-only snapshot."""
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    report = AuditReport()
    for name, sql in CHECKS.items():
        if not include_inventory and name.startswith("I2"):
            continue
        rows = (await session.execute(text(sql))).mappings().all()
        report.violations[name] = [dict(row) for row in rows]
    return report

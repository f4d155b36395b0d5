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


# ---- the waitlist's fairness (reported by the bench, like the queue's Kendall tau) -------------

# A fan passed over: entry B got an offer at t while entry A, ahead of it (a.id < b.id), had been
# waiting since at least WAITLIST_GRACE_SECONDS before t and was still waiting at t (not offered, left or
# skipped by then), and held no seats of the show at t (such a fan keeps the place by design while
# the seat goes on). The grace covers a join that committed after the offer job's read.
WAITLIST_GRACE_SECONDS = 1.0

_WAITLIST_INVERSIONS = """
    SELECT b.id AS offered_entry, b.user_id AS offered_user, b.offered_at,
           a.id AS passed_over_entry, a.user_id AS passed_over_user, a.status AS passed_over_status
    FROM waitlist b
    JOIN waitlist a ON a.show_id = b.show_id AND a.id < b.id
    WHERE b.show_id = :show_id AND b.offered_at IS NOT NULL
      AND a.joined_at <= b.offered_at - make_interval(secs => :grace)
      AND coalesce(a.offered_at, a.closed_at, 'infinity') > b.offered_at
      AND NOT EXISTS (
          SELECT 1 FROM reservations r
          WHERE r.user_id = a.user_id AND r.show_id = a.show_id AND r.created_at <= b.offered_at
            AND (r.status = 'TEMP_RESERVED' OR r.updated_at >= b.offered_at))
    ORDER BY b.id, a.id
"""

# Holds the crowd made (not a waitlist offer) while some fan was waiting on the waitlist.
_CROWD_HOLDS_WHILE_WAITING = """
    SELECT count(*) FROM reservations r
    WHERE r.show_id = :show_id
      AND NOT EXISTS (SELECT 1 FROM waitlist o WHERE o.reservation_id = r.id)
      AND EXISTS (
          SELECT 1 FROM waitlist w
          WHERE w.show_id = r.show_id AND w.joined_at <= r.created_at - make_interval(secs => :grace)
            AND coalesce(w.offered_at, w.closed_at, 'infinity') > r.created_at)
"""

# Offers by how they ended, read from their holds (the job marks entries TAKEN/LAPSED a tick later).
_WAITLIST_STATUSES = """
    SELECT count(*) AS entries,
           count(*) FILTER (WHERE w.offered_at IS NOT NULL) AS offers_made,
           count(*) FILTER (WHERE w.offered_at IS NOT NULL AND r.status = 'TEMP_RESERVED') AS offered_now,
           count(*) FILTER (WHERE w.offered_at IS NOT NULL AND r.status = 'RESERVED') AS taken,
           count(*) FILTER (WHERE w.offered_at IS NOT NULL
                            AND r.status NOT IN ('TEMP_RESERVED', 'RESERVED')) AS lapsed,
           count(*) FILTER (WHERE w.status = 'SKIPPED') AS skipped,
           count(*) FILTER (WHERE w.status = 'LEFT') AS left_list,
           count(*) FILTER (WHERE w.status = 'WAITING') AS waiting
    FROM waitlist w LEFT JOIN reservations r ON r.id = w.reservation_id
    WHERE w.show_id = :show_id
"""


async def waitlist_fairness(session: AsyncSession, show_id: int, *, sample: int = 10) -> dict[str, Any]:
    """A show's waitlist from the database: entries by outcome, offers made, the pairs of fans
    offered out of waitlist order (`inversions`, goal 0, with a sample), and the crowd's holds
    made while someone waited (goal 0: returned seats are the waitlist's)."""
    params = {"show_id": show_id, "grace": WAITLIST_GRACE_SECONDS}
    counts = (await session.execute(text(_WAITLIST_STATUSES), {"show_id": show_id})).mappings().one()
    pairs = (await session.execute(text(_WAITLIST_INVERSIONS), params)).mappings().all()
    crowd = (await session.execute(text(_CROWD_HOLDS_WHILE_WAITING), params)).scalar_one()
    return {
        **{k: int(v) for k, v in counts.items()},
        "inversions": len(pairs),
        "inversion_sample": [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
            for row in pairs[:sample]
        ],
        "crowd_holds_while_waiting": int(crowd),
        "method": (
            "an inversion: a fan offered a seat while a fan ahead of them on the waitlist had been "
            f"waiting (joined >= {WAITLIST_GRACE_SECONDS:g} s before) and held no seats of the show; "
            "crowd_holds_while_waiting: holds that were not waitlist offers, made while a fan waited"
        ),
    }

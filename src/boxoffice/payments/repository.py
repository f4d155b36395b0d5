"""All payments SQL (house rule 2). The ledger's SQL lives in ledger.py (the balance payment's
one statement debits and writes its ledger row itself)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.db.idempotency import LEAN_PRIOR, lean_claim
from boxoffice.db.outbox import outbox_rows
from boxoffice.db.warm import hot
from boxoffice.kit.clock import iso
from boxoffice.tickets.repository import issue_ctes

if TYPE_CHECKING:
    from boxoffice.tickets.service import Signed

_COLUMNS = (
    "id, reservation_id, user_id, amount, method, status, idempotency_key, provider_idempotency_key, "
    "provider_reference, failure_code, attempts, created_at, updated_at, settled_at, "
    # the amount's currency: its show's (ISO 4217; kit/money.py)
    "(SELECT sh.currency FROM reservations r JOIN shows sh ON sh.id = r.show_id "
    "WHERE r.id = payments.reservation_id) AS currency"
)

# _COLUMNS is a constant: no user input is ever formatted into SQL here (hence the S608 waivers).
_LIVE = text(
    f"SELECT {_COLUMNS} FROM payments WHERE reservation_id = :rid AND status IN ('PENDING', 'SUCCEEDED')"  # noqa: S608
)
# The card attempt an Idempotency-Key already started (a retry finishes it); a FAILED one is over.
_BY_KEY = text(
    f"SELECT {_COLUMNS} FROM payments WHERE reservation_id = :rid AND user_id = :user_id "  # noqa: S608
    "AND idempotency_key = :key AND method = 'CARD' AND status <> 'FAILED' ORDER BY id DESC LIMIT 1"
)
_GET = text(f"SELECT {_COLUMNS} FROM payments WHERE id = :id")  # noqa: S608
_LOCK = text(f"SELECT {_COLUMNS} FROM payments WHERE id = :id FOR UPDATE")  # noqa: S608
_LOCK_SUCCEEDED = text(
    f"SELECT {_COLUMNS} FROM payments WHERE reservation_id = :rid AND status = 'SUCCEEDED' FOR UPDATE"  # noqa: S608
)
_INSERT = text(
    f"""
    INSERT INTO payments (reservation_id, user_id, amount, method, status, idempotency_key,
                          provider_idempotency_key, attempts, created_at, updated_at, settled_at)
    VALUES (:rid, :user_id, :amount, :method, :status, :key, :provider_key, :attempts, :now, :now,
            CASE WHEN :status = 'PENDING' THEN NULL ELSE CAST(:now AS timestamptz) END)
    RETURNING {_COLUMNS}
    """  # noqa: S608
)
_SETTLE = text(
    f"""
    UPDATE payments
    SET status = :to_status, provider_reference = coalesce(:reference, provider_reference),
        failure_code = :failure_code, updated_at = :now, settled_at = :now
    WHERE id = :id AND status = :from_status
    RETURNING {_COLUMNS}
    """  # noqa: S608
)
# Lease a batch for reconciliation: bumping updated_at keeps other workers off it for the grace time.
_LEASE_PENDING = text(
    f"""
    UPDATE payments SET updated_at = :now, attempts = attempts + 1
    WHERE id IN (
        SELECT id FROM payments
        WHERE status = 'PENDING' AND method = 'CARD' AND updated_at <= :before
        ORDER BY updated_at LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING {_COLUMNS}
    """  # noqa: S608
)


def _confirm(*, gate: str, held: str, now: str) -> str:
    """The one "confirm the reservation" of both payment paths, as CTEs of a larger statement:
    `sold` (the hold's seats -> RESERVED), `confirmed` (the reservation -> RESERVED) and
    `announced` (the outbox rows seat.sold, reservation.confirmed, payment.succeeded). `gate` names
    a CTE with one row (reservation_id, user_id, show_id, payment_id) when the payment confirms the
    hold and none otherwise; `held`, a CTE of the hold's seat ids; `now`, the time parameter."""
    seat_ids = f"(SELECT jsonb_agg(id ORDER BY id) FROM {held})"  # noqa: S608 - a CTE name of ours
    events = f"""SELECT e.type, e.aggregate, e.aggregate_id, g.show_id, e.payload
        FROM {gate} g, LATERAL (VALUES
            ('seat.sold', 'reservation', g.reservation_id, jsonb_build_object(
                'reservation_id', g.reservation_id, 'user_id', g.user_id, 'seat_ids', {seat_ids},
                'status', 'RESERVED')),
            ('reservation.confirmed', 'reservation', g.reservation_id, jsonb_build_object(
                'reservation_id', g.reservation_id, 'user_id', g.user_id, 'seat_ids', {seat_ids},
                'status', 'RESERVED')),
            ('payment.succeeded', 'payment', g.payment_id, jsonb_build_object(
                'payment_id', g.payment_id, 'reservation_id', g.reservation_id, 'user_id', g.user_id))
        ) AS e(type, aggregate, aggregate_id, payload)"""  # noqa: S608 - CTE names of ours
    return f"""sold AS (
    UPDATE seats s SET status = 'RESERVED', hold_expires_at = NULL, updated_at = {now}
    FROM {gate} g WHERE s.id IN (SELECT id FROM {held})
    RETURNING s.id, s.section, s.row, s.number, s.show_id
), confirmed AS (
    UPDATE reservations res SET status = 'RESERVED', confirmed_at = {now}, updated_at = {now}
    FROM {gate} g WHERE res.id = g.reservation_id
    RETURNING res.id
), announced AS (
    {outbox_rows(events)}
)"""  # noqa: S608 - CTE names and parameter markers of ours; every value is bound


# A card payment the provider accepted: the hold's seats and the reservation -> RESERVED, with the
# events, if every seat is still the hold's (else nothing is written and the caller refunds).
_CONFIRM_CARD = text(
    f"""
    WITH held AS (
        SELECT id FROM seats WHERE reservation_id = :rid AND status = 'TEMP_RESERVED'
    ), gate AS (
        SELECT r.id AS reservation_id, r.user_id, r.show_id, CAST(:pid AS bigint) AS payment_id
        FROM reservations r
        WHERE r.id = :rid AND r.status = 'TEMP_RESERVED' AND r.seat_count = (SELECT count(*) FROM held)
    ), {_confirm(gate="gate", held="held", now=":now")}
    SELECT (SELECT count(*) FROM confirmed) AS confirmed, ARRAY(SELECT id FROM sold ORDER BY id) AS seat_ids
    """  # noqa: S608
)

# A balance payment: ONE statement, all or nothing, that commits on its own (a lean unit of work),
# with its Idempotency-Key ($1-$6, see idempotency.LEAN_PRIOR / lean_claim). `r` locks the
# reservation (a concurrent payment of it waits, then sees what that one did) and `held` its seats
# that are still its own (in that order, as everywhere: reservation, then seats). Nothing is
# written unless `ok` (the user's live hold, no live payment, every seat still held) and the debit
# went through (a conditional UPDATE: concurrent debits never take the balance below zero) or
# nothing is owed; every write hangs off `paid`/`pay`. A card payment that went PENDING meanwhile
# makes the payment INSERT fail on payments_one_live_uq, which aborts the whole statement. The last
# SELECT returns what the caller needs to name a refusal.
_PAY_FROM_BALANCE = hot(f"""
WITH {LEAN_PRIOR}, r AS (
    SELECT id, user_id, show_id, status, total_price, seat_count, expires_at FROM reservations
    WHERE id = $7 AND NOT EXISTS (SELECT 1 FROM prior)
    FOR UPDATE
), held AS (
    SELECT s.id FROM seats s JOIN r ON s.reservation_id = r.id
    WHERE s.status = 'TEMP_RESERVED' ORDER BY s.id
    FOR UPDATE OF s
), live AS (
    SELECT id, status FROM payments WHERE reservation_id = $7 AND status IN ('PENDING', 'SUCCEEDED')
), signed AS (
    SELECT ARRAY(SELECT id FROM held ORDER BY id) = $11::bigint[] AS signed
), same_currency AS (
    SELECT sh.currency = u.balance_currency AS same, sh.currency FROM r JOIN shows sh ON sh.id = r.show_id
    JOIN users u ON u.id = $1
), ok AS (
    SELECT r.id, r.user_id, r.show_id, r.total_price FROM r
    WHERE r.user_id = $1 AND r.status = 'TEMP_RESERVED' AND r.expires_at > $5
      AND NOT EXISTS (SELECT 1 FROM live) AND (SELECT count(*) FROM held) = r.seat_count
      AND (SELECT same FROM same_currency)  -- no silent conversion: the balance pays its own currency
      AND (SELECT signed FROM signed)  -- a ticket signed for every seat sold, and for no other
), debit AS (
    UPDATE users u SET balance = u.balance - ok.total_price, updated_at = now()
    FROM ok
    WHERE u.id = $1 AND u.deleted_at IS NULL AND ok.total_price > 0 AND u.balance >= ok.total_price
    RETURNING u.balance
), paid AS (
    SELECT ok.* FROM ok WHERE ok.total_price = 0 OR EXISTS (SELECT 1 FROM debit)
), ledger AS (
    INSERT INTO balance_ledger (user_id, amount, kind, reference, balance_after)
    SELECT $1, -paid.total_price, 'PAYMENT', $9, debit.balance FROM paid, debit
), pay AS (
    INSERT INTO payments (reservation_id, user_id, amount, method, status, idempotency_key,
                          attempts, created_at, updated_at, settled_at)
    SELECT paid.id, $1, paid.total_price, 'BALANCE', 'SUCCEEDED', $3, 0, $5, $5, $5 FROM paid
    RETURNING id, reservation_id, amount
), gate AS (
    SELECT pay.reservation_id, paid.user_id, paid.show_id, pay.id AS payment_id FROM paid, pay
), {_confirm(gate="gate", held="held", now="$5")}, {
    issue_ctes(
        gate="gate", codes="$10", seat_ids="$11", holders="$12", payloads="$13", key_id="$14", now="$5"
    )
}, answer AS (
    SELECT 201 AS status, jsonb_build_object(
        'payment_id', pay.id, 'reservation_id', pay.reservation_id, 'amount', pay.amount,
        'currency', (SELECT currency FROM same_currency),
        'method', 'BALANCE', 'status', 'SUCCEEDED', 'reservation_status', 'RESERVED',
        'provider_reference', NULL, 'failure_code', NULL,
        'created_at', $8::text, 'settled_at', $8::text) AS body
    FROM pay
), {lean_claim("answer")}
SELECT (SELECT row_to_json(prior)::text FROM prior) AS prior,
       r.id, r.user_id, r.show_id, r.status, r.seat_count, r.expires_at,
       (SELECT count(*) FROM held) AS held,
       (SELECT row_to_json(live)::text FROM live LIMIT 1) AS live,
       EXISTS (SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL) AS user_exists,
       coalesce((SELECT same FROM same_currency), true) AS same_currency,
       ARRAY(SELECT id FROM sold ORDER BY id) AS sold,
       (SELECT signed FROM signed) AS signed,
       (SELECT body::text FROM answer) AS answer
FROM (SELECT 1) AS one LEFT JOIN r ON true
""")  # noqa: S608 - the fragments are constants; every value is a bound parameter


@dataclass(frozen=True, slots=True)
class BalancePayment:
    """What the balance payment's statement did or found. answer: the 201 body as JSON (paid);
    prior: the key's stored answer (nothing was done); else the facts that name the refusal."""

    prior: dict[str, Any] | None
    reservation: dict[str, Any] | None
    held_seats: int
    live_payment: dict[str, Any] | None
    user_exists: bool
    same_currency: bool
    sold: list[int]
    signed: bool  # the tickets signed beforehand were for exactly the hold's seats
    answer: str | None

    @property
    def signatures_refused(self) -> bool:
        """Nothing was done or replayed only because the signed tickets were not the hold's seats."""
        return self.answer is None and self.prior is None and not self.signed


async def pay_from_balance(
    conn: asyncpg.Connection,
    key_args: tuple[Any, ...],
    *,
    reservation_id: int,
    now: datetime,
    tickets: Signed,
) -> BalancePayment:
    """The balance payment statement (_PAY_FROM_BALANCE); `key_args` from idempotency.LeanKey;
    `tickets` signed for the hold's seats (tickets.service.sign), written when the payment is."""
    reference = f"reservation:{reservation_id}"
    row = await conn.fetchrow(
        _PAY_FROM_BALANCE,
        *key_args,
        reservation_id,
        iso(now),
        reference,
        tickets.codes,
        tickets.seat_ids,
        tickets.holders,
        tickets.payloads,
        tickets.key_id,
    )
    assert row is not None
    reservation = None
    if row["id"] is not None:
        names = ("id", "user_id", "show_id", "status", "seat_count", "expires_at")
        reservation = {name: row[name] for name in names}
    return BalancePayment(
        prior=json.loads(row["prior"]) if row["prior"] else None,
        reservation=reservation,
        held_seats=int(row["held"]),
        live_payment=json.loads(row["live"]) if row["live"] else None,
        user_exists=bool(row["user_exists"]),
        same_currency=bool(row["same_currency"]),
        sold=list(row["sold"]),
        signed=bool(row["signed"]),
        answer=row["answer"],
    )


def _row(row: Any) -> dict[str, Any] | None:
    return dict(row) if row is not None else None


async def confirm(
    session: AsyncSession, reservation_id: int, payment_id: int, now: datetime
) -> list[int] | None:
    """Confirm a card-paid hold (_CONFIRM_CARD): its seat ids, or None if any seat was lost."""
    params = {"rid": reservation_id, "pid": payment_id, "now": now}
    row = (await session.execute(_CONFIRM_CARD, params)).one()
    return list(row[1]) if row[0] == 1 else None


async def live_payment(session: AsyncSession, reservation_id: int) -> dict[str, Any] | None:
    return _row((await session.execute(_LIVE, {"rid": reservation_id})).mappings().first())


async def card_payment_for_key(
    session: AsyncSession, reservation_id: int, user_id: int, key: str
) -> dict[str, Any] | None:
    params = {"rid": reservation_id, "user_id": user_id, "key": key}
    return _row((await session.execute(_BY_KEY, params)).mappings().first())


async def get_payment(session: AsyncSession, payment_id: int) -> dict[str, Any] | None:
    return _row((await session.execute(_GET, {"id": payment_id})).mappings().first())


async def lock_payment(session: AsyncSession, payment_id: int) -> dict[str, Any] | None:
    return _row((await session.execute(_LOCK, {"id": payment_id})).mappings().first())


async def lock_succeeded(session: AsyncSession, reservation_id: int) -> dict[str, Any] | None:
    return _row((await session.execute(_LOCK_SUCCEEDED, {"rid": reservation_id})).mappings().first())


async def insert_payment(
    session: AsyncSession,
    *,
    reservation_id: int,
    user_id: int,
    amount: int,
    method: str,
    status: str,
    idempotency_key: str | None,
    provider_key: str | None,
    now: datetime,
) -> dict[str, Any]:
    row = (
        (
            await session.execute(
                _INSERT,
                {
                    "rid": reservation_id,
                    "user_id": user_id,
                    "amount": amount,
                    "method": method,
                    "status": status,
                    "key": idempotency_key,
                    "provider_key": provider_key,
                    "attempts": 1 if provider_key else 0,
                    "now": now,
                },
            )
        )
        .mappings()
        .one()
    )
    return dict(row)


async def settle(
    session: AsyncSession,
    payment_id: int,
    *,
    from_status: str,
    to_status: str,
    now: datetime,
    reference: str | None = None,
    failure_code: str | None = None,
) -> dict[str, Any] | None:
    """Move a payment between states; None when it was not in `from_status` (someone settled it)."""
    row = (
        (
            await session.execute(
                _SETTLE,
                {
                    "id": payment_id,
                    "from_status": from_status,
                    "to_status": to_status,
                    "reference": reference,
                    "failure_code": failure_code,
                    "now": now,
                },
            )
        )
        .mappings()
        .first()
    )
    return _row(row)


async def lease_pending(
    session: AsyncSession, *, before: datetime, now: datetime, limit: int
) -> list[dict[str, Any]]:
    rows = await session.execute(_LEASE_PENDING, {"before": before, "now": now, "limit": limit})
    return [dict(r) for r in rows.mappings()]


_SET_CARD_FINGERPRINT = text("UPDATE payments SET card_fingerprint = :fp WHERE id = :id")


async def set_card_fingerprint(session: AsyncSession, payment_id: int, fingerprint: str) -> None:
    await session.execute(_SET_CARD_FINGERPRINT, {"id": payment_id, "fp": fingerprint[:64]})

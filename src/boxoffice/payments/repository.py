"""All payments SQL (house rule 2). The ledger's SQL lives in ledger.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_COLUMNS = (
    "id, reservation_id, user_id, amount, method, status, idempotency_key, provider_idempotency_key, "
    "provider_reference, failure_code, attempts, created_at, updated_at, settled_at"
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


def _row(row: Any) -> dict[str, Any] | None:
    return dict(row) if row is not None else None


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

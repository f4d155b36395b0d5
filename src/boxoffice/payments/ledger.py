"""The balance ledger: every change of a balance is a ledger row written with it (SPEC I3).

`credit` runs inside the caller's transaction (top-ups, refunds). Debits happen only in a balance
payment, whose one statement (payments.repository.pay_from_balance) moves the balance by a
conditional UPDATE, so concurrent debits can never take it below zero (the CHECK constraint is the
last line), and writes the ledger row with it.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.errors import UserNotFound

LedgerKind = Literal["TOPUP", "PAYMENT", "REFUND", "ADJUSTMENT"]

_CREDIT = text(
    "UPDATE users SET balance = balance + :amount, updated_at = now() "
    "WHERE id = :user_id AND deleted_at IS NULL RETURNING balance"
)
_ENTRY = text(
    "INSERT INTO balance_ledger (user_id, amount, kind, reference, balance_after) "
    "VALUES (:user_id, :amount, :kind, :reference, :balance_after)"
)


def _positive(amount: int) -> int:
    if amount <= 0:
        raise ValueError("ledger amounts are positive; the function says which direction")
    return amount


async def credit(
    session: AsyncSession, user_id: int, amount: int, kind: LedgerKind, reference: str | None
) -> int:
    """Add money; returns the new balance."""
    params = {"user_id": user_id, "amount": _positive(amount)}
    balance = (await session.execute(_CREDIT, params)).scalar()
    if balance is None:
        raise UserNotFound("User not found")
    await session.execute(_ENTRY, {**params, "kind": kind, "reference": reference, "balance_after": balance})
    return int(balance)

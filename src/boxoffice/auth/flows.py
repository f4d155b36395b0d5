"""Account use cases that own a unit of work: the balance top-up (idempotent per key)."""

from __future__ import annotations

from boxoffice.db import UnitOfWork
from boxoffice.idempotency import IdempotentResult, run_idempotent
from boxoffice.payments import ledger
from boxoffice.runtime import Runtime

TOPUP_SCOPE = "POST /api/users/me/balance"


async def top_up(
    runtime: Runtime, *, user_id: int, amount: int, idempotency_key: str | None
) -> IdempotentResult:
    """Charge the balance once per Idempotency-Key: one ledger row + the balance, one transaction."""

    async def work(uow: UnitOfWork) -> tuple[int, dict[str, int]]:
        balance = await ledger.credit(uow.session, user_id, amount, "TOPUP", f"topup:{idempotency_key}")
        return 200, {"user_id": user_id, "balance": balance, "amount": amount}

    return await run_idempotent(
        runtime,
        user_id=user_id,
        scope=TOPUP_SCOPE,
        key=idempotency_key,
        fingerprint={"amount": amount},
        work=work,
        required=True,
    )

"""Account use cases that own a unit of work: the balance top-up (idempotent per key), a password
reset's new password."""

from __future__ import annotations

from boxoffice import ratelimit
from boxoffice.auth import passwords, repository, reset, service
from boxoffice.config import secret
from boxoffice.db.idempotency import IdempotentResult, run_idempotent
from boxoffice.db.uow import UnitOfWork, unit_of_work
from boxoffice.errors import BalanceLimit, InvalidResetToken, TopUpDisabled
from boxoffice.payments import ledger
from boxoffice.runtime import Runtime

TOPUP_SCOPE = "POST /api/users/me/balance"


async def top_up(
    runtime: Runtime, *, user_id: int, amount: int, idempotency_key: str | None
) -> IdempotentResult:
    """Charge the balance once per Idempotency-Key: one ledger row + the balance, one transaction.
    A balance never grows past settings.max_balance (the whole top-up is refused).

    A top-up has no payment behind it, so it exists only outside production (settings.free_topups:
    BOXOFFICE_ENVIRONMENT=dev or test); in production fans pay for their tickets by card."""
    if not runtime.settings.free_topups:
        raise TopUpDisabled("Top-ups are not available here; pay for your tickets by card at checkout")
    await ratelimit.enforce(runtime, "topup", user_id, limit=runtime.settings.limit_topups_per_minute)

    async def work(uow: UnitOfWork) -> tuple[int, dict[str, int | str | None]]:
        balance = await ledger.credit(uow.session, user_id, amount, "TOPUP", f"topup:{idempotency_key}")
        if balance > runtime.settings.max_balance:
            raise BalanceLimit(
                f"A balance may not exceed {runtime.settings.max_balance}",
                max_balance=runtime.settings.max_balance,
            )
        currency = await repository.balance_currency(uow.session, user_id)
        return 200, {"user_id": user_id, "balance": balance, "amount": amount, "balance_currency": currency}

    return await run_idempotent(
        runtime,
        user_id=user_id,
        scope=TOPUP_SCOPE,
        key=idempotency_key,
        fingerprint={"amount": amount},
        work=work,
        required=True,
    )


async def reset_password(runtime: Runtime, *, token: str, password: str) -> None:
    """A reset link's new password: the link must be authentic, unexpired, and minted for the
    password the account has now (so it works once: the new hash kills it, and every other link).
    The new hash is computed before the transaction (argon2 holds no row lock)."""
    now = runtime.clock.now()
    claims = reset.read(secret(runtime.settings.jwt_secret), token, now=int(now.timestamp()))
    if claims is None:
        raise InvalidResetToken("This reset link is invalid or has expired; ask for a new one")
    new_hash = await passwords.hash_password_async(password)
    async with unit_of_work(runtime.sessions) as uow:
        current = await repository.password_hash_for_update(uow.session, claims.user_id)
        if current is None or reset.fingerprint(current) != claims.fingerprint:
            raise InvalidResetToken("This reset link was used already, or the password changed since")
        await repository.update_password_hash(uow.session, claims.user_id, new_hash, now)
        # Before the commit: whoever knew the old password is signed out everywhere, or (Redis
        # down, 503) the password stays as it was and the link still works.
        await service.end_every_session(runtime, claims.user_id)

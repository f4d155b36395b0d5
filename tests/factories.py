"""Test data helpers. Accounts are inserted directly (the auth service has its own tests)."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import insert

from boxoffice.auth.tokens import issue_access_token
from boxoffice.db import tables
from boxoffice.runtime import Runtime

_seq = itertools.count(1)


async def make_user(
    runtime: Runtime,
    *,
    role: str = "USER",
    balance: int = 0,
    email: str | None = None,
    name: str = "Test Fan",
    currency: str = "KRW",
) -> dict[str, Any]:
    """A user with a valid access token; a balance is written through the ledger (I3 holds)."""
    email = email or f"user{next(_seq)}@example.test"
    async with runtime.sessions() as session, session.begin():
        user_id = (
            await session.execute(
                insert(tables.users)
                .values(
                    email=email,
                    password_hash="not-a-real-hash",
                    name=name,
                    role=role,
                    balance=balance,
                    balance_currency=currency,
                )
                .returning(tables.users.c.id)
            )
        ).scalar_one()
        if balance:
            await session.execute(
                insert(tables.balance_ledger).values(
                    user_id=user_id,
                    amount=balance,
                    kind="ADJUSTMENT",
                    reference="test",
                    balance_after=balance,
                )
            )
    token, _ = issue_access_token(runtime.settings, user_id=user_id, role=role, now=runtime.clock.now())
    return {
        "id": user_id,
        "email": email,
        "role": role,
        "token": token,
        "headers": {"Authorization": f"Bearer {token}"},
    }

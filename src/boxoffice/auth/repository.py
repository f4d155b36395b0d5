"""All SQL of the accounts domain (users table). Balance changes go through payments.ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.db.tables import users

_PROFILE_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.name,
    users.c.role,
    users.c.balance,
    users.c.balance_currency,
    users.c.phone,
    users.c.address,
    users.c.email_verified,
    users.c.created_at,
    users.c.updated_at,
    users.c.deleted_at,
)


@dataclass(frozen=True)
class Credentials:
    id: int
    role: str
    password_hash: str


async def insert_user(
    session: AsyncSession,
    *,
    email: str,
    password_hash: str,
    name: str,
    role: str,
    phone: str | None,
    address: str | None,
    email_verified: bool,
    now: datetime,
) -> int | None:
    """The new user's id, or None when a live user already has this email (no exception, no race)."""
    stmt = (
        insert(users)
        .values(
            email=email,
            password_hash=password_hash,
            name=name,
            role=role,
            balance=0,
            phone=phone,
            address=address,
            email_verified=email_verified,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[users.c.email], index_where=users.c.deleted_at.is_(None))
        .returning(users.c.id)
    )
    user_id: int | None = (await session.execute(stmt)).scalar_one_or_none()
    return user_id


async def live_user_id_by_email(session: AsyncSession, email: str) -> int | None:
    stmt = select(users.c.id).where(users.c.email == email, users.c.deleted_at.is_(None))
    user_id: int | None = (await session.execute(stmt)).scalar_one_or_none()
    return user_id


async def credentials_by_email(session: AsyncSession, email: str) -> Credentials | None:
    stmt = select(users.c.id, users.c.role, users.c.password_hash).where(
        users.c.email == email, users.c.deleted_at.is_(None)
    )
    row = (await session.execute(stmt)).one_or_none()
    return None if row is None else Credentials(id=row.id, role=row.role, password_hash=row.password_hash)


async def live_role(session: AsyncSession, user_id: int) -> str | None:
    """The role of a live (not soft-deleted) user, None otherwise."""
    stmt = select(users.c.role).where(users.c.id == user_id, users.c.deleted_at.is_(None))
    role: str | None = (await session.execute(stmt)).scalar_one_or_none()
    return role


async def balance_currency(session: AsyncSession, user_id: int) -> str | None:
    """The ISO 4217 code of the user's balance."""
    found = await session.execute(select(users.c.balance_currency).where(users.c.id == user_id))
    return found.scalar_one_or_none()


async def update_password_hash(
    session: AsyncSession, user_id: int, password_hash: str, now: datetime
) -> None:
    await session.execute(
        update(users).where(users.c.id == user_id).values(password_hash=password_hash, updated_at=now)
    )


async def set_locale(session: AsyncSession, user_id: int, locale: str) -> None:
    await session.execute(
        update(users).where(users.c.id == user_id, users.c.deleted_at.is_(None)).values(locale=locale)
    )


async def locale(session: AsyncSession, user_id: int) -> str | None:
    stmt = select(users.c.locale).where(users.c.id == user_id, users.c.deleted_at.is_(None))
    found: str | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def profile(
    session: AsyncSession, user_id: int, *, include_deleted: bool = False
) -> dict[str, Any] | None:
    stmt = select(*_PROFILE_COLUMNS).where(users.c.id == user_id)
    if not include_deleted:
        stmt = stmt.where(users.c.deleted_at.is_(None))
    row = (await session.execute(stmt)).mappings().one_or_none()
    return None if row is None else dict(row)


async def update_profile(
    session: AsyncSession, user_id: int, values: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    stmt = (
        update(users)
        .where(users.c.id == user_id, users.c.deleted_at.is_(None))
        .values(**values, updated_at=now)
        .returning(*_PROFILE_COLUMNS)
    )
    row = (await session.execute(stmt)).mappings().one_or_none()
    return None if row is None else dict(row)


async def soft_delete(session: AsyncSession, user_id: int, now: datetime) -> bool:
    stmt = (
        update(users)
        .where(users.c.id == user_id, users.c.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now)
        .returning(users.c.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def mark_email_verified(session: AsyncSession, user_id: int, email: str, now: datetime) -> bool:
    """Only for the live account that still has the address the link was sent to."""
    stmt = (
        update(users)
        .where(users.c.id == user_id, users.c.email == email, users.c.deleted_at.is_(None))
        .values(email_verified=True, updated_at=now)
        .returning(users.c.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def password_hash_for_update(session: AsyncSession, user_id: int) -> str | None:
    """A live user's password hash, the row locked (a reset link is used once, even twice at once)."""
    stmt = (
        select(users.c.password_hash)
        .where(users.c.id == user_id, users.c.deleted_at.is_(None))
        .with_for_update()
    )
    found: str | None = (await session.execute(stmt)).scalar_one_or_none()
    return found

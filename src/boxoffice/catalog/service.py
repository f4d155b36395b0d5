"""Catalog rules and orchestration. Services never commit: the entrypoint owns the transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.catalog import repository
from boxoffice.catalog.schemas import Show
from boxoffice.errors import NotFound
from boxoffice.worker import Job

__all__ = ["JOBS", "Show", "get_remaining", "get_show"]


async def get_show(session: AsyncSession, show_id: int) -> Show:
    row = await repository.fetch_show(session, show_id)
    if row is None:
        raise NotFound(f"Show {show_id} not found", code="SHOW_NOT_FOUND", show_id=show_id)
    return Show(**row)


async def get_remaining(session: AsyncSession, show_id: int) -> int:
    """inventory.remaining: what listings show, kept within ~1 s of the seats by the recount job."""
    remaining = await repository.fetch_remaining(session, show_id)
    if remaining is None:
        raise NotFound(f"Show {show_id} not found", code="SHOW_NOT_FOUND", show_id=show_id)
    return remaining


JOBS: list[Job] = []

"""Apply and revert Alembic migrations (`migrations/`: in the checkout, or shipped in the wheel)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from boxoffice.kit.shipped import shipped

MIGRATIONS_DIR = shipped("migrations")


def _config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Blocking; call from a thread when an event loop is running."""
    command.upgrade(_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(_config(database_url), revision)


def revisions() -> list[tuple[str, str]]:
    """Every shipped revision, oldest first: (revision, its message)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config(""))
    found = [(r.revision, r.doc or "") for r in script.walk_revisions()]
    return list(reversed(found))


def head() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_config("")).get_current_head())


async def current(database_url: str) -> str | None:
    """The database's revision (None: never migrated), as Alembic reads it."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    from boxoffice.db.uow import async_url

    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as connection:
            found = await connection.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
    finally:
        await engine.dispose()
    return None if found is None else str(found)

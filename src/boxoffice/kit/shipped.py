"""Where the files Boxoffice ships beside its code are: the Alembic migrations and the deploy
templates. In an installed wheel they are package data (`boxoffice/_shipped/`, copied there by
setup.py); in a checkout (editable install) they are the repository's `migrations/` and `deploy/`."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # src/boxoffice (or site-packages/boxoffice)


def shipped(name: str) -> Path:
    """The directory `migrations` or `deploy`, from the wheel or else from the checkout."""
    packaged = _PACKAGE / "_shipped" / name
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parents[1] / name

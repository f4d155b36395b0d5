"""Process and file helpers shared by the embedded servers: private dirs, sockets, logs, waiting
and stopping."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

SOCKET_PATH_MAX = 100

PG_SYSTEM_USER = "boxoffice-pg"  # PostgreSQL refuses to run as root


class BackendError(RuntimeError):
    """A backend could not be started or reached; the message is meant for the operator."""


def _socket_dir(data_dir: Path, name: str) -> Path:
    """<data_dir>/run/<name> when short enough for AF_UNIX; else a per-data-dir dir under the temp dir."""
    preferred = data_dir / "run" / name
    if len(str(preferred / ".s.PGSQL.5432.lock")) <= SOCKET_PATH_MAX:
        return preferred
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"boxoffice-{digest}-{name}"


def _private_dir(path: Path, owner: tuple[int, int] | None = None, mode: int = 0o700) -> None:
    """Create (or take back) a directory only its owner may enter. A directory someone else
    planted there (a shared temp dir) or a symlink is refused rather than trusted."""
    path.mkdir(parents=True, exist_ok=True)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise BackendError(f"{path} is not a plain directory; remove it")
    allowed = {os.geteuid(), *([owner[0]] if owner else [])}
    if st.st_uid not in allowed:
        raise BackendError(f"{path} belongs to another user (uid {st.st_uid}); remove it")
    if owner is not None:
        os.chown(path, *owner)
    path.chmod(mode)


def _lock_down_data_dir(data_dir: Path, pg_owner: tuple[int, int] | None) -> None:
    """0700; 0710 with the PostgreSQL user's group when that user is not us (root runs it as
    PG_SYSTEM_USER), so it can reach its own subdirectories and nobody else can enter."""
    if pg_owner is None:
        data_dir.chmod(0o700)
    else:
        os.chown(data_dir, os.geteuid(), pg_owner[1])
        data_dir.chmod(0o710)


def _socket_home(data_dir: Path, socket_dir: Path, owner: tuple[int, int] | None) -> None:
    """The socket's private directory (for `owner`, else us), and <data_dir>/run above it
    (0710 like the data dir when PostgreSQL runs as its own user)."""
    pg_owner = _owner(_run_as_pg_user())
    if socket_dir.parent == data_dir / "run":
        _private_dir(socket_dir.parent, None, 0o710 if pg_owner else 0o700)
        if pg_owner is not None:
            os.chown(socket_dir.parent, os.geteuid(), pg_owner[1])
    _private_dir(socket_dir, owner)


def _private_log(path: Path, owner: tuple[int, int] | None = None) -> int:
    """The log opened for appending, 0600 (also when an older run left it world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    if owner is not None:
        os.fchown(fd, *owner)
    return fd


def ensure_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"  # per process: several start on one dir at once
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise BackendError(f"data dir {path} is not writable: {exc.strerror or exc}") from exc


def _wait_for_socket(path: Path, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BackendError(f"{path.name} exited with code {proc.returncode}; see {log}")
        if path.exists():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(str(path))
                return
            except OSError:
                pass
        time.sleep(0.02)
    raise BackendError(f"timed out after {timeout:.0f}s waiting for {path}; see {log}")


def _wait_gone(pid: int, timeout: float) -> bool:
    """True once the process is gone, False if it outlived the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float = 20) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _run_as_pg_user() -> dict[str, object]:
    """Keyword arguments for subprocess so PostgreSQL runs as a non-root user when we are root."""
    if os.geteuid() != 0:
        return {}
    import pwd

    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",  # its own group: the data dir's group grants nothing to anyone else
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _owner(run_as: dict[str, object]) -> tuple[int, int] | None:
    if not run_as:
        return None
    uid, gid = run_as["user"], run_as["group"]
    assert isinstance(uid, int) and isinstance(gid, int)
    return uid, gid

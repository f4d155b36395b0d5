"""`boxoffice` as an operator runs it: real processes, real signals, real data dirs."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
import redis

from boxoffice.db.uow import plain_url
from tests.helpers.net import free_port, wait_until

BOXOFFICE = [sys.executable, "-m", "boxoffice.cli"]

pytestmark = pytest.mark.own_backends


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")}
    env.update({"BOXOFFICE_DATA_DIR": str(data_dir), "BOXOFFICE_LOG_JSON": "true"}, **extra)
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BOXOFFICE, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _assert_one_line_error(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if "boxoffice: error:" in line]
    assert len(errors) == 1, result.stderr
    assert needle in errors[0], errors[0]


def test_unreachable_database_url_is_a_one_line_error(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = _env(
        tmp_path,
        BOXOFFICE_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/x",
        BOXOFFICE_REDIS_URL=f"redis://127.0.0.1:{port}/0",
        BOXOFFICE_PORT=str(free_port()),
    )
    _assert_one_line_error(_run(["up"], env), "cannot reach PostgreSQL")


def test_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        _assert_one_line_error(_run(["up"], _env(tmp_path, BOXOFFICE_PORT=str(port))), f"port {port}")


def test_unwritable_data_dir_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    _assert_one_line_error(_run(["up"], _env(blocker / "data")), "not writable")


def test_invalid_setting_is_a_one_line_error(tmp_path: Path) -> None:
    _assert_one_line_error(_run(["up"], _env(tmp_path, BOXOFFICE_PORT="eighty")), "BOXOFFICE_PORT")


@pytest.mark.parametrize("command", ["up", "serve", "grpc", "worker", "migrate", "seed-demo"])
def test_every_command_has_help(command: str, tmp_path: Path) -> None:
    result = _run([command, "--help"], _env(tmp_path))
    assert result.returncode == 0 and "Usage" in result.stdout


def _children_of(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _backend_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(data_dir) in cmd and ("postgres" in cmd or "redis-server" in cmd):
            found.append(p)
    return found


class Drained(subprocess.Popen[str]):
    """A command whose output (stdout and stderr) is read as it comes: a chatty process (up and its
    children logging every request) must never block on a full pipe that nobody reads mid-test."""

    def __init__(self, args: list[str], **kwargs: Any) -> None:
        super().__init__(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._lines.extend, args=(self.stdout,), daemon=True)
        self._reader.start()

    def communicate(self, input: str | None = None, timeout: float | None = None) -> tuple[str, str]:
        self.wait(timeout)
        self._reader.join(timeout)
        return "".join(self._lines), ""

    def wait_answering(self, url: str, *, deadline: float, what: str, every: float = 0.2) -> None:
        """Poll `url` until it answers 200; fail at once, with the output, if the process exits."""

        def answers() -> bool:
            assert self.poll() is None, f"{what}: exited early: {''.join(self._lines)[-3000:]}"
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, deadline=deadline, what=what, every=every)


def _start_up(data_dir: Path, port: int, grpc_port: int | None = None) -> tuple[subprocess.Popen[str], float]:
    started = time.monotonic()
    proc = Drained(
        [*BOXOFFICE, "up"],
        env=_env(
            data_dir,
            BOXOFFICE_PORT=str(port),
            BOXOFFICE_PAYMENT_PROVIDER_PORT=str(free_port()),
            BOXOFFICE_GRPC_PORT=str(grpc_port or free_port()),
        ),
    )
    try:
        proc.wait_answering(f"http://127.0.0.1:{port}/readyz", deadline=90, what="up to be ready")
    except AssertionError:
        proc.kill()
        raise
    return proc, time.monotonic() - started


def _stop(proc: subprocess.Popen[str], sig: int) -> str:
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    return out


def _demo_counts(port: int) -> tuple[int, ...]:
    concerts = httpx.get(f"http://127.0.0.1:{port}/api/concerts", timeout=5)
    total = concerts.json().get("total", -1) if concerts.status_code == 200 else -1
    return (concerts.status_code, total)


@pytest.mark.slow
def test_up_serves_stops_cleanly_and_restarts_on_the_same_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port, grpc_port = free_port(), free_port()
    proc, _ = _start_up(data_dir, port, grpc_port)
    first_counts = _demo_counts(port)
    assert _grpc_health(grpc_port) == "SERVING", "up serves the gRPC TicketService beside HTTP"
    assert _backend_processes(data_dir), "embedded postgres and redis should be running"
    output = _stop(proc, signal.SIGINT)
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    assert "Boxoffice is up" in output and "Admin login" in output
    assert f"gRPC           127.0.0.1:{grpc_port}" in output
    # Ctrl-C must leave no postgres/redis behind (they may take a moment to exit)
    wait_until(
        lambda: _backend_processes(data_dir) == [], deadline=30, what="postgres/redis to exit after Ctrl-C"
    )

    proc, _ = _start_up(data_dir, port)  # warm start on the same data
    assert _demo_counts(port) == first_counts, "the demo must not be seeded twice"
    output = _stop(proc, signal.SIGTERM)
    assert "Traceback" not in output
    wait_until(
        lambda: _backend_processes(data_dir) == [], deadline=30, what="postgres/redis to exit after SIGTERM"
    )


def _grpc_health(port: int, deadline: float = 30) -> str:
    """The standard health check of the gRPC server on `port`, retried until it answers."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    end = time.monotonic() + deadline
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
        while True:
            try:
                answer = stub.Check(
                    health_pb2.HealthCheckRequest(service="boxoffice.v1.TicketService"), timeout=2
                )
                return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))
            except grpc.RpcError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.2)


@pytest.mark.slow
def test_grpc_serves_alone_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    proc = subprocess.Popen(
        [*BOXOFFICE, "grpc"],
        env=_env(data_dir, BOXOFFICE_GRPC_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert _grpc_health(port, deadline=90) == "SERVING"
    finally:
        output = _stop(proc, signal.SIGINT)
    assert proc.returncode == 0 and "Traceback" not in output, output
    assert f"gRPC TicketService on 127.0.0.1:{port}" in output
    wait_until(
        lambda: _backend_processes(data_dir) == [], deadline=30, what="postgres/redis to exit after Ctrl-C"
    )


def test_grpc_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = _run(["grpc"], _env(tmp_path, BOXOFFICE_GRPC_PORT=str(port)), timeout=120)
    _assert_one_line_error(result, f"cannot listen for gRPC on 127.0.0.1:{port}")


def test_two_data_dirs_run_side_by_side(tmp_path: Path) -> None:
    from boxoffice.ops.backends.datadir import start_backends

    first = start_backends(tmp_path / "a", None, None, persist_redis=False)
    try:
        second = start_backends(tmp_path / "b", None, None, persist_redis=False)
        try:
            assert first.database_url != second.database_url and first.redis_url != second.redis_url
            for backends, marker in ((first, "a"), (second, "b")):
                client = redis.Redis.from_url(backends.redis_url)
                client.set("which", marker)
                conn = run_sql(backends.database_url, f"CREATE TABLE t_{marker} (x int)")
                assert conn is None
            assert redis.Redis.from_url(first.redis_url).get("which") == b"a"
            assert redis.Redis.from_url(second.redis_url).get("which") == b"b"
        finally:
            second.stop()
    finally:
        first.stop()


def test_a_second_up_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    from boxoffice.ops.backends.datadir import DataDirLock

    with DataDirLock(tmp_path):
        result = _run(["up"], _env(tmp_path, BOXOFFICE_PORT=str(free_port())))
    _assert_one_line_error(result, "another boxoffice process")


def run_sql(url: str, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(plain_url(url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())

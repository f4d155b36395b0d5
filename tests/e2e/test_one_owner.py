"""One owner per data dir: commands run beside a live `up` attach to its embedded PostgreSQL and
Redis instead of starting their own (which used to stop the live ones: 503 until a restart)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.test_cli import (
    BOXOFFICE,
    _assert_one_line_error,
    _backend_processes,
    _env,
    _run,
    _start_up,
    _stop,
)
from tests.helpers.net import free_port

pytestmark = [pytest.mark.slow, pytest.mark.own_backends]


def test_commands_beside_a_running_up_attach_to_its_backends(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    up, _ = _start_up(data_dir, port)
    try:
        before = {p.pid for p in _backend_processes(data_dir)}
        assert before
        env = _env(
            data_dir, BOXOFFICE_PORT=str(free_port()), BOXOFFICE_PAYMENT_PROVIDER_PORT=str(free_port())
        )
        for command in (["migrate"], ["seed-demo"]):
            done = _run(command, env, timeout=120)
            assert done.returncode == 0, done.stderr
            assert "attached to the backends of the running boxoffice" in done.stderr
        worker = subprocess.Popen(
            [*BOXOFFICE, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.poll() is None:
            if any(psutil.Process(worker.pid).net_connections()):  # connected to the backends
                break
            time.sleep(0.2)
        time.sleep(1)  # let it tick once against the shared backends
        assert worker.poll() is None, worker.stdout.read() if worker.stdout else ""
        out = _stop(worker, signal.SIGTERM)
        assert worker.returncode == 0 and "Traceback" not in out, out
        # the live servers were neither restarted nor stopped; up still answers
        assert {p.pid for p in _backend_processes(data_dir)} == before
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        # a second `up` would have to own the data dir: refused with one line
        _assert_one_line_error(_run(["up"], env), "another boxoffice process")
    finally:
        _stop(up, signal.SIGINT)

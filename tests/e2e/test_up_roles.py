"""`boxoffice up --roles`: every role its own process group behind nginx, and the waiting room's
crowd (the queue role) at BOXOFFICE_QUEUE_NICE, so the buyers' roles and the databases on the same
machine take a core first."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.test_cli import BOXOFFICE, Drained, _env, _stop
from tests.helpers.net import free_port

pytestmark = [pytest.mark.slow, pytest.mark.own_backends]


def _role_process(up: psutil.Process, role: str) -> psutil.Process:
    for child in up.children(recursive=True):
        if child.cmdline()[-6:-4] == ["--role", role]:
            return child
    raise AssertionError(f"no `serve --role {role}` under up")


def _autogroup_nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/autogroup").read_text().split("nice")[1])


def test_up_roles_runs_the_queue_role_niced_behind_nginx(tmp_path: Path) -> None:
    port = free_port()
    env = _env(
        tmp_path / "data",
        BOXOFFICE_PORT=str(port),
        BOXOFFICE_GRPC_PORT=str(free_port()),
        BOXOFFICE_PAYMENT_PROVIDER_PORT=str(free_port()),
        BOXOFFICE_QUEUE_NICE="12",
    )
    up = Drained([*BOXOFFICE, "up", "--roles"], env=env)
    try:
        up.wait_answering(
            f"http://127.0.0.1:{port}/api/concerts", deadline=120, what="up --roles to answer through nginx"
        )
        queue = _role_process(psutil.Process(up.pid), "queue")
        booking = _role_process(psutil.Process(up.pid), "booking")
        assert os.getpriority(os.PRIO_PROCESS, queue.pid) == 12
        assert os.getpriority(os.PRIO_PROCESS, booking.pid) == 0
        # The kernel's autogroups are on here (and on CI's machine): the nice is the session's.
        assert _autogroup_nice(queue.pid) == 12 and _autogroup_nice(booking.pid) == 0
        # The queue role still answers through the gateway (a fan without a token: 401, not 502).
        assert (
            httpx.get(f"http://127.0.0.1:{port}/api/queue/status?concert_id=1&show_id=1").status_code == 401
        )
    finally:
        out = _stop(up, signal.SIGINT)
    assert up.returncode == 0 and "Traceback" not in out, out[-3000:]

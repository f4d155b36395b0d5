"""ops.gateway.yield_cpu: a niced role process (a session of its own) really ranks lower."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psutil

from boxoffice.ops.gateway import AUTOGROUP_SWITCH, yield_cpu
from tests.helpers.net import wait_until


def _autogroup(pid: int) -> str:
    return Path(f"/proc/{pid}/autogroup").read_text().strip()


def test_a_niced_session_and_what_it_starts_yield_the_cpu() -> None:
    # A session leader that starts a worker once niced (it waits for a line on stdin first), as a
    # role process starts uvicorn's.
    leader = subprocess.Popen(
        ["sh", "-c", "read go; sleep 30 & wait"], stdin=subprocess.PIPE, start_new_session=True
    )
    try:
        own_before = _autogroup(os.getpid())
        yield_cpu(leader.pid, 7)
        assert leader.stdin is not None
        leader.stdin.write(b"go\n")
        leader.stdin.flush()
        wait_until(lambda: bool(psutil.Process(leader.pid).children()), deadline=10, what="the worker")
        (worker,) = psutil.Process(leader.pid).children()
        assert os.getpriority(os.PRIO_PROCESS, leader.pid) == 7
        assert worker.nice() == 7
        # Linux with autogroups (this machine and CI's): the session's group carries the nice,
        # the worker is in it, and the caller's own group is untouched.
        assert AUTOGROUP_SWITCH.read_text().strip() == "1", "autogroups are off: this test checks them"
        assert _autogroup(leader.pid).endswith("nice 7"), _autogroup(leader.pid)
        assert _autogroup(worker.pid) == _autogroup(leader.pid)
        assert _autogroup(os.getpid()) == own_before != _autogroup(leader.pid)
    finally:
        for child in psutil.Process(leader.pid).children(recursive=True):
            child.kill()
        leader.kill()
        leader.wait(10)

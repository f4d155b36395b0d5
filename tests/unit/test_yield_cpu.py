"""ops.gateway.yield_cpu: a niced role process (a session of its own) really ranks lower."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psutil

from boxoffice.ops.gateway import AUTOGROUP_SWITCH, yield_cpu


def _autogroup(pid: int) -> str:
    return Path(f"/proc/{pid}/autogroup").read_text().strip()


def test_a_niced_session_and_what_it_starts_yield_the_cpu() -> None:
    # A session leader that starts a worker after being niced, as a role process starts uvicorn's.
    leader = subprocess.Popen(["sh", "-c", "sleep 0.5; sleep 30 & wait"], start_new_session=True)
    try:
        own_before = _autogroup(os.getpid())
        yield_cpu(leader.pid, 7)
        deadline = time.monotonic() + 10
        while not psutil.Process(leader.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
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

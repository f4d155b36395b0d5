"""`up` brings back an embedded Redis or PostgreSQL killed with SIGKILL: logged once, counted in
/metrics, /readyz truthful meanwhile, and the API serves again within 15 s of each fault."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli import _backend_processes, _start_up, _stop
from tests.helpers.net import free_port

pytestmark = pytest.mark.slow
RECOVERY_SECONDS = 15


def _pid(data_dir: Path, kind: str) -> int | None:
    """The server's pid; None while there is none (killed, not restarted yet)."""
    found = [p for p in _backend_processes(data_dir) if kind in " ".join(p.cmdline())]
    if kind == "postgres":  # the postmaster: the one whose parent is not a postgres
        found = [p for p in found if "postgres" not in " ".join(p.parent().cmdline())]
    assert len(found) <= 1, found
    return found[0].pid if found else None


def test_up_restarts_killed_embedded_servers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    up, _ = _start_up(data_dir, port)
    timeline = []
    try:
        for kind in ("redis-server", "postgres"):
            victim = _pid(data_dir, kind)
            assert victim is not None
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()
            seen_down = False
            while True:
                elapsed = time.monotonic() - killed
                assert elapsed < RECOVERY_SECONDS, f"{kind} not back within {RECOVERY_SECONDS} s"
                try:
                    ready = httpx.get(f"{base}/readyz", timeout=2)
                    concerts = httpx.get(f"{base}/api/concerts", timeout=2)
                except httpx.HTTPError:
                    time.sleep(0.1)
                    continue
                assert concerts.status_code in (200, 503), concerts.text  # never a 500
                if ready.status_code == 503:
                    seen_down = True
                elif concerts.status_code == 200 and _pid(data_dir, kind) not in (None, victim):
                    elapsed = time.monotonic() - killed
                    break
                time.sleep(0.1)
            timeline.append(f"{kind}: killed, back after {elapsed:.1f} s (readyz said 503: {seen_down})")
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert 'boxoffice_child_restarts_total{child="redis"} 1.0' in metrics
        assert 'boxoffice_child_restarts_total{child="postgres"} 1.0' in metrics
        print("\n".join(timeline))
    finally:
        out = _stop(up, signal.SIGINT)
    assert out.count('"child_died"') == 2 and "Traceback" not in out, out[-3000:]

"""`serve --role` and `worker --jobs` refuse names they do not know, in one line, before starting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.own_backends


def _run(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")}
    env["BOXOFFICE_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "boxoffice.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["serve", "--role", "merch"], "unknown role 'merch'"),
        (["serve", "--role", "queue,nope"], "unknown role 'nope'"),
        (["worker", "--jobs", "outbox_relay,sweep"], "unknown job 'sweep'; jobs: queue_admission"),
    ],
)
def test_unknown_roles_and_jobs_are_one_line_errors(args: list[str], needle: str, tmp_path: Path) -> None:
    result = _run(args, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if "boxoffice: error:" in line]
    assert len(errors) == 1 and needle in errors[0], result.stderr
    assert not (tmp_path / "postgres").exists()  # refused before any backend was started

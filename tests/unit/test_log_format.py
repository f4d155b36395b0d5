"""BOXOFFICE_LOG_FORMAT=auto: a readable console line on a terminal, one JSON event with Elastic
Common Schema field names otherwise. Run in a child process whose stderr is a real pty or a pipe."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

SCRIPT = """
import structlog
from boxoffice.config import Settings
from boxoffice.observability import configure_logging
configure_logging(Settings())
structlog.contextvars.bind_contextvars(**{"http.request.id": "rid-7"})
structlog.get_logger("boxoffice.demo").info("seat_held", seats=2)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")}
    return env | extra


def _on_a_pipe(**extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=_env(**extra), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def _on_a_terminal(**extra: str) -> str:
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT], env=_env(**extra), stderr=follower)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_a_pipe_gets_one_json_event_with_ecs_names() -> None:
    lines = [line for line in _on_a_pipe().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    event = json.loads(lines[0])
    assert event["message"] == "seat_held" and event["seats"] == 2
    assert event["log.logger"] == "boxoffice.demo" and event["log.level"] == "info"
    assert event["http.request.id"] == "rid-7"
    assert event["ecs.version"].startswith("8.") and event["@timestamp"].endswith("Z")
    assert "logger" not in event and "request_id" not in event


def test_a_terminal_gets_a_readable_line() -> None:
    out = _on_a_terminal()
    assert "seat_held" in out and "seats" in out and "rid-7" in out
    assert "{" not in out, out  # not JSON


def test_the_format_can_be_forced_either_way() -> None:
    assert "{" not in _on_a_pipe(BOXOFFICE_LOG_FORMAT="console")
    forced = _on_a_terminal(BOXOFFICE_LOG_FORMAT="json")
    assert json.loads(forced.strip().splitlines()[-1])["message"] == "seat_held"


def test_a_malformed_format_is_one_line_from_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "boxoffice.cli", "migrate", "status"],
        env=_env(BOXOFFICE_LOG_FORMAT="yaml"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "BOXOFFICE_LOG_FORMAT" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr

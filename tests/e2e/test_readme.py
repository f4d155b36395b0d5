"""The README cannot lie: every fenced block carries a `<!-- readme-test: KIND ... -->` marker saying
how it is tested, and the runnable ones run here against a real `boxoffice up` (the README's
127.0.0.1:8000 and :50051 replaced by this test's ports).

    run            bash, `set -euo pipefail`; the marker's `expect "..."` must be in its output
    python         Python with this checkout's environment; `expect ...` likewise
    wheel          the install commands: tests/e2e/test_wheel.py runs them (checked here to match)
    bare-machine   `make run` / `make test`: .ci/bare-machine and tests/e2e/test_bare_machine.py
    systemd        needs systemd as PID 1: every file it names must exist (tools/check_deploy.py
                   verifies the units)
    diagram        not a command
    external       needs a tool Boxoffice does not ship (said in the marker)
Every file path the README cites must exist too.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.test_cli import BOXOFFICE, Drained, _env
from tests.helpers.net import free_port
from tests.helpers.tempdirs import enterable

pytestmark = [pytest.mark.slow, pytest.mark.own_backends]
ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
KINDS = {"run", "python", "wheel", "bare-machine", "systemd", "diagram", "external"}
MARKER = re.compile(r"<!-- readme-test: ([\w-]+)(.*?)-->")


@dataclass
class Block:
    line: int
    kind: str
    note: str
    language: str
    text: str

    @property
    def expect(self) -> str | None:
        found = re.search(r'expect ("[^"]*"|\S+)', self.note)
        return None if found is None else found.group(1).strip('"').replace('\\"', '"')


def blocks() -> list[Block]:
    lines = README.read_text().splitlines()
    found, n = [], 0
    while n < len(lines):
        if lines[n].startswith("```"):
            language = lines[n][3:].strip()
            end = next(i for i in range(n + 1, len(lines)) if lines[i].startswith("```"))
            marker = MARKER.search(lines[n - 1]) if n > 0 else None
            kind, note = (marker.group(1), marker.group(2)) if marker else ("", "")
            found.append(Block(n + 1, kind, note, language, "\n".join(lines[n + 1 : end])))
            n = end
        n += 1
    return found


def test_every_block_says_how_it_is_tested_and_every_cited_file_exists() -> None:
    found = blocks()
    unmarked = [f"README.md:{b.line}" for b in found if b.kind not in KINDS]
    assert not unmarked, f"fenced blocks without a known readme-test marker: {unmarked}"
    assert {b.kind for b in found} >= {"run", "python", "wheel", "bare-machine", "systemd"}
    text = README.read_text()
    cited = set(re.findall(r"`((?:src|deploy|docs|tests|tools|migrations|\.ci)/[\w./@-]+)`", text))
    cited |= set(re.findall(r"\]\(((?:src|deploy|docs)/[\w./@-]+)\)", text))
    cited |= {"LICENSE", ".env.example", "constraints.txt"} & set(re.findall(r"`([\w.-]+)`", text))
    missing = sorted(c for c in cited if not (ROOT / c).exists())
    assert len(cited) > 15 and not missing, f"the README cites files that do not exist: {missing}"


def test_the_systemd_commands_name_files_that_exist() -> None:
    (block,) = [b for b in blocks() if b.kind == "systemd"]
    for path in re.findall(r"(deploy/[\w/*.@-]+|\.env\.example)", block.text):
        assert list(ROOT.glob(path)), path
    units = {p.name for p in (ROOT / "deploy" / "systemd").glob("*.service")}
    enabled = re.search(r"systemctl enable --now (.+)", block.text)
    assert enabled is not None
    for unit in enabled.group(1).split():
        name = re.sub(r"@\d+$", "@", unit) + ".service"
        assert name in units, unit


def test_the_install_commands_are_the_ones_the_wheel_test_runs() -> None:
    (block,) = [b for b in blocks() if b.kind == "wheel"]
    wheel_test = (ROOT / "tests" / "e2e" / "test_wheel.py").read_text()
    extras = re.search(r"\.whl(\[[\w,]+\])", block.text)
    assert extras is not None and f'f"{{wheel}}{extras.group(1)}"' in wheel_test
    assert "--version" in block.text and '"--version"' in wheel_test
    assert "boxoffice up" in block.text and '[boxoffice, "up"]' in wheel_test


@dataclass
class Up:
    port: int
    grpc_port: int

    def localise(self, text: str) -> str:
        return text.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}").replace(
            "127.0.0.1:50051", f"127.0.0.1:{self.grpc_port}"
        )


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    data_dir = enterable(tmp_path_factory.mktemp("readme")) / "data"
    running = Up(free_port(), free_port())
    proc = Drained(
        [*BOXOFFICE, "up"],
        env=_env(
            data_dir,
            BOXOFFICE_PORT=str(running.port),
            BOXOFFICE_GRPC_PORT=str(running.grpc_port),
            BOXOFFICE_PAYMENT_PROVIDER_PORT=str(free_port()),
        ),
    )

    try:
        proc.wait_answering(f"http://127.0.0.1:{running.port}/readyz", deadline=120, what="boxoffice up")
        yield running
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)


def _runnable() -> list[Block]:
    return [b for b in blocks() if b.kind in ("run", "python")]


@pytest.mark.parametrize("block", _runnable(), ids=lambda b: f"README.md:{b.line}")
def test_a_runnable_block_runs(up: Up, block: Block) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    if block.kind == "run":
        missing = [
            tool
            for tool in ("curl", "jq")
            if tool in block.text
            and subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0
        ]
        if missing:
            pytest.fail(
                f"{', '.join(missing)} missing: run 'sudo apt-get install -y {' '.join(missing)}' (make test does)"
            )
        args = ["bash", "-c", "set -euo pipefail\n" + up.localise(block.text)]
    else:
        args = [sys.executable, "-c", up.localise(block.text)]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"README.md:{block.line} failed:\n{output[-3000:]}"
    assert block.expect is not None, f"README.md:{block.line}: the marker names what to expect"
    assert block.expect in output, f"README.md:{block.line}: no {block.expect!r} in:\n{output[-3000:]}"

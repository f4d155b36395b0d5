"""tools/check_house.py (run by `make lint`) finds each kind of house-rule violation, with file:line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECKER = Path(__file__).resolve().parents[2] / "tools" / "check_house.py"


def _tree(root: Path, files: dict[str, str]) -> Path:
    package = root / "boxoffice"
    for rel, source in {"__init__.py": "", **files}.items():
        path = package / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return package


def _check(package: Path) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, str(CHECKER), str(package)], capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout.splitlines()


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "booking/__init__.py": "",
            "booking/repository.py": "from sqlalchemy import text\nQ = text('SELECT 1')\n",
            "booking/flows.py": "async def f(s):\n    async with s.begin():\n        pass\n",
            "booking/store.py": "def key(i):\n    return f'bo:{{{i}}}:seats'\n",
        },
    )
    code, out = _check(package)
    assert code == 0 and out[-1].endswith("house rules hold")


def test_each_rule_reports_file_and_line(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "booking/__init__.py": "",
            "booking/service.py": (
                "from fastapi import Request\n"  # 1 framework
                "from sqlalchemy import text\n"
                "\n"
                "async def f(session):\n"
                "    await session.execute(text('SELECT 1'))\n"  # 5 sql (text and execute)
                "    async with session.begin():\n"  # 6 transactions
                "        return 'bo:{1}:x'\n"  # 7 redis-keys
            ),
            "catalog/__init__.py": "",
            "catalog/service.py": "def g():\n    from boxoffice.booking import rules\n",  # lazy import: counts
            "booking/rules.py": "from boxoffice.catalog import service\n",
            "jobs.py": "from boxoffice.booking import rules\n",
            "worker.py": "",
            "booking/endpoints.py": "import boxoffice.worker\n",
        },
    )
    code, out = _check(package)
    assert code == 1
    text = "\n".join(out)
    service = package / "booking" / "service.py"
    assert f"{service}:1: framework:" in text
    assert f"{service}:5: sql:" in text
    assert f"{service}:6: transactions:" in text
    assert f"{service}:7: redis-keys:" in text
    assert f"{package / 'catalog' / 'service.py'}:2: cycles:" in text
    assert f"{package / 'booking' / 'rules.py'}:1: cycles:" in text
    assert (
        f"{package / 'jobs.py'}:1: worker: jobs.py imports the domain module boxoffice.booking.rules" in text
    )
    assert f"{package / 'booking' / 'endpoints.py'}:1: worker:" in text


def test_domains_layer_once_front_doors_are_left_out(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "catalog/__init__.py": "",
            "catalog/service.py": "from boxoffice.booking import rules\n",  # catalog -> booking
            "catalog/endpoints.py": "from boxoffice.booking import flows\n",  # a front door: allowed
            "booking/__init__.py": "",
            "booking/rules.py": "",
            "booking/flows.py": "from boxoffice.catalog import service\n",  # booking -> catalog
        },
    )
    code, out = _check(package)
    assert code == 1
    text = "\n".join(out)
    assert "cycles: boxoffice.catalog" not in text  # no module cycle
    assert f"{package / 'booking' / 'flows.py'}:1: cycles: domain booking -> catalog" in text
    assert "endpoints.py" not in text

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
                "    ratelimit.begin(None, 'hold', 1, limit=5)\n"  # 8 a rate limit's count: no transaction
            ),
            "catalog/__init__.py": "",
            "catalog/service.py": "def g():\n    from boxoffice.booking import rules\n",  # lazy import: counts
            "booking/rules.py": "from boxoffice.catalog import service\n",
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
    assert f"{service}:8:" not in text
    assert f"{package / 'catalog' / 'service.py'}:2: cycles:" in text
    assert f"{package / 'booking' / 'rules.py'}:1: cycles:" in text
    assert (
        f"{package / 'booking' / 'endpoints.py'}:1: imports: booking/endpoints.py imports the worker" in text
    )


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


def _violations(tmp_path: Path, files: dict[str, str]) -> str:
    code, out = _check(_tree(tmp_path, files))
    assert code == 1, out
    return "\n".join(out)


def test_layout_denies_unknown_top_level_modules_and_folders(tmp_path: Path) -> None:
    text = _violations(tmp_path, {"helpers.py": "", "misc/__init__.py": "", "app.py": ""})
    assert "helpers.py:1: layout:" in text
    assert "misc:1: layout: unknown folder misc/" in text
    assert "app.py" not in text


def test_raw_sql_on_a_driver_imported_only_for_type_checking(tmp_path: Path) -> None:
    text = _violations(
        tmp_path,
        {
            "booking/__init__.py": "",
            "booking/service.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    import asyncpg\n"
                "async def f(conn):\n"
                "    return await conn.fetchval('SELECT 1')\n"  # 5
            ),
        },
    )
    assert "booking/service.py:5: sql: SQL outside a repository module: fetchval()" in text


def test_sql_strings_outside_repositories(tmp_path: Path) -> None:
    text = _violations(
        tmp_path,
        {
            "catalog/__init__.py": "",
            "catalog/service.py": "Q = 'UPDATE seats SET status = $1 WHERE id = $2'\n",
        },
    )
    assert "catalog/service.py:1: sql: SQL string outside a repository module" in text


def test_a_service_opening_a_lean_unit_of_work_or_a_driver_transaction(tmp_path: Path) -> None:
    text = _violations(
        tmp_path,
        {
            "payments/__init__.py": "",
            "payments/service.py": (
                "async def f(runtime, conn):\n"
                "    async with lean_unit_of_work(runtime):\n"  # 2
                "        pass\n"
                "    async with conn.transaction():\n"  # 4
                "        pass\n"
            ),
        },
    )
    assert "payments/service.py:2: transactions:" in text
    assert "payments/service.py:4: transactions:" in text


def test_redis_keys_built_from_a_variable_or_commands_outside_stores(tmp_path: Path) -> None:
    text = _violations(
        tmp_path,
        {
            "waiting_room/__init__.py": "",
            "waiting_room/service.py": (
                "PREFIX = 'bo'\n"  # 1: a key built from a variable
                "async def f(runtime, show_id):\n"
                "    key = ':'.join([PREFIX, str(show_id), 'queue'])\n"
                "    return await runtime.hot_redis.zcard(key)\n"  # 4: a command outside a store
            ),
        },
    )
    assert "waiting_room/service.py:1: redis-keys:" in text
    assert "waiting_room/service.py:4: redis-keys: Redis command zcard() outside a store" in text


def test_web_frameworks_only_in_front_doors_and_http(tmp_path: Path) -> None:
    text = _violations(
        tmp_path,
        {
            "pricing/__init__.py": "",
            "kit/__init__.py": "",
            "kit/money.py": "from starlette.responses import Response\n",
            "http/__init__.py": "",
            "http/guard.py": "from starlette.requests import Request\n",
            "web/__init__.py": "",
            "web/pages.py": "from fastapi import APIRouter\n",
        },
    )
    assert "kit/money.py:1: framework:" in text
    assert "http/guard.py" not in text and "web/pages.py" not in text


def test_import_rules_ops_kit_machinery_and_front_doors(tmp_path: Path) -> None:
    text = _violations(
        tmp_path,
        {
            "ops/__init__.py": "",
            "ops/gateway.py": "",
            "kit/__init__.py": "",
            "kit/clock.py": "from boxoffice import runtime\n",  # kit above errors/config
            "runtime.py": "",
            "app.py": "from boxoffice.ops import gateway\n",  # ops outside the CLI
            "cli.py": "from boxoffice.ops import gateway\n",  # allowed
            "db/__init__.py": "",
            "db/outbox.py": "from boxoffice.booking import rules\n",  # machinery -> domain
            "booking/__init__.py": "",
            "booking/rules.py": "",
            "booking/flows.py": "from boxoffice.web import pages\n",  # a domain -> a front door
            "booking/endpoints.py": "from boxoffice.http import hot\n",  # its own front door: allowed
            "http/__init__.py": "",
            "http/hot.py": "",
            "web/__init__.py": "",
            "web/pages.py": "",
        },
    )
    assert "kit/clock.py:1: imports:" in text
    assert "/boxoffice/app.py:1: imports:" in text and "/boxoffice/cli.py:1: imports" not in text
    assert "db/outbox.py:1: imports:" in text
    assert "booking/flows.py:1: imports: booking/flows.py imports boxoffice.web.pages" in text
    assert "booking/endpoints.py:" not in text


def test_the_project_passes() -> None:
    code, out = _check(CHECKER.parents[1] / "src" / "boxoffice")
    assert code == 0, out


def test_money_scaled_by_hand_outside_kit_money(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "kit/__init__.py": "",
            "kit/money.py": "def f(x):\n    return x / 100\n",
            "web/__init__.py": "",
            "web/render.py": "def money(minor):\n    return f'{minor / 100:,.2f}'\n",
            "web/templates/a.html": "<p>{{ '%.2f' % (price / 100) }}</p>\n",
            "web/static/js/app.js": "export const f = (minor) => (minor / 100).toFixed(2);\n",
            "web/static/js/vendor/lib.js": "const half = x / 100;\n",
            "web/static/js/ok.js": "const pct = Math.round((a / b) * 100); const s = ms / 1000;\n",
            "admin/__init__.py": "",
            "admin/forms.py": "def cents(value):\n    return round(value * 100)\n",
        },
    )
    code, out = _check(package)
    money = [line for line in out if "[money]" in line or " money " in line or "money:" in line]
    assert code == 1
    assert any("web/render.py:2" in line for line in money), out
    assert any("admin/forms.py:2" in line for line in money), out
    assert any("a.html:1" in line for line in money), out
    assert any("js/app.js:1" in line for line in money), out
    where = [line.split(": ")[0] for line in money]
    assert not any("kit/money.py" in w or "vendor" in w or "ok.js" in w for w in where), out
    assert len(money) == 4, out

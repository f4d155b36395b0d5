"""tools/check_catalogs.py: the catalogs match the sources, and a planted violation of each kind
(missing, untranslated, stale) is found."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import check_catalogs  # noqa: E402

PO_HEADER = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'


def _entry(msgid: str, msgstr: str) -> str:
    return f'msgid "{msgid}"\nmsgstr "{msgstr}"\n\n'


def _project(tmp: Path, ko: dict[str, str], en: dict[str, str]) -> Path:
    (tmp / "babel.cfg").write_text((ROOT / "babel.cfg").read_text())
    package = tmp / "src" / "boxoffice"
    (package / "web" / "templates").mkdir(parents=True)
    (package / "web" / "static" / "js").mkdir(parents=True)
    (package / "shop.py").write_text(
        "from boxoffice.errors import Conflict\n"
        "from boxoffice.kit.i18n import _\n\n"
        "def sell() -> str:\n"
        '    if _("Sold") == "":\n'
        '        raise Conflict("Seats were taken")\n'
        '    return _("Sold")\n'
    )
    (package / "web" / "templates" / "page.html").write_text('<p>{{ _("Welcome") }}</p>\n')
    (package / "web" / "static" / "js" / "page.js").write_text('show(t("Loading…"));\n')
    for locale, entries in (("ko", ko), ("en", en)):
        po = check_catalogs.catalog_path(tmp, locale)
        po.parent.mkdir(parents=True)
        po.write_text(PO_HEADER + "".join(_entry(k, v) for k, v in entries.items()))
    return tmp


COMPLETE_EN = {
    "Sold": "Sold",
    "Seats were taken": "Seats were taken",
    "Welcome": "Welcome",
    "Loading…": "Loading…",
}


def test_the_project_catalogs_match_the_sources() -> None:
    assert check_catalogs.problems(ROOT) == []


def test_a_complete_catalog_passes(tmp_path: Path) -> None:
    ko = {
        "Sold": "판매됨",
        "Seats were taken": "이미 판매된 좌석입니다",
        "Welcome": "환영합니다",
        "Loading…": "불러오는 중…",
    }
    root = _project(tmp_path, ko, COMPLETE_EN)
    assert check_catalogs.problems(root) == []


def test_planted_violations_are_found(tmp_path: Path) -> None:
    # "Loading…" (the JS string) missing, "Welcome" untranslated, "Goodbye" stale
    ko = {
        "Sold": "판매됨",
        "Seats were taken": "이미 판매된 좌석입니다",
        "Welcome": "",
        "Goodbye": "안녕히 가세요",
    }
    root = _project(tmp_path, ko, COMPLETE_EN)
    found = check_catalogs.problems(root)
    po = "src/boxoffice/locale/ko/LC_MESSAGES/messages.po"
    assert f"{po}: missing 'Loading…'" in found
    assert f"{po}: untranslated 'Welcome'" in found
    assert f"{po}: stale 'Goodbye' (no longer in the sources)" in found
    assert len(found) == 3  # the English catalog is complete


def test_update_adds_new_messages_and_drops_stale_ones(tmp_path: Path) -> None:
    root = _project(tmp_path, {"Sold": "판매됨", "Goodbye": "안녕히 가세요"}, {"Sold": "Sold"})
    check_catalogs.update(root)
    found = check_catalogs.problems(root)
    po = "src/boxoffice/locale/ko/LC_MESSAGES/messages.po"
    # English translates itself; Korean keeps its translation and waits for the new ones
    assert sorted(found) == sorted(
        f"{po}: untranslated {m!r}" for m in ("Seats were taken", "Welcome", "Loading…")
    )

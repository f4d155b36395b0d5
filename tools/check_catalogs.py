"""The gettext catalogs against the sources (run by `make lint`).

Re-extracts every message with babel (the mapping in babel.cfg: Python, the Jinja templates, our
JS) and compares it with each catalog, src/boxoffice/locale/<lang>/LC_MESSAGES/messages.po:

- a message of the sources missing from a catalog,
- a message in a catalog with no translation (or only a fuzzy one),
- a stale entry: in a catalog, no longer in the sources.

    python tools/check_catalogs.py            # exit 1 and one line per problem
    python tools/check_catalogs.py --update   # merge: add new messages (English ones translated
                                              # as themselves), drop stale ones; then translate
                                              # the new Korean entries by hand

Besides babel's default keywords, every DomainError class is a keyword (its first argument, the
detail, is a message) and `t` is the keyword of our JS (web/static/js/app.js).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ("ko", "en")
SOURCE_LOCALE = "en"  # msgids are English: its catalog translates each message as itself
PROJECT = "boxoffice"
EXTRACTORS = {"jinja2": "jinja2.ext:babel_extract"}


def keywords() -> dict[str, Any]:
    from boxoffice.errors import all_error_classes

    found: dict[str, Any] = dict(DEFAULT_KEYWORDS)
    found["t"] = None
    for cls in all_error_classes():
        found[cls.__name__] = None
    for name in ("DomainError",):
        found[name] = None
    return found


def catalog_path(root: Path, locale: str) -> Path:
    return root / "src" / PROJECT / "locale" / locale / "LC_MESSAGES" / "messages.po"


def _key(msgid: str | tuple[str, ...]) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]


def extract(root: Path) -> Catalog:
    """Every message of the sources, as babel finds them with babel.cfg."""
    with (root / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    # "jinja2" is Jinja's extractor (jinja2.ext.babel_extract), named by its path: no entry point needed.
    method_map = [(pattern, EXTRACTORS.get(method, method)) for pattern, method in method_map]
    catalog = Catalog(project=PROJECT, fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        str(root), method_map, options_map, keywords=keywords(), strip_comment_tags=True
    ):
        if not _key(message).strip():
            continue
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def read_catalog(path: Path, locale: str) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale)


def _translated(message: Message) -> bool:
    if message.fuzzy:
        return False
    strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
    return bool(strings) and all(bool(s) for s in strings)


def problems(root: Path = ROOT, locales: Iterable[str] = LOCALES) -> list[str]:
    sources = extract(root)
    wanted = {_key(m.id) for m in sources if m.id}
    found: list[str] = []
    for locale in locales:
        path = catalog_path(root, locale)
        rel = path.relative_to(root)
        if not path.exists():
            found.append(f"{rel}: missing catalog (python tools/check_catalogs.py --update)")
            continue
        catalog = read_catalog(path, locale)
        present = {_key(m.id): m for m in catalog if m.id}
        for msgid in sorted(wanted - present.keys()):
            found.append(f"{rel}: missing {msgid!r}")
        for msgid, message in sorted(present.items()):
            if msgid not in wanted:
                found.append(f"{rel}: stale {msgid!r} (no longer in the sources)")
            elif not _translated(message):
                found.append(f"{rel}: untranslated {msgid!r}")
        for message in catalog.obsolete.values():
            found.append(f"{rel}: stale {_key(message.id)!r} (obsolete entry)")
    return found


def update(root: Path = ROOT, locales: Iterable[str] = LOCALES) -> None:
    sources = extract(root)
    for locale in locales:
        path = catalog_path(root, locale)
        old = read_catalog(path, locale) if path.exists() else Catalog(locale=locale)
        new = Catalog(locale=locale, project=PROJECT, fuzzy=False)
        new.header_comment = f"# {PROJECT}: {locale} messages (tools/check_catalogs.py --update)."
        for message in sources:
            if not message.id:
                continue
            previous = old.get(message.id)
            if previous is not None and _translated(previous):
                string = previous.string
            elif locale == SOURCE_LOCALE:
                string = message.id
            elif isinstance(message.id, tuple):
                string = ("",) * new.num_plurals
            else:
                string = ""
            new.add(message.id, string, message.locations, auto_comments=message.auto_comments)
        path.parent.mkdir(parents=True, exist_ok=True)
        out = BytesIO()
        write_po(out, new, width=0, omit_header=False, include_lineno=False, sort_output=True)
        path.write_bytes(out.getvalue())


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT / "src"))
    if "--update" in argv:
        update()
    found = problems()
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} catalog problem(s): see tools/check_catalogs.py")
    else:
        print(f"check_catalogs: {', '.join(LOCALES)} translate every message of the sources, none stale")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

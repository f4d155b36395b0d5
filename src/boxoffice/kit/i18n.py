"""Languages: the gettext catalogs (Korean, English) and the one rule that picks a reader's language.

- Catalogs are `boxoffice/locale/<lang>/LC_MESSAGES/messages.po`, read and compiled in memory by
  babel on first use (no compiled .mo is committed, so none can go stale; the wheel ships the .po
  files). `tools/check_catalogs.py` (make lint) re-extracts the sources and fails on a message
  missing from or untranslated in a catalog, and on a stale entry.
- The language of the work in hand is a ContextVar: the web middleware sets it per request, mail
  composition per recipient (`use_locale`). `_()` translates into it; `N_()` only marks a string
  for extraction (translated later, where the reader is known).
- `negotiate(choice, accept_language, default)` is the rule, once: the fan's explicit choice
  (account / cookie), else the best supported language of Accept-Language, else the deployment's
  default (BOXOFFICE_DEFAULT_LOCALE).
"""

from __future__ import annotations

import gettext as gettext_module
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

SUPPORTED = ("ko", "en")
FALLBACK = "en"  # the language of the sources (msgids are English)
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
# Shown in the language switch in its own language.
NAMES = {"ko": "한국어", "en": "English"}

_current: ContextVar[str] = ContextVar("boxoffice_locale", default=FALLBACK)


def catalog_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(locale: str) -> gettext_module.NullTranslations:
    """The compiled catalog of a supported locale (fuzzy entries left out, as msgfmt does)."""
    path = catalog_path(locale)
    if locale not in SUPPORTED or not path.exists():
        return gettext_module.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=locale, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext_module.GNUTranslations(compiled)


def supported(locale: str | None) -> str | None:
    """`locale` as one of ours ("ko-KR" -> "ko"), or None."""
    if not locale:
        return None
    primary = locale.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in SUPPORTED else None


def parse_accept_language(header: str | None) -> list[str]:
    """The header's language tags, best first (q=0 dropped; equal weights keep their order)."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag.strip() and quality > 0:
            weighted.append((-quality, index, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate(choice: str | None, accept_language: str | None, default: str) -> str:
    """The reader's language: their choice, else Accept-Language, else the deployment's default."""
    picked = supported(choice)
    if picked:
        return picked
    for tag in parse_accept_language(accept_language):
        if tag == "*":
            break
        picked = supported(tag)
        if picked:
            return picked
    return supported(default) or FALLBACK


def current_locale() -> str:
    return _current.get()


def set_locale(locale: str) -> None:
    """Set the language of the running task (the web middleware, once per request)."""
    _current.set(supported(locale) or FALLBACK)


@contextmanager
def use_locale(locale: str | None) -> Iterator[str]:
    """Work in `locale` for a block (a mail to one recipient, a page render)."""
    token = _current.set(supported(locale) or FALLBACK)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def translate(message: str, locale: str) -> str:
    """`message` in `locale`, whatever the current one is."""
    return translations(supported(locale) or FALLBACK).gettext(message)


def has_translation(message: str, locale: str) -> bool:
    """Whether the catalog of `locale` translates `message` (used for free-form error details)."""
    found = getattr(translations(supported(locale) or FALLBACK), "_catalog", {}).get(message)
    return bool(found)


def N_(message: str) -> str:
    """Mark `message` for extraction; it is translated where it is shown."""
    return message


# A person's sentence for an error whose own detail has no translation (a detail with values in it).
STATUS_SENTENCES = {
    400: N_("The request is not valid."),
    401: N_("Please log in again."),
    402: N_("The payment did not go through."),
    403: N_("You are not allowed to do this."),
    404: N_("We could not find what you asked for."),
    405: N_("This address does not take this kind of request."),
    409: N_("This clashes with what happened meanwhile; please reload and try again."),
    410: N_("This is no longer available."),
    413: N_("The request is too large."),
    415: N_("The request's format is not supported."),
    422: N_("Please check what you entered."),
    429: N_("Too many requests; please wait a moment and try again."),
    500: N_("Something went wrong on our side; it has been logged."),
    503: N_("The service is busy; please try again shortly."),
}


def error_detail(detail: str, status: int, locale: str | None = None) -> str:
    """An error's human sentence in `locale` (default: the current one): its own translation when
    the catalog has one, else the sentence of its status; English keeps the detail as written."""
    locale = supported(locale) or current_locale()
    if locale == FALLBACK:
        return detail
    if has_translation(detail, locale):
        return translate(detail, locale)
    sentence = STATUS_SENTENCES.get(status) or STATUS_SENTENCES[500 if status >= 500 else 400]
    return translate(sentence, locale)


_ = gettext

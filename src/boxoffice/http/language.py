"""The reader's language for one request: `kit.i18n.negotiate` fed with this request's choice
cookie (`bo_lang`: the language switch, and the account's choice at login), its Accept-Language
and the deployment's default (BOXOFFICE_DEFAULT_LOCALE). The pages (web middleware), the error
pages and problem+json details all ask here."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from boxoffice.kit.i18n import FALLBACK, negotiate

LOCALE_COOKIE = "bo_lang"
LOCALE_STATE = "bo_locale"  # request.state attribute: the negotiated language, once per request


def default_locale(connection: HTTPConnection) -> str:
    runtime = getattr(connection.app.state, "runtime", None)
    settings = getattr(runtime, "settings", None)
    return str(getattr(settings, "default_locale", FALLBACK))


def request_locale(connection: HTTPConnection) -> str:
    known = connection.scope.get("state", {}).get(LOCALE_STATE)
    if isinstance(known, str):
        return known
    locale = negotiate(
        connection.cookies.get(LOCALE_COOKIE),
        connection.headers.get("accept-language"),
        default_locale(connection),
    )
    connection.scope.setdefault("state", {})[LOCALE_STATE] = locale
    return locale

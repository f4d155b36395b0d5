"""Rendering pages: the Jinja2 environment, `render()`, and errors as styled pages.

Every template extends `base.html` and receives: `request`, `user` (a WebUser or None),
`csrf_token`, `static(path)`, `money(minor_units, currency)`, `when(datetime)`, `locale` (the page's
language, negotiated once per request by http/language.py), `_()` / `{% trans %}` (Jinja's i18n
extension on the kit/i18n catalogs), `js_messages()` (the catalog's translations of our JS's
`t("...")` strings, written into the page as JSON) and what the route passes.
Errors raised on a page (a DomainError, a 404, validation, anything unexpected) become
`error.html` with the error's human sentence; a 401 on a page redirects to the login page and
comes back afterwards. Requests under /api/ and /web/ (the browser's JSON and streams), and any
request that does not ask for text/html, keep problem+json.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote

import structlog
from babel.messages.extract import extract as babel_extract
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from boxoffice.errors import DomainError
from boxoffice.http.language import request_locale
from boxoffice.http.problems import request_path
from boxoffice.kit.clock import iso as iso_utc
from boxoffice.kit.i18n import (
    N_,
    NAMES,
    SUPPORTED,
    _,
    current_locale,
    error_detail,
    gettext,
    ngettext,
    use_locale,
)
from boxoffice.kit.money import CURRENCIES, DEFAULT_CURRENCY, format_money, minor_digits
from boxoffice.kit.timefmt import local_time, zone_abbreviation, zone_label
from boxoffice.tickets.rules import seat_label
from boxoffice.waiting_room.admission import start_rate
from boxoffice.web.security import SECURITY_HEADERS
from boxoffice.web.session import csrf_token

log = structlog.get_logger("boxoffice.web")

WEB_DIR = Path(__file__).parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
# Paths whose errors stay problem+json: the public API and the browser's own JSON/SSE routes.
JSON_PREFIXES = ("/api/", "/web/", "/static/", "/docs", "/redoc", "/openapi.json", "/metrics")
JS_DIR = STATIC_DIR / "js"


def money(amount: int | None, currency: str) -> str:
    """An amount in `currency`'s minor unit as the reader sees it ("₩220,000", "€80.00")."""
    return format_money(amount, currency, current_locale())


def when(value: datetime | None, time_zone: str | None = None, *, short: bool = False) -> str:
    """A time in the venue's zone with the zone named ("Sun 20 Dec 2026, 19:00 KST"); times that
    belong to no venue (audit rows, sign-ups) in UTC."""
    return local_time(value, time_zone or "UTC", current_locale(), short=short)


def iso(value: datetime | None) -> str:
    return "" if value is None else iso_utc(value)


@cache
def js_msgids() -> tuple[str, ...]:
    """The strings our JS asks for with t("..."), found in the shipped files as babel extracts them."""
    found: list[str] = []
    for path in sorted(JS_DIR.rglob("*.js")):
        with path.open("rb") as source:
            for _line, message, _comments, _context in babel_extract(
                "javascript", source, keywords={"t": None}
            ):
                if isinstance(message, str) and message not in found:
                    found.append(message)
    return tuple(found)


@cache
def _js_catalog(locale: str) -> dict[str, str]:
    with use_locale(locale):  # only what differs from the msgid: t() falls back to the msgid
        return {msgid: text for msgid in js_msgids() if (text := gettext(msgid)) != msgid}


def js_messages() -> dict[str, str]:
    """Our JS's strings in the page's language (the same catalogs as the pages: no second dictionary)."""
    return _js_catalog(current_locale())


def build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks: whitespace folded, as extracted
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        js_messages=js_messages,
        locale_names=NAMES,
        supported_locales=SUPPORTED,
        money=money,
        seat_words=seat_label,
        adapt_start_rate=start_rate,  # the queue page's hint on slow start
        currency_digits=minor_digits,
        zone_label=zone_label,
        zone_abbreviation=zone_abbreviation,
        currencies=CURRENCIES,
        default_currency=DEFAULT_CURRENCY,
        when=when,
        iso=iso,
        static=lambda path: f"/static/{path}",
    )
    return env


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    title: str | None = None,
) -> HTMLResponse:
    env: Environment = request.app.state.templates
    locale = request_locale(request)
    values: dict[str, Any] = {
        "locale": locale,
        "request": request,
        "user": getattr(request.state, "bo_user", None),
        "csrf_token": csrf_token(request),
        "title": title,
        "path": request.url.path,
    }
    values.update(context or {})
    with use_locale(locale):
        html = env.get_template(template).render(values)
    headers = {"Cache-Control": "no-store", "Content-Language": locale}
    return HTMLResponse(html, status_code=status_code, headers=headers)


def wants_page(request: Request) -> bool:
    """A browser navigating (it asks for HTML) outside the JSON areas; API clients keep problem+json."""
    if request_path(request).startswith(JSON_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


# Error pages' headings (HTTP's own phrases are English).
HEADINGS = {
    400: N_("Bad request"),
    401: N_("Please log in"),
    402: N_("Payment required"),
    403: N_("Not allowed"),
    404: N_("Page not found"),
    405: N_("Not allowed here"),
    409: N_("Conflict"),
    413: N_("Too large"),
    422: N_("Please check the form"),
    429: N_("Too many requests"),
    503: N_("Busy right now"),
}


def error_page(request: Request, status: int, detail: str, code: str) -> Response:
    """`detail` is the English sentence; the page shows it in the page's language."""
    with use_locale(request_locale(request)):
        title = _(HEADINGS.get(status) or N_("Something went wrong"))
        detail = error_detail(detail, status)
    try:
        response: Response = render(
            request,
            "error.html",
            {"status": status, "detail": detail, "code": code, "heading": title},
            status_code=status,
            title=title,
        )
    except Exception:  # the error page itself failed: a plain but still human answer
        log.exception("error_page_failed")
        response = HTMLResponse(
            '<!doctype html><html lang="en"><title>Error</title>'
            "<p>Something went wrong. Please try again.</p>",
            status_code=status,
        )
    # 500s are answered outside the web middleware: set the headers here as well.
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name.decode(), value.decode())
    return response


Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def install_page_errors(app: FastAPI) -> None:
    """Wrap the app's problem+json handlers: pages get `error.html` (or the login redirect)."""

    def wrap(exc_class: type[BaseException] | int, page: Callable[[Request, Any], Response]) -> None:
        original: Handler | None = app.exception_handlers.get(exc_class)

        async def handler(request: Request, exc: Any) -> Response:
            if wants_page(request) or original is None:
                return page(request, exc)
            answer = original(request, exc)
            return await answer if inspect.isawaitable(answer) else answer

        app.exception_handlers[exc_class] = handler

    def domain(request: Request, exc: DomainError) -> Response:
        if exc.status == 401 and request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return error_page(request, exc.status, exc.detail, exc.code)

    def http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_page(request, 404, N_("There is no page at this address."), "NOT_FOUND")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return error_page(request, exc.status_code, detail, f"HTTP_{exc.status_code}")

    def validation(request: Request, exc: RequestValidationError) -> Response:
        return error_page(
            request, 404 if request.method == "GET" else 422, _validation_sentence(exc), "BAD_INPUT"
        )

    def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled_page_error", path=request.url.path)
        return error_page(
            request, 500, N_("Something went wrong on our side; it has been logged."), "INTERNAL_ERROR"
        )

    wrap(DomainError, domain)
    wrap(StarletteHTTPException, http)
    wrap(RequestValidationError, validation)
    wrap(Exception, unexpected)


def _validation_sentence(exc: RequestValidationError) -> str:
    """English, with pydantic's words; error_page shows another language its status's sentence."""
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        if loc:
            return f"Please check {loc[-1].replace('_', ' ')}: {err.get('msg', 'invalid value')}."
    return N_("This address or form is not valid.")

"""The web middleware: security headers on every page, the cookies a page route queued, and the
page's language (negotiated once: http/language.py) as the request's current locale.

Pure ASGI (no BaseHTTPMiddleware): it only edits the response's start message, so streams (SSE)
pass through untouched. The JSON API, the OpenAPI docs (which load their own scripts) and the
operations endpoints are left alone: their responses are not pages, and the hot API paths should
not pay for headers a browser page needs.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from boxoffice.http.language import request_locale
from boxoffice.kit.i18n import set_locale
from boxoffice.web.session import COOKIES_STATE

# No inline script anywhere (scripts are our own modules under /static); styles from our files
# only (a script may still set element.style, which CSP does not restrict); images from us or
# data: URLs; every fetch/EventSource to this origin only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]
# Paths that are not pages of the web app.
NOT_PAGES = ("/api/", "/docs", "/redoc", "/openapi.json", "/metrics", "/healthz", "/readyz")


class WebMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(NOT_PAGES):
            await self.app(scope, receive, send)
            return
        # The page's language, for everything this request says (templates, flashes, form errors).
        set_locale(request_locale(HTTPConnection(scope)))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                pending = (scope.get("state") or {}).get(COOKIES_STATE) or {}
                headers += [(b"set-cookie", header.encode("latin-1")) for _, header in pending.values()]
                if pending and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

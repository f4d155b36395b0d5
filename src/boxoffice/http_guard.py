"""Every API response's security headers, and the request body limit (413 past max_body_bytes,
whether the client announces a Content-Length or streams chunks), as one pure ASGI middleware.

Headers an endpoint or page sets itself (a page's own CSP, the serving number's Cache-Control)
win; the defaults fill in what is missing.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from boxoffice.errors import problem

_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
# JSON and text answers (the API, health, metrics) are never a document to render or to cache.
_NOT_A_PAGE = (
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
)
_NOT_A_PAGE_PREFIXES = ("/api/", "/healthz", "/readyz", "/metrics")


class PayloadTooLarge(HTTPException):
    """An HTTPException so that FastAPI's body parsing passes it on (it turns anything else into a
    400); rendered as problem+json with the code PAYLOAD_TOO_LARGE."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds {limit} bytes")


class RequestGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        defaults = _ALWAYS + _NOT_A_PAGE if scope["path"].startswith(_NOT_A_PAGE_PREFIXES) else _ALWAYS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in defaults if item[0] not in present)
                message["headers"] = headers
            await send(message)

        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > limit:
                    response = problem(
                        413,
                        "PAYLOAD_TOO_LARGE",
                        f"The request body exceeds {limit} bytes",
                        instance=scope["path"],
                    )
                    await response(scope, receive, send_with_headers)
                    return
                break
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(limit)
            return message

        await self.app(scope, bounded_receive, send_with_headers)

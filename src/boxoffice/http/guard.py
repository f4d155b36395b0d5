"""One pure ASGI middleware for what every request shares: security headers on every response;
the request body limit (413 past max_body_bytes, whether the client announces a Content-Length or
streams chunks); and the last word on failures: a backend outage is a 503 + Retry-After
(BACKEND_UNAVAILABLE), anything else a 500 problem, each logged as one line (failures.py).

It sits inside Starlette's ServerErrorMiddleware, which would otherwise answer and then re-raise
every unexpected error into uvicorn's own full-traceback log line.

Headers an endpoint or page sets itself (a page's own CSP, the serving number's Cache-Control)
win; the defaults fill in what is missing.
"""

from __future__ import annotations

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from boxoffice.errors import BackendUnavailable, BodyTooLarge
from boxoffice.http.problems import problem
from boxoffice.kit.failures import RETRY_AFTER_SECONDS, FailureLog, outage_backend

log = structlog.get_logger("boxoffice.http")
_RETRY_AFTER = str(RETRY_AFTER_SECONDS).encode()

_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
# JSON and text answers (the API, health, metrics) are never a document to render or to cache.
_NOT_A_PAGE = (
    (b"referrer-policy", b"no-referrer"),  # pages set their own (web/security.py)
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
    def __init__(self, app: ASGIApp, max_body_bytes: int, failures: FailureLog | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.failures = failures or FailureLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        defaults = _ALWAYS + _NOT_A_PAGE if scope["path"].startswith(_NOT_A_PAGE_PREFIXES) else _ALWAYS

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in defaults if item[0] not in present)
                if message["status"] == 503 and b"retry-after" not in present:
                    headers.append((b"retry-after", _RETRY_AFTER))  # every 503 says when to retry
                message["headers"] = headers
            await send(message)

        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > limit:
                    response = problem(
                        413,
                        BodyTooLarge.code,
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

        try:
            await self.app(scope, bounded_receive, send_with_headers)
        except Exception as exc:
            self.failures.report(
                log,
                "request_failed",
                exc,
                **{"http.request.method": scope["method"], "url.path": scope["path"]},
            )
            if started:
                return  # mid-answer (a stream): the connection ends here, there is nothing more to say
            request_id = scope.get("state", {}).get("request_id")
            backend = outage_backend(exc)
            if backend is not None:
                response = problem(
                    503,
                    BackendUnavailable.code,
                    "A backend is unavailable; retry shortly",
                    instance=scope["path"],
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                    backend=backend,
                    request_id=request_id,
                )
            else:
                response = problem(
                    500,
                    "INTERNAL_ERROR",
                    "An unexpected error occurred; it has been logged.",
                    instance=scope["path"],
                    request_id=request_id,
                )
            await response(scope, receive, send_with_headers)

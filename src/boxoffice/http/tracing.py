"""The request's trace: a server span (OTLP export) and/or the wall-clock breakdown of a sampled
request (`Server-Timing`), both from boxoffice.kit.trace. Mounted only when tracing is configured
(create_app), outermost, so the handler's time covers every middleware.

A request is traced when the exporter's sampler records its span (OTEL_TRACES_SAMPLER, parent-based
by default: a caller's `traceparent` decides) or, with the breakdown on, when its `traceparent`
says sampled (flags 01). The breakdown answers in the W3C Server-Timing header:

    Server-Timing: handler;dur=4.1, cpu;dur=1.2, pg;dur=2.0, redis;dur=0.3, other;dur=0.6,
                   start;desc="1765040000.123456", pg_calls;desc="2", redis_calls;desc="3"

(ms; `start` is when the handler began, epoch seconds on the server's clock; the calls are the
statements and Redis commands the handler awaited).
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from boxoffice.kit import trace


def _traceparent(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"traceparent":
            text: str = value.decode("latin-1").strip()
            parts = text.split("-")
            if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16 and len(parts[3]) == 2:
                return text
            return None
    return None


def _sampled(traceparent: str | None) -> bool:
    if traceparent is None:
        return False
    try:
        return bool(int(traceparent[-2:], 16) & 1)
    except ValueError:
        return False


def server_timing(
    accounts: dict[str, float], started_at: float, pg_calls: int = 0, redis_calls: int = 0
) -> bytes:
    parts = [f"{name};dur={accounts[name]:.3f}" for name in ("handler", *trace.KINDS)]
    parts.append(f'start;desc="{started_at:.6f}"')
    parts.append(f'pg_calls;desc="{pg_calls}"')
    parts.append(f'redis_calls;desc="{redis_calls}"')
    return ", ".join(parts).encode()


class TraceMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = _traceparent(scope)
        measure = trace.BREAKDOWN and _sampled(header)
        method = scope.get("method", "")
        span: Any = None
        if trace.exporting():
            span = trace.start_request_span(
                method, header, {"http.request.method": method, "url.path": scope.get("path", "")}
            )
            if not span.is_recording():
                span.end()
                span = None
        if span is None and not measure:
            await self.app(scope, receive, send)
            return
        current = trace.Trace(span)
        status = 500
        accounts: dict[str, float] | None = None

        async def send_traced(message: Message) -> None:
            nonlocal status, accounts
            if message["type"] == "http.response.start":
                status = message["status"]
                if measure:
                    accounts = current.snapshot()
                    headers = list(message.get("headers", []))
                    timing = server_timing(
                        accounts, current.started_at, current.pg_calls, current.redis_calls
                    )
                    headers.append((b"server-timing", timing))
                    message["headers"] = headers
            await send(message)

        try:
            await trace.timed(current, self.app(scope, receive, send_traced))
        except BaseException as exc:
            if span is not None:
                span.record_exception(exc)
            raise
        finally:
            if span is not None:
                route = getattr(scope.get("route"), "path", None)
                if route is not None:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                final = accounts or current.snapshot()
                for name, value in final.items():
                    span.set_attribute(f"boxoffice.wall.{name}_ms", round(value, 3))
                span.set_attribute("boxoffice.pg.calls", current.pg_calls)
                span.set_attribute("boxoffice.redis.calls", current.redis_calls)
                if status >= 500:
                    from opentelemetry.trace import Status, StatusCode

                    span.set_status(Status(StatusCode.ERROR))
                span.end()

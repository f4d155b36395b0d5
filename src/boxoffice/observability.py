"""JSON logs (one event a line, ECS-style fields, request id) and Prometheus metrics."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

import msgspec
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from boxoffice.config import Settings

if TYPE_CHECKING:  # annotations only: the gRPC door imports Metrics without any web framework
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
# Keys whose values never reach a log line, whatever the caller passes.
_REDACTED_KEYS = frozenset(
    {"password", "password_hash", "token", "access_token", "refresh_token", "authorization", "secret"}
)


def _redact(_: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in _REDACTED_KEYS:
            event[key] = "[REDACTED]"
    return event


def _ecs(_: object, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["log.level"] = event.pop("level", method)
    event["message"] = event.pop("event", "")
    if "timestamp" in event:
        event["@timestamp"] = event.pop("timestamp")
    return event


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level)
    renderer: Any = (
        structlog.processors.JSONRenderer() if settings.log_json else structlog.dev.ConsoleRenderer()
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
        structlog.processors.format_exc_info,
    ]
    if settings.log_json:
        processors.append(_ecs)
    structlog.configure(
        processors=[*processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    # Everything (ours, uvicorn, alembic) leaves through one handler in one JSON format.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=processors,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs full URLs (query strings may carry tokens) at INFO.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs requests


class CopiedCounts(Collector):
    """A labelled counter whose values another process keeps (`values` is set before a scrape)."""

    def __init__(self, name: str, documentation: str, label: str, registry: CollectorRegistry) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.values: dict[str, int] = {}
        registry.register(self)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, count in sorted(self.values.items()):
            family.add_metric([value], count)
        yield family


class Metrics:
    """One registry per app, so tests and several apps in one process never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "boxoffice_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "boxoffice_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.in_flight = Gauge("boxoffice_http_requests_in_flight", "Requests being served", registry=r)
        self.db_pool_in_use = Gauge("boxoffice_db_pool_in_use", "Checked-out DB connections", registry=r)
        # Domain counters: the domains increment these (labels documented where they are used).
        self.holds = Counter("boxoffice_holds_total", "Hold attempts by outcome", ["outcome"], registry=r)
        self.confirmations = Counter("boxoffice_confirmations_total", "Reservations confirmed", registry=r)
        self.expiries = Counter("boxoffice_expiries_total", "Holds expired", registry=r)
        self.payments = Counter(
            "boxoffice_payments_total", "Payments by method and status", ["method", "status"], registry=r
        )
        self.queue_joins = Counter("boxoffice_queue_joins_total", "Queue joins", registry=r)
        self.queue_admissions = Counter("boxoffice_queue_admissions_total", "Users admitted", registry=r)
        self.queue_waiting = Gauge("boxoffice_queue_waiting", "Users waiting", ["show_id"], registry=r)
        self.queue_active = Gauge(
            "boxoffice_queue_active", "Admitted users holding a lease", ["show_id"], registry=r
        )
        self.queue_admission_rate = Gauge(
            "boxoffice_queue_admission_rate", "Measured admissions per second", ["show_id"], registry=r
        )
        self.queue_toll = Counter(
            "boxoffice_queue_toll_total",
            "Queue-join toll checks by outcome (paid, required, invalid, expired, foreign, replayed)",
            ["outcome"],
            registry=r,
        )
        self.queue_token_checks = Counter(
            "boxoffice_queue_token_verifications_total", "Queue token checks", ["outcome"], registry=r
        )
        self.outbox_lag = Gauge(
            "boxoffice_outbox_lag_seconds", "Age of the oldest unpublished event", registry=r
        )
        self.logins = Counter("boxoffice_logins_total", "Login attempts by outcome", ["outcome"], registry=r)
        # Counted by `up` (another process than the API's): /metrics copies them in at each scrape.
        self.child_restarts = CopiedCounts(
            "boxoffice_child_restarts", "Children `up` restarted after they died", "child", registry=r
        )
        self.rate_limited = Counter(
            "boxoffice_rate_limited_total", "Requests refused by a rate limit", ["scope"], registry=r
        )
        self.shed = Counter(
            "boxoffice_shed_total", "Waiting-room requests shed (429) under overload", ["route"], registry=r
        )
        self.loop_lag = Gauge(
            "boxoffice_event_loop_lag_seconds", "Smoothed event-loop lag of this process", registry=r
        )
        self.grpc_requests = Counter(
            "boxoffice_grpc_requests_total",
            "gRPC calls by method and status code",
            ["method", "code"],
            registry=r,
        )
        self.grpc_latency = Histogram(
            "boxoffice_grpc_request_duration_seconds",
            "gRPC unary call latency",
            ["method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )


_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_FORWARDED = (b"x-forwarded-for", b"x-real-ip", b"forwarded")


def metrics_allowed(scope: Scope, token: str | None) -> bool:
    """May this request read /metrics? A matching bearer token, or a direct loopback client (not
    forwarded by a proxy: nginx on the same host connects from loopback for everyone)."""
    import hmac

    authorization = _header(scope, b"authorization") or ""
    scheme, _, presented = authorization.partition(" ")
    if token and scheme.lower() == "bearer":
        return hmac.compare_digest(presented.strip().encode(), token.encode())
    client = scope.get("client")
    direct = not any(name in _FORWARDED for name, _ in scope.get("headers", ()))
    return direct and client is not None and client[0] in _LOOPBACK


class AccessLog:
    """One JSON line per request, the same ECS fields as every other log line.

    Written directly with msgspec rather than through structlog's stdlib chain: that chain costs
    ~60 us a line, a tenth of a refused hold; this costs a few."""

    def __init__(self, enabled: bool, stream: IO[bytes] | None = None) -> None:
        self.enabled = enabled and logging.getLogger("boxoffice.http").isEnabledFor(logging.INFO)
        self._stream = stream
        self._encode = msgspec.json.Encoder().encode

    def write(self, method: str, path: str, route: str, status: int, elapsed: float, request_id: str) -> None:
        if not self.enabled:
            return
        line = self._encode(
            {
                "http.request.method": method,
                "url.path": path,
                "http.route": route,
                "http.response.status_code": status,
                "event.duration_ms": round(elapsed * 1000, 2),
                "request_id": request_id,
                "logger": "boxoffice.http",
                "log.level": "info",
                "message": "request",
                "@timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
        )
        stream = self._stream or sys.stderr.buffer
        stream.write(line + b"\n")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


class RequestContextMiddleware:
    """Request id (X-Request-ID in, generated when absent, echoed out), access log and metrics.

    Pure ASGI: cheaper than BaseHTTPMiddleware on hot paths and safe for streaming responses.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: AccessLog | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log or AccessLog(enabled=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, REQUEST_ID_HEADER)
        request_id = (
            incoming if incoming and len(incoming) <= 128 and incoming.isprintable() else uuid.uuid4().hex
        )
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        rid = request_id.encode()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, rid))
                message["headers"] = headers
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(elapsed)
            if not template.startswith(("/metrics", "/healthz")):
                self.access_log.write(method, scope.get("path", ""), template, status, elapsed, request_id)
            structlog.contextvars.unbind_contextvars("request_id")

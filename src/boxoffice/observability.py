"""Logs (JSON with ECS fields, or a readable console on a terminal; request id on every line of a
request) and Prometheus metrics.

Metrics across processes: processes that share a listening port (the API processes and the worker
of `boxoffice up`, `boxoffice serve --workers N`) run prometheus_client's multiprocess mode on one
directory, so whichever process answers a scrape reports the sum over all of them (counters and
histograms summed, gauges by their own rule below), the standard process metrics of each live
process (label `pid`) and `boxoffice_build_info`. Why not one metrics port per process: the port is
shared on purpose (SO_REUSEPORT / one listener), so a scraper cannot address one process, and a
restarted process would come back on a port nobody told Prometheus about; with a shared directory
a dead process's counters stay counted and a new one adds to them. A process with no HTTP port of
its own (`boxoffice worker`, `boxoffice grpc` run alone) serves /metrics on BOXOFFICE_METRICS_PORT."""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
import uuid
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec
import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from boxoffice import __version__
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


ECS_VERSION = "8.11.0"
# structlog's own keys -> their Elastic Common Schema names (https://www.elastic.co/guide/en/ecs/current/).
_ECS_RENAMES = {"logger": "log.logger", "timestamp": "@timestamp"}


def _ecs(_: object, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["log.level"] = event.pop("level", method)
    event["message"] = event.pop("event", "")
    for ours, theirs in _ECS_RENAMES.items():
        if ours in event:
            event[theirs] = event.pop(ours)
    event["ecs.version"] = ECS_VERSION
    return event


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level)
    json_lines = settings.json_logs
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer(sort_keys=False)
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso" if json_lines else "%H:%M:%S", utc=json_lines),
        _redact,
        structlog.processors.format_exc_info,
    ]
    if json_lines:
        processors.append(_ecs)
    structlog.configure(
        processors=[*processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    _ACCESS_FORMAT["console"] = not json_lines
    # Everything (ours, uvicorn, alembic) leaves through one handler in one format.
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


def enable_multiprocess(directory: Path) -> None:
    """Keep this process's metric values in `directory` (prometheus_client's multiprocess mode),
    shared with the other processes of one port. Call before the process creates its Metrics."""
    from prometheus_client import values

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def multiprocess_dir() -> Path | None:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(path) if path else None


def reset_multiprocess_dir(directory: Path) -> None:
    """A fresh directory for a new run (the owner of the port calls this before any child starts)."""
    if directory.is_dir():
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)


_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """One registry per app, so tests and several apps in one process never collide. In
    multiprocess mode (enable_multiprocess) the values live in the shared directory instead and
    `exposition()` merges every process's."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = multiprocess_dir()
        r = self.registry
        self.requests = Counter(
            "boxoffice_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "boxoffice_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=r,
        )
        # Gauges across processes: a per-process quantity is summed over the live processes; a
        # shared truth (read from Redis or PostgreSQL by whoever ticks) keeps the latest value.
        self.in_flight = Gauge(
            "boxoffice_http_requests_in_flight",
            "Requests being served",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.backend_up = Gauge(
            "boxoffice_backend_up",
            "1 when the backend answered this process's last scrape, else 0",
            ["backend"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.db_pool_in_use = Gauge(
            "boxoffice_db_pool_in_use", "Checked-out DB connections", registry=r, multiprocess_mode="livesum"
        )
        # Domain counters: the domains increment these (labels documented where they are used).
        self.holds = Counter("boxoffice_holds_total", "Hold attempts by outcome", ["outcome"], registry=r)
        self.confirmations = Counter("boxoffice_confirmations_total", "Reservations confirmed", registry=r)
        self.expiries = Counter("boxoffice_expiries_total", "Holds expired", registry=r)
        self.checkins = Counter(
            "boxoffice_checkins_total", "Ticket scans at the gates by answer", ["result"], registry=r
        )
        self.mail_sent = Counter("boxoffice_mail_sent_total", "Mails sent by kind", ["kind"], registry=r)
        self.mail_retries = Counter(
            "boxoffice_mail_retries_total",
            "Mail attempts that failed and will be retried",
            ["kind"],
            registry=r,
        )
        self.mail_dead_letters = Counter(
            "boxoffice_mail_dead_letters_total", "Mails given up after the last attempt", ["kind"], registry=r
        )
        self.payments = Counter(
            "boxoffice_payments_total", "Payments by method and status", ["method", "status"], registry=r
        )
        self.queue_joins = Counter("boxoffice_queue_joins_total", "Queue joins", registry=r)
        self.queue_admissions = Counter("boxoffice_queue_admissions_total", "Users admitted", registry=r)
        self.queue_waiting = Gauge(
            "boxoffice_queue_waiting",
            "Users waiting",
            ["show_id"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.queue_active = Gauge(
            "boxoffice_queue_active",
            "Admitted users holding a lease",
            ["show_id"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.queue_admission_rate = Gauge(
            "boxoffice_queue_admission_rate",
            "Measured admissions per second",
            ["show_id"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.seats = Gauge(
            "boxoffice_seats",
            "Seats of the shows on sale by status (AVAILABLE, TEMP_RESERVED = held, RESERVED = sold)",
            ["show_id", "status"],
            registry=r,
            multiprocess_mode="mostrecent",
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
            "boxoffice_outbox_lag_seconds",
            "Age of the oldest unpublished event",
            registry=r,
            multiprocess_mode="livemax",
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
            "boxoffice_event_loop_lag_seconds",
            "Smoothed event-loop lag of the most lagging process",
            registry=r,
            multiprocess_mode="livemax",
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
            buckets=_BUCKETS,
            registry=r,
        )
        # Every outcome a dashboard or alert names exists from the start (at 0), not from its first event.
        for outcome in ("won", "shield_refused", "db_refused", "shield_skipped"):
            self.holds.labels(outcome)
        for method in ("BALANCE", "CARD"):
            for status in ("SUCCEEDED", "FAILED", "PENDING", "REFUNDED"):
                self.payments.labels(method, status)
        for outcome in ("success", "failure", "throttled"):
            self.logins.labels(outcome)
        r.register(BuildInfo())
        if self.multiprocess is None:  # the standard collectors of this one process
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)

    def exposition(self) -> bytes:
        """The Prometheus text of this process, or in multiprocess mode of every process."""
        if self.multiprocess is None:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        forget_dead_processes(self.multiprocess)
        merged = CollectorRegistry()
        declared = [v for v in vars(self).values() if isinstance(v, MetricWrapperBase)]
        everyone = MultiProcessCollector(None, path=str(self.multiprocess))  # type: ignore[no-untyped-call]
        merged.register(_Declared(declared, everyone))
        merged.register(self.child_restarts)
        merged.register(BuildInfo())
        merged.register(LiveProcesses(self.multiprocess))
        GCCollector(registry=merged)  # Python's collector of the process answering
        return generate_latest(merged)


class _Declared(Collector):
    """The merged families of every process, and (HELP and TYPE, no sample yet) every family this
    process declares that no process has a value for: a labelled metric nobody used yet exists,
    as it does in single-process mode."""

    def __init__(self, declared: list[MetricWrapperBase], merged: Collector) -> None:
        self.declared, self.merged = declared, merged

    def collect(self) -> Iterator[Metric]:
        seen = set()
        for family in self.merged.collect():
            seen.add(family.name)
            yield family
        for metric in self.declared:
            for family in metric.describe():
                if family.name not in seen:
                    seen.add(family.name)
                    yield Metric(family.name, family.documentation, family.type)


class BuildInfo(Collector):
    """`boxoffice_build_info{version, python_version} 1`: which release a process runs."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "boxoffice_build_info",
            "Boxoffice version and Python version",
            labels=["version", "python_version"],
        )
        family.add_metric([__version__, platform.python_version()], 1)
        yield family


def _pids(directory: Path) -> set[int]:
    found = set()
    for path in directory.glob("*.db"):
        tail = path.stem.rsplit("_", 1)[-1]
        if tail.isdigit():
            found.add(int(tail))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forget_dead_processes(directory: Path) -> None:
    """Drop the live gauges of processes that are gone (their counters stay counted)."""
    from prometheus_client.multiprocess import mark_process_dead

    for pid in _pids(directory):
        if not _alive(pid):
            mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


class LiveProcesses(Collector):
    """The standard process_* metrics (CPU, memory, open files, start time) of every live process
    of the directory, one series per process (label `pid`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for pid in sorted(_pids(self.directory)):
            if not _alive(pid):
                continue
            for family in ProcessCollector(pid=lambda pid=pid: pid, registry=None).collect():  # type: ignore[misc]
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from families.values()


def serve_metrics(metrics: Metrics, host: str, port: int) -> None:
    """/metrics of a process with no HTTP port of its own (`boxoffice worker`, `boxoffice grpc`),
    in a thread."""
    from prometheus_client import start_http_server

    class Exposition(Collector):
        def collect(self) -> Iterator[Metric]:
            from prometheus_client.parser import text_string_to_metric_families

            yield from text_string_to_metric_families(metrics.exposition().decode())

    registry = CollectorRegistry()
    registry.register(Exposition())
    start_http_server(port, addr=host, registry=registry)


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


_ACCESS_FORMAT = {"console": False}  # set by configure_logging: the access lines follow the log format


class AccessLog:
    """One line per request: JSON with the same ECS fields as every other log line, or a short
    readable line when the logs go to a terminal.

    Written directly with msgspec rather than through structlog's stdlib chain: that chain costs
    ~60 us a line, a tenth of a refused hold; this costs a few."""

    def __init__(self, enabled: bool, stream: IO[bytes] | None = None, console: bool | None = None) -> None:
        self.enabled = enabled and logging.getLogger("boxoffice.http").isEnabledFor(logging.INFO)
        self._stream = stream
        self._console = _ACCESS_FORMAT["console"] if console is None else console
        self._encode = msgspec.json.Encoder().encode

    def write(
        self,
        method: str,
        path: str,
        route: str,
        status: int,
        elapsed: float,
        request_id: str,
        trace_id: str | None = None,
    ) -> None:
        if not self.enabled:
            return
        stream = self._stream or sys.stderr.buffer
        if self._console:
            clock = datetime.now(UTC).astimezone().strftime("%H:%M:%S")
            stream.write(f"{clock} {method} {path} {status} {elapsed * 1000:.1f} ms\n".encode())
            return
        record = {
            "@timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "log.level": "info",
            "message": "request",
            "http.request.method": method,
            "url.path": path,
            "http.route": route,
            "http.response.status_code": status,
            "event.duration": int(elapsed * 1e9),  # ECS: nanoseconds
            "http.request.id": request_id,
            "log.logger": "boxoffice.http",
            "ecs.version": ECS_VERSION,
        }
        if trace_id is not None:
            record["trace.id"] = trace_id
        stream.write(self._encode(record) + b"\n")


def trace_id_of(scope: Scope) -> str | None:
    """The W3C trace context's trace id (`traceparent: 00-<32 hex>-<16 hex>-<flags>`), if sent."""
    value = _header(scope, b"traceparent")
    if value is None:
        return None
    parts = value.strip().split("-")
    if len(parts) >= 4 and len(parts[1]) == 32 and all(c in "0123456789abcdef" for c in parts[1]):
        return parts[1]
    return None


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
        trace_id = trace_id_of(scope)
        context: dict[str, str] = {"http.request.id": request_id}
        if trace_id is not None:
            context["trace.id"] = trace_id
        structlog.contextvars.bind_contextvars(**context)
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
                self.access_log.write(
                    method, scope.get("path", ""), template, status, elapsed, request_id, trace_id
                )
            structlog.contextvars.unbind_contextvars(*context)

"""Wall-clock tracing of a request: where its time went, and (with the `otel` extra) OTLP spans.

Off by default, and then the cost is one module-global test per Redis call / PostgreSQL statement
(`ENABLED`); nothing of OpenTelemetry's SDK is imported (FastAPI itself imports the bare
`opentelemetry` API package, so that one is always there).

A traced request runs its ASGI call through `timed()`: a trampoline that drives the request's
coroutine step by step (each `send()` the task makes into it) and measures, per step, the
thread's CPU (`time.thread_time()`) and the wall clock. Between two steps the task is suspended;
that gap is charged to what the task was awaiting when it yielded: `pg` inside `awaiting("pg")`
(statements, and waits for a pool connection: not counted as calls), `redis` inside
`awaiting("redis")` (the mux's calls), else `other` (other tasks of the loop running, timers).
The wall clock of a step beyond its CPU (the process was preempted: other processes on the
cores) is `other` too. So, by construction,

    handler wall-clock = cpu + pg + redis + other

and the time before the handler ran (accept queue, event-loop lag) is what a client measures from
its send to the handler's start (`Breakdown.started_at`, epoch seconds on the same host).

The loop is single-threaded: while a traced task's step runs, `CURRENT` is its trace, so the
statement hooks (SQLAlchemy's cursor events run in a greenlet, where contextvars differ) find it
without a context lookup.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

ENABLED = False  # some tracing is configured in this process (OTLP export or the breakdown)
BREAKDOWN = False  # sampled requests (`traceparent` flags 01) get a Server-Timing breakdown
CURRENT: Trace | None = None  # the trace whose task step is running right now
_tracer: Any = None  # the OpenTelemetry tracer when exporting (None: no spans, breakdown only)
_provider: Any = None

KINDS = ("cpu", "pg", "redis", "other")


class Trace:
    """One request's accounts (seconds) and, when exporting, its span and the open step spans."""

    __slots__ = (
        "cpu",
        "other",
        "pg",
        "pg_calls",
        "redis",
        "redis_calls",
        "span",
        "spans",
        "started",
        "started_at",
        "step_cpu0",
        "step_t0",
        "waiting",
    )

    def __init__(self, span: Any = None) -> None:
        self.cpu = self.pg = self.redis = self.other = 0.0
        self.pg_calls = self.redis_calls = 0
        self.waiting: str | None = None
        self.span = span
        self.spans: list[Any] = [span] if span is not None else []
        self.started = time.perf_counter()
        self.started_at = time.time()
        self.step_t0 = self.step_cpu0 = 0.0

    def snapshot(self) -> dict[str, float]:
        """The accounts so far in ms, the running step included; they add up to `handler`."""
        now, cpu_now = time.perf_counter(), time.thread_time()
        cpu = self.cpu
        if CURRENT is self:  # inside a step: its CPU so far is ours
            cpu += cpu_now - self.step_cpu0
        total = now - self.started
        other = max(0.0, total - cpu - self.pg - self.redis)
        return {
            "handler": total * 1000,
            "cpu": cpu * 1000,
            "pg": self.pg * 1000,
            "redis": self.redis * 1000,
            "other": other * 1000,
        }

    def parent(self) -> Any:
        return self.spans[-1] if self.spans else None


class _Timed:
    """Drives a coroutine step by step, charging each step and each gap (see the module doc)."""

    __slots__ = ("coro", "trace")

    def __init__(self, trace: Trace, awaitable: Awaitable[Any]) -> None:
        self.trace = trace
        self.coro: Generator[Any, Any, Any] = awaitable.__await__()  # type: ignore[assignment]

    def __await__(self) -> Generator[Any, Any, Any]:
        global CURRENT
        trace, coro = self.trace, self.coro
        value: Any = None
        error: BaseException | None = None
        suspended_at = trace.started
        waiting: str | None = None
        while True:
            t0 = time.perf_counter()
            gap = t0 - suspended_at
            if waiting == "pg":
                trace.pg += gap
            elif waiting == "redis":
                trace.redis += gap
            else:
                trace.other += gap
            previous, CURRENT = CURRENT, trace
            trace.step_t0, trace.step_cpu0 = t0, time.thread_time()
            try:
                if error is not None:
                    thrown, error = error, None
                    yielded = coro.throw(thrown)
                else:
                    yielded = coro.send(value)
            except StopIteration as done:  # the coroutine returned: so does the await
                self._close_step(t0)
                CURRENT = previous
                return done.value
            except BaseException:
                self._close_step(t0)
                CURRENT = previous
                raise
            self._close_step(t0)
            CURRENT = previous
            waiting = trace.waiting
            suspended_at = time.perf_counter()
            try:
                value = yield yielded
            except BaseException as exc:  # cancellation: handed to the coroutine
                value, error = None, exc

    def _close_step(self, t0: float) -> None:
        trace = self.trace
        cpu = time.thread_time() - trace.step_cpu0
        wall = time.perf_counter() - t0
        trace.cpu += cpu
        trace.other += max(0.0, wall - cpu)


async def timed(trace: Trace, awaitable: Awaitable[Any]) -> Any:
    return await _Timed(trace, awaitable)


POOL_CHECKOUT = "pg.pool.checkout"  # its wait is PostgreSQL's time; not one of its calls


@contextmanager
def awaiting(kind: str, name: str, statement: str | None = None) -> Iterator[None]:
    """Around an await on PostgreSQL ("pg") or Redis ("redis"): the suspended time is charged to
    `kind`, and a span is recorded when exporting. Nested waits count once (the outer one)."""
    trace = CURRENT
    if trace is None or trace.waiting is not None:
        yield
        return
    token = begin(trace, kind, name, statement)
    try:
        yield
    finally:
        end(trace, token)


def begin(trace: Trace, kind: str, name: str, statement: str | None = None) -> Any:
    """The start of a wait (for hooks that are not a `with`: SQLAlchemy's cursor events)."""
    trace.waiting = kind
    if kind == "pg":
        if name != POOL_CHECKOUT:  # a wait for a connection, not a call to PostgreSQL
            trace.pg_calls += 1
    else:
        trace.redis_calls += 1
    if _tracer is None:
        return None
    attributes = {"db.system": "postgresql" if kind == "pg" else "redis", "db.operation": name}
    if statement is not None:
        attributes["db.statement"] = statement[:2000]
    return _start_span(trace, name, attributes)


def end(trace: Trace, span: Any) -> None:
    trace.waiting = None
    if span is not None:
        span.end()


def _start_span(trace: Trace, name: str, attributes: dict[str, Any]) -> Any:
    from opentelemetry import trace as otel

    parent = trace.parent()
    context = otel.set_span_in_context(parent) if parent is not None else None
    return _tracer.start_span(name, context=context, attributes=attributes)


class _Step:
    __slots__ = ("attributes", "name", "span", "trace")

    def __init__(self, trace: Trace, name: str, attributes: dict[str, Any]) -> None:
        self.trace, self.name, self.attributes = trace, name, attributes
        self.span: Any = None

    def __enter__(self) -> None:
        self.span = _start_span(self.trace, self.name, self.attributes)
        self.trace.spans.append(self.span)

    def __exit__(self, *exc: object) -> None:
        self.trace.spans.remove(self.span)
        self.span.end()


_NO_STEP = nullcontext()


def step(name: str, **attributes: Any) -> AbstractContextManager[None]:
    """A flow's step as a span (child of the request's span or the enclosing step). Untraced, a
    shared no-op context: no allocation."""
    trace = CURRENT
    if trace is None or _tracer is None:
        return _NO_STEP
    return _Step(trace, name, attributes)


def traceparent() -> str | None:
    """The W3C `traceparent` of what runs now (to carry into events and jobs), if traced."""
    trace = CURRENT
    parent = trace.parent() if trace is not None else None
    if parent is None:
        return None
    ctx = parent.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def configure(*, export_url: str | None, service_name: str, breakdown: bool) -> None:
    """Turn tracing on for this process (once, at start): OTLP/HTTP export to `export_url` (needs
    the `otel` extra), and/or the Server-Timing breakdown of sampled requests."""
    global ENABLED, BREAKDOWN, _tracer, _provider
    BREAKDOWN = breakdown
    if export_url is not None and _tracer is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=export_url)))
        _provider = provider
        _tracer = provider.get_tracer("boxoffice")
    ENABLED = breakdown or _tracer is not None


def exporting() -> bool:
    return _tracer is not None


def start_request_span(name: str, traceparent_header: str | None, attributes: dict[str, Any]) -> Any:
    """The server span of a request, continuing the caller's W3C trace context when it sent one."""
    from opentelemetry import trace as otel
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = None
    if traceparent_header is not None:
        context = TraceContextTextMapPropagator().extract({"traceparent": traceparent_header})
    return _tracer.start_span(name, context=context, kind=otel.SpanKind.SERVER, attributes=attributes)


def flush(timeout_seconds: float = 5.0) -> None:
    if _provider is not None:
        _provider.force_flush(int(timeout_seconds * 1000))


def reset() -> None:
    """Tracing off again (tests; a process ends with what it configured)."""
    global ENABLED, BREAKDOWN, _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    ENABLED = BREAKDOWN = False
    _tracer = _provider = None

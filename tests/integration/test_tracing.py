"""Tracing (kit/trace.py, http/tracing.py): off costs nothing, OTLP/HTTP spans reach a receiver
that decodes real OTLP protobuf (the edge we don't own: a tiny HTTP server in the test), and a
sampled request's Server-Timing breakdown adds up to its handler's wall-clock."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from boxoffice.app import create_app
from boxoffice.bench.client import TRACE_PARTS, HttpPool, Timed
from boxoffice.bench.report import trace_table
from boxoffice.kit import trace
from boxoffice.runtime import open_runtime
from tests.factories import make_user
from tests.helpers.server import serve
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import gated

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class Receiver:
    """An OTLP/HTTP trace receiver: decodes each POST /v1/traces body as ExportTraceServiceRequest."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.paths.append(self.path)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        receiver.spans.extend(scope_spans.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@asynccontextmanager
async def traced(
    settings: Any, runtime: Any, **switches: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """An app with tracing configured as `switches` say, on a runtime opened after it (the
    engine's statement hooks are chosen when it is created); tracing is off again after."""
    traced_settings = settings.model_copy(update=switches)
    app = create_app(traced_settings, runtime=runtime)  # configures tracing; the runtime is replaced
    try:
        async with open_runtime(traced_settings, runtime.database_url, runtime.redis_url) as own:
            app.state.runtime = own
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield client, own
    finally:
        trace.reset()


async def hold_and_pay(client: httpx.AsyncClient, runtime: Any, traceparent: str) -> tuple[Any, Any]:
    show = await make_show(runtime, seats=4, price=1000)
    user = await make_user(runtime, balance=10_000)
    headers = {**gated(runtime, user, show["show_id"], uuid.uuid4().hex), "traceparent": traceparent}
    held = await client.post(
        "/api/reservations",
        json={"show_id": show["show_id"], "seat_ids": show["seat_ids"][:2]},
        headers=headers,
    )
    assert held.status_code == 201, held.text
    headers["Idempotency-Key"] = uuid.uuid4().hex
    paid = await client.post(
        "/api/payments",
        json={"reservation_id": held.json()["reservation_id"], "method": "BALANCE"},
        headers=headers,
    )
    assert paid.status_code in (200, 201), paid.text
    return held, paid


def test_off_imports_no_sdk_and_mounts_nothing(settings):  # type: ignore[no-untyped-def]
    """Tracing off: no TraceMiddleware, no statement hooks, neither the tracing SDK nor the exporter
    imported. (The bare `opentelemetry` API is FastAPI's own import, and redis-py imports the SDK's
    metrics module whenever the SDK is installed: neither is ours to avoid.)"""
    code = (
        "import sys\n"
        "from boxoffice.config import Settings\n"
        "from boxoffice.app import create_app\n"
        "from boxoffice.kit import trace\n"
        "from boxoffice.db.uow import create_engine\n"
        "s = Settings(environment='test', jwt_secret='x'*64, queue_token_secret='y'*64, admin_password='z')\n"
        "app = create_app(s, database_url='postgresql://u@h/d', redis_url='redis://h')\n"
        "engine = create_engine(s, 'postgresql://u@h/d')\n"
        "names = [m.cls.__name__ for m in app.user_middleware]\n"
        "sdk = sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk.trace', 'opentelemetry.exporter')))\n"
        "print(trace.ENABLED, 'TraceMiddleware' in names, sdk, sep='|')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "BOXOFFICE_DATA_DIR": str(settings.data_dir)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False|False|[]", out.stdout + out.stderr


async def test_spans_reach_an_otlp_receiver(settings, runtime, receiver):  # type: ignore[no-untyped-def]
    async with traced(settings, runtime, tracing="otlp", otel_exporter_otlp_endpoint=receiver.url) as (
        client,
        own,
    ):
        await hold_and_pay(client, own, f"00-{TRACE_ID}-{PARENT_ID}-01")
        trace.flush()
    assert receiver.paths and set(receiver.paths) == {"/v1/traces"}
    spans = receiver.spans
    servers = {s.name: s for s in spans if s.kind == s.SPAN_KIND_SERVER}
    hold = servers["POST /api/reservations"]
    pay = servers["POST /api/payments"]
    # The caller's W3C trace context is continued: same trace id, its span as the parent.
    assert hold.trace_id.hex() == TRACE_ID and hold.parent_span_id.hex() == PARENT_ID
    assert attrs(hold)["http.route"] == "/api/reservations"
    assert attrs(hold)["http.response.status_code"] == 201
    # The flow's steps are children of the request's span; statements and calls nest under them.
    steps = {s.name: s for s in spans if s.parent_span_id == hold.span_id}
    assert {"hold.admission_token", "hold.show_rules", "hold.seats"} <= set(steps), set(steps)
    under_hold = {hold.span_id} | {s.span_id for s in steps.values()}
    children = [s for s in spans if s.parent_span_id in under_hold]
    names = {s.name for s in children}
    assert any(n.startswith("pg.") for n in names), names  # statements and the pool checkout
    assert any(n.startswith("redis.") for n in names), names  # the mux's calls (admission, shield)
    statements = [attrs(s).get("db.statement", "") for s in children if s.name.startswith("pg.")]
    assert any("UPDATE" in st.upper() or "INSERT" in st.upper() for st in statements), statements
    pay_steps = {s.span_id for s in spans if s.parent_span_id == pay.span_id and s.name.startswith("pay.")}
    assert pay_steps
    pay_children = {s.name for s in spans if s.parent_span_id in pay_steps | {pay.span_id}}
    assert any(n.startswith("pg.") for n in pay_children), pay_children
    # The breakdown rides on the server span: its parts add up to the handler's wall-clock.
    a = attrs(hold)
    parts = sum(a[f"boxoffice.wall.{k}_ms"] for k in trace.KINDS)
    assert abs(parts - a["boxoffice.wall.handler_ms"]) < 0.5
    assert a["boxoffice.pg.calls"] >= 1 and a["boxoffice.redis.calls"] >= 1


def server_timing(header: str) -> dict[str, float | str]:
    out: dict[str, float | str] = {}
    for part in header.split(","):
        name, _, param = part.strip().partition(";")
        key, _, value = param.partition("=")
        out[name] = value.strip('"') if key == "desc" else float(value)
    return out


async def test_sampled_requests_answer_their_breakdown(settings, runtime):  # type: ignore[no-untyped-def]
    async with traced(settings, runtime, trace_breakdown=True) as (client, own):
        held, paid = await hold_and_pay(client, own, f"00-{TRACE_ID}-{PARENT_ID}-01")
        for response in (held, paid):
            timing = server_timing(response.headers["server-timing"])
            parts = sum(float(timing[k]) for k in trace.KINDS)
            assert abs(parts - float(timing["handler"])) < 0.05, timing
            assert float(timing["pg"]) > 0 and float(timing["cpu"]) > 0, timing
            assert float(str(timing["start"])) > 1.7e9
            assert int(str(timing["pg_calls"])) >= 1 and int(str(timing["redis_calls"])) >= 1, timing
        # Not sampled (flags 00), or no traceparent at all: no breakdown, no trampoline.
        unsampled, _ = await hold_and_pay(client, own, f"00-{TRACE_ID}-{PARENT_ID}-00")
        assert "server-timing" not in unsampled.headers


async def test_bench_breakdown_adds_up_over_a_real_server(settings, runtime):  # type: ignore[no-untyped-def]
    """The bench's side (bench/client.py Timed + TraceBreakdowns) over uvicorn on a socket: every
    traced hold and payment is split into before / cpu / pg / redis / other / after, and the parts
    add up to what the client measured. Plumbing only: no timing is asserted."""
    traced_settings = settings.model_copy(update={"trace_breakdown": True})
    app = create_app(traced_settings, runtime=runtime)
    try:
        async with (
            open_runtime(traced_settings, runtime.database_url, runtime.redis_url) as own,
            serve(app) as url,
        ):
            app.state.runtime = own
            pool = HttpPool(url, size=4)
            timed = Timed(pool, time.perf_counter(), trace_sample=1.0, trace_steps=("hold", "pay"))
            for _ in range(3):
                show = await make_show(own, seats=4, price=1000)
                user = await make_user(own, balance=10_000)
                headers = gated(own, user, show["show_id"], uuid.uuid4().hex)
                body = {"show_id": show["show_id"], "seat_ids": show["seat_ids"][:1]}
                held = await timed.call("hold", "POST", "/api/reservations", json=body, headers=headers)
                assert held is not None and held.status == 201
                refused = await timed.call(
                    "hold",
                    "POST",
                    "/api/reservations",
                    json=body,
                    headers={**headers, "Idempotency-Key": "x" * 20},
                )
                assert refused is not None and refused.status == 409
                pay = {"reservation_id": held.json()["reservation_id"], "method": "BALANCE"}
                paid = await timed.call(
                    "pay",
                    "POST",
                    "/api/payments",
                    json=pay,
                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                )
                assert paid is not None and paid.status == 201
            await pool.close()
    finally:
        trace.reset()
    summary = timed.traces.summary()
    assert set(summary) == {"hold_won", "hold_refused", "pay"}
    for step, entry in summary.items():
        assert entry["samples"] == 3, step
        means = entry["mean_ms"]
        assert set(TRACE_PARTS) <= set(means)
        assert all(means[k] >= 0 for k in TRACE_PARTS), means
        assert abs(sum(means[k] for k in TRACE_PARTS) - means["total"]) < 0.05, means
        assert means["pg"] > 0 or step == "hold_refused", means  # a refused hold may never reach PostgreSQL
        # The handler's awaited statements and Redis commands, counted by the server (Server-Timing).
        calls = entry["mean_calls"]
        assert calls["redis"] >= 1, (step, calls)  # the deny-list at least
        assert calls["pg"] >= 1 or step == "hold_refused", (step, calls)
        # The slowest samples, slowest first, with when they were sent (seconds into the run).
        slowest = entry["slowest"]
        assert len(slowest) == 3 and [s["total"] for s in slowest] == sorted(
            (s["total"] for s in slowest), reverse=True
        )
        assert all(0 < s["at"] < 120 for s in slowest), slowest
    # The report renders the table (the bench prints it with the rest), the call counts last.
    table = trace_table(summary)
    assert table.row_count == 3 and len(table.columns) == 2 + len(TRACE_PARTS) + 3

"""Health, readiness, problem+json errors, request ids, metrics."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
from fastapi import APIRouter

from boxoffice.app import create_app
from boxoffice.config import Settings
from boxoffice.kit.supervision import STATE_FILE
from boxoffice.runtime import Runtime, open_runtime


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}


async def test_readyz_is_503_when_redis_does_not_answer(settings: Settings, runtime: Runtime) -> None:
    async with open_runtime(settings, runtime.database_url, "redis://127.0.0.1:1/0") as broken:
        app = create_app(settings, runtime=broken)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            resp = await c.get("/readyz")
    assert resp.status_code == 503
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["code"] == "NOT_READY"
    assert body["checks"]["postgres"] == "ok"
    assert body["checks"]["redis"].startswith("error")


async def test_unknown_route_is_problem_json_404(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/does-not-exist")
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["code"] == "NOT_FOUND" and body["status"] == 404 and body["instance"] == "/api/does-not-exist"


async def test_wrong_method_is_problem_json_405(client: httpx.AsyncClient) -> None:
    resp = await client.post("/healthz")
    assert resp.status_code == 405
    assert resp.json()["code"] == "METHOD_NOT_ALLOWED"


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "req-123"})
    assert given.headers["x-request-id"] == "req-123"
    generated = await client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    error = await client.get("/nope")
    assert error.json()["request_id"] == error.headers["x-request-id"]


async def test_validation_and_unhandled_errors_render_problem_json(
    settings: Settings, runtime: Runtime
) -> None:
    app = create_app(settings, runtime=runtime)
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    @router.get("/typed/{n}")
    async def typed(n: int) -> dict[str, int]:
        return {"n": n}

    app.include_router(router)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        bad = await c.get("/typed/abc")
        assert bad.status_code == 422
        assert bad.json()["code"] == "VALIDATION_ERROR"
        assert bad.json()["errors"][0]["loc"] == ["path", "n"]
        crash = await c.get("/boom")
        assert crash.status_code == 500
        assert crash.headers["content-type"] == "application/problem+json"
        assert crash.json()["code"] == "INTERNAL_ERROR"
        assert "kaboom" not in crash.text  # no internals leak to the client


async def test_metrics_count_requests_by_route_template_and_status(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    await client.get("/nope")
    text = (await client.get("/metrics")).text
    assert 'boxoffice_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="unmatched",status="404"' in text
    assert "boxoffice_http_request_duration_seconds_bucket" in text


async def test_openapi_document_is_served(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["info"]["title"] == "Boxoffice"
    assert "/readyz" in doc["paths"]


async def test_every_request_writes_one_json_access_line_with_its_request_id() -> None:
    import io
    import json
    import logging

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from boxoffice.observability import AccessLog, Metrics, RequestContextMiddleware

    async def hello(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("hi")

    logging.getLogger("boxoffice.http").setLevel(logging.INFO)
    try:
        stream = io.BytesIO()
        inner = Starlette(routes=[Route("/hello/{name}", hello), Route("/healthz", hello)])
        access = AccessLog(enabled=True, stream=stream, console=False)
        app = RequestContextMiddleware(inner, Metrics(), access)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            resp = await c.get("/hello/world", headers={"X-Request-ID": "rid-1", "traceparent": trace})
            await c.get("/healthz")  # probes are not logged
    finally:
        logging.getLogger("boxoffice.http").setLevel(logging.NOTSET)
    assert resp.text == "hi"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    first = lines[0]
    assert first["http.request.id"] == "rid-1" and first["http.route"] == "/hello/{name}"
    assert first["trace.id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert first["url.path"] == "/hello/world" and first["http.response.status_code"] == 200
    assert first["log.level"] == "info" and first["@timestamp"].endswith("Z")
    assert first["log.logger"] == "boxoffice.http" and first["ecs.version"].startswith("8.")
    assert isinstance(first["event.duration"], int) and first["event.duration"] > 0  # nanoseconds
    assert len(lines) == 1


def test_access_log_can_be_turned_off() -> None:
    import io

    from boxoffice.observability import AccessLog

    stream = io.BytesIO()
    AccessLog(enabled=False, stream=stream).write("GET", "/x", "/x", 200, 0.1, "r")
    assert stream.getvalue() == b""


async def test_readyz_and_metrics_tell_what_up_reports_of_its_children(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    """Under `up` the API processes read the children's state from the data dir (up writes it)."""
    state = tmp_path / STATE_FILE

    def write(pid: int) -> None:
        state.write_text(
            json.dumps(
                {
                    "pid": pid,
                    "children": {"worker": "restarting: killed by SIGKILL", "postgres": "ok"},
                    "restarts": {"worker": 1, "api-1": 2},
                    "pids": {"worker": 1234},
                }
            )
        )

    async with open_runtime(
        settings.model_copy(update={"data_dir": tmp_path}), runtime.database_url, runtime.redis_url
    ) as under_up:
        app = create_app(settings, runtime=under_up)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            write(os.getpid())  # a live up
            ready = await c.get("/readyz")
            metrics = (await c.get("/metrics")).text
            write(2**22 + 1)  # left behind by an up that was killed: ignored
            after = await c.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert ready.json()["checks"] == {
        "postgres": "ok",
        "redis": "ok",
        "worker": "restarting: killed by SIGKILL",
    }
    assert 'boxoffice_child_restarts_total{child="worker"} 1.0' in metrics
    assert 'boxoffice_child_restarts_total{child="api-1"} 2.0' in metrics
    assert after.status_code == 200 and after.json()["checks"] == {"postgres": "ok", "redis": "ok"}

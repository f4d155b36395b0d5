"""A backend outage is 503 + Retry-After with a stable code on every route, never a 500; each
failure is one log line (error.type, error.message), with a stack trace at most once per error
type per minute, and no row values in any of it."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from boxoffice.app import create_app
from boxoffice.config import Settings
from boxoffice.kit.failures import backend_unavailable, outage_backend
from boxoffice.observability import configure_logging
from boxoffice.ops.backends.datadir import Backends
from boxoffice.runtime import Runtime, open_runtime
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import queue_token

DEAD_POSTGRES = "postgresql://postgres:secret@127.0.0.1:1/boxoffice"  # port 1: refused
DEAD_REDIS = "unix:///nonexistent-boxoffice/redis.sock"


@pytest.fixture
def json_logs(settings: Settings) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging(settings.model_copy(update={"log_json": True}))
    buffer = io.StringIO()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], root.level = saved[0], saved[1]


async def _client_without(
    settings: Settings, backends: Backends, which: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    db = DEAD_POSTGRES if which == "postgres" else backends.database_url
    rd = DEAD_REDIS if which == "redis" else backends.redis_url
    async with open_runtime(settings, db, rd) as rt:
        app = create_app(settings, runtime=rt)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client, rt


def _requests(rt: Runtime) -> list[tuple[str, str, dict[str, Any], dict[str, Any] | None]]:
    from boxoffice.auth.tokens import issue_access_token

    token, _ = issue_access_token(rt.settings, user_id=1, role="ADMIN", now=rt.clock.now())
    auth = {"Authorization": f"Bearer {token}"}
    gated = {**auth, "X-Queue-Token": queue_token(rt, 1, 1)}
    keyed = {"Idempotency-Key": "k-1"}
    return [
        (
            "POST",
            "/api/auth/signup",
            {},
            {"email": "o@example.com", "password": "long-enough-1", "name": "O"},
        ),
        ("POST", "/api/auth/login", {}, {"email": "o@example.com", "password": "long-enough-1"}),
        ("POST", "/api/auth/refresh", {}, {"refresh_token": "AAAAAAAAAAAAAAAAAAAAAA.secret"}),
        ("GET", "/api/users/me", auth, None),
        ("PATCH", "/api/users/me", auth, {"name": "New"}),
        ("POST", "/api/users/me/balance", {**auth, **keyed}, {"amount": 100}),
        ("GET", "/api/concerts", {}, None),
        ("GET", "/api/concerts/1", {}, None),
        ("GET", "/api/concerts/1/shows", {}, None),
        ("GET", "/api/shows/1", {}, None),
        ("GET", "/api/shows/1/seats", gated, None),
        ("POST", "/api/queue", auth, {"concert_id": 1, "show_id": 1}),
        ("GET", "/api/queue/status?concert_id=1&show_id=1", auth, None),
        ("DELETE", "/api/queue?concert_id=1&show_id=1", auth, None),
        ("POST", "/api/reservations/token", auth, {"concert_id": 1, "show_id": 1}),
        ("POST", "/api/reservations", {**gated, **keyed}, {"show_id": 1, "seat_ids": [1, 2]}),
        ("GET", "/api/reservations", auth, None),
        ("GET", "/api/reservations/1", auth, None),
        ("DELETE", "/api/reservations/1", auth, None),
        ("POST", "/api/payments", {**auth, **keyed}, {"reservation_id": 1, "method": "BALANCE"}),
        ("GET", "/api/payments/1", auth, None),
        (
            "POST",
            "/api/admin/venues",
            auth,
            {"name": "V", "sections": [{"name": "A", "rows": 1, "seats_per_row": 1}]},
        ),
        ("GET", "/api/admin/venues/1", auth, None),
        ("POST", "/api/admin/shows/1/queue/pause", auth, None),
    ]


@pytest.mark.parametrize("down", ["postgres", "redis"])
async def test_every_route_is_503_with_retry_after_while_a_backend_is_down(
    down: str, settings: Settings, backends: Backends, json_logs: io.StringIO, runtime: Runtime
) -> None:
    if down == "redis":  # a show on sale (id 1) and its seats, so seat and hold routes get that far
        show = await make_show(runtime, seats=4)
        assert show["show_id"] == 1 and show["concert_id"] == 1
    outcomes = []
    async for client, rt in _client_without(settings, backends, down):
        requests = _requests(rt)
        for _ in range(3):  # the same failures again: one line each, no new stack traces
            for method, url, headers, body in requests:
                resp = await client.request(method, url, headers=headers, json=body)
                outcomes.append((method, url, resp))
        # the full OpenAPI sweep, with whatever bodies: nothing answers 500
        doc = (await client.get("/openapi.json")).json()
        for path, operations in doc["paths"].items():
            for method in operations:
                url = re.sub(r"\{[^}]+\}", "1", path)
                headers = {**requests[3][2], "X-Queue-Token": "x", "Idempotency-Key": "k"}
                if (method, path) == ("post", "/api/auth/logout"):
                    continue  # would revoke the token the sweep uses
                resp = await client.request(
                    method.upper(), url, headers=headers, params={"concert_id": 1, "show_id": 1}
                )
                assert resp.status_code != 500, (method, url, resp.text)
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"][down] != "ok"
        assert ready.headers["retry-after"]
    unavailable = 0
    for method, url, resp in outcomes:
        assert resp.status_code < 500 or resp.status_code == 503, (method, url, resp.status_code, resp.text)
        if resp.status_code == 503:
            unavailable += 1
            body = resp.json()
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert body["code"] in ("BACKEND_UNAVAILABLE", "AUTH_UNAVAILABLE"), body
            assert int(resp.headers["retry-after"]) >= 1
    # almost every route needs the backend that is down (the rest refuse earlier, e.g. 404)
    seen = sorted({(m, u, r.status_code) for m, u, r in outcomes})
    if down == "postgres":  # almost every route needs it (the rest refuse earlier: a bad token, say)
        assert unavailable >= len(outcomes) * 0.7, seen
    else:  # the waiting room and the login store live in Redis; holds and payments fall back on PostgreSQL
        needs_redis = {"/api/queue", "/api/queue/status", "/api/reservations/token", "/api/auth/login"}
        assert {u.split("?")[0] for m, u, r in outcomes if r.status_code == 503} >= needs_redis, seen

    records = [json.loads(line) for line in json_logs.getvalue().splitlines() if line.startswith("{")]
    failures = [r for r in records if r.get("message") == "request_failed"]
    assert failures, "every failure is logged"
    for record in failures:
        assert record["error.type"] and "error.message" in record
        assert record.get("backend") in (down, None)
    traced: dict[str, int] = {}
    for record in failures:
        if "error.stack_trace" in record:
            traced[record["error.type"]] = traced.get(record["error.type"], 0) + 1
    assert traced and all(n == 1 for n in traced.values()), traced
    assert all(len(line) < 20_000 for line in json_logs.getvalue().splitlines())
    log_text = json_logs.getvalue()
    assert "long-enough-1" not in log_text and "secret" not in log_text.replace('"error.stack_trace"', "")


def test_outage_classification_and_grpc_mapping() -> None:
    import asyncpg
    import redis.exceptions

    assert outage_backend(redis.exceptions.ConnectionError("gone")) == "redis"
    assert outage_backend(redis.exceptions.ResponseError("LOADING Redis is loading")) == "redis"
    assert outage_backend(redis.exceptions.ResponseError("WRONGTYPE")) is None
    assert outage_backend(asyncpg.exceptions.AdminShutdownError("terminating")) == "postgres"
    assert outage_backend(asyncpg.exceptions.UniqueViolationError("dup")) is None
    try:
        try:
            raise redis.exceptions.TimeoutError("slow")
        except Exception as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert outage_backend(outer) == "redis"
    assert outage_backend(ExceptionGroup("g", [ValueError(), redis.exceptions.ConnectionError()])) == "redis"
    assert outage_backend(ValueError("no")) is None
    err = backend_unavailable("redis")
    assert (err.status, err.code, err.grpc_status) == (503, "BACKEND_UNAVAILABLE", "UNAVAILABLE")
    assert err.headers["Retry-After"] == "2"

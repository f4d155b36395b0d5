"""The hot routes (boxoffice.http.hot) and their FastAPI twins give identical answers to bad requests.

Both are generated from one `HotRoute` declaration; this sends the same requests to an app that
serves the lean routes and to one that leaves them to the twins, and compares the answers.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from boxoffice.app import create_app
from boxoffice.booking.endpoints import hot_routes as booking_hot
from boxoffice.http.hot import HotTable
from boxoffice.kit.ids import ID_MAX
from boxoffice.payments.endpoints import hot_routes as payments_hot
from boxoffice.waiting_room.endpoints import hot_routes as queue_hot
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import queue_token

HOT = {(h.method, h.path) for h in [*booking_hot, *queue_hot, *payments_hot]}


def _answer(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    for volatile in ("request_id", "instance"):
        body.pop(volatile, None)
    return {
        "status": resp.status_code,
        "content_type": resp.headers.get("content-type"),
        "www_authenticate": resp.headers.get("www-authenticate"),
        "body": body,
    }


def _kinds(app: Any) -> dict[tuple[str, str], str]:
    kinds = {}
    for route in app.router.routes:
        for method in getattr(route, "methods", None) or ():
            if (method, route.path) in HOT and (method, route.path) not in kinds:
                kinds[(method, route.path)] = "lean" if not isinstance(route, APIRoute) else "twin"
    return kinds


@pytest.fixture
async def pair(settings, runtime):  # type: ignore[no-untyped-def]
    served = create_app(settings, runtime=runtime)
    documented = create_app(settings, runtime=runtime, serve_hot_routes=False)
    # The first match serves: lean routes in one app, only the FastAPI twins in the other.
    assert set(_kinds(served).values()) == {"lean"} and len(_kinds(served)) == len(HOT)
    assert set(_kinds(documented).values()) == {"twin"} and len(_kinds(documented)) == len(HOT)
    # In front of every route, the table that finds a hot route without a path id by its path.
    tables = [a.router.routes[0] for a in (served, documented)]
    assert all(isinstance(t, HotTable) for t in tables)
    assert tables[0].table[("/api/reservations", "POST")].path == "/api/reservations"
    assert not tables[1].table
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://testserver")
        for a in (served, documented)
    ]
    try:
        yield clients
    finally:
        for c in clients:
            await c.aclose()


async def test_the_same_bad_requests_get_the_same_answers(pair, runtime):  # type: ignore[no-untyped-def]
    lean_client, twin_client = pair
    show = await make_show(runtime, seats=4)
    user = await make_user(runtime)
    sid = show["show_id"]
    auth = user["headers"]
    gated = {**auth, "X-Queue-Token": queue_token(runtime, user["id"], sid)}
    hold = {"show_id": sid, "seat_ids": [show["seat_ids"][0]]}
    join = {"concert_id": show["concert_id"], "show_id": sid}
    pay = {"reservation_id": ID_MAX, "method": "BALANCE"}
    json_ct = {"Content-Type": "application/json"}
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        # (method, url, request kwargs, expected status, expected code)
        (
            "POST",
            "/api/reservations",
            {"content": b'{"show_id": 1,', "headers": json_ct},
            401,
            "AUTH_REQUIRED",
        ),
        (
            "POST",
            "/api/reservations",
            {"content": b'{"show_id": 1,', "headers": {**gated, **json_ct}},
            422,
            "VALIDATION_ERROR",
        ),
        (
            "POST",
            "/api/reservations",
            {"content": b"show_id=1", "headers": {**gated, "Content-Type": "text/plain"}},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "POST",
            "/api/reservations",
            {"json": hold, "headers": {**gated, "Idempotency-Key": "k" * 256}},
            422,
            "VALIDATION_ERROR",
        ),
        (
            "POST",
            "/api/reservations",
            {"json": hold, "headers": {**auth, "X-Queue-Token": "t" * 4097}},
            422,
            "VALIDATION_ERROR",
        ),
        (
            "POST",
            "/api/reservations",
            {"json": {**hold, "show_id": ID_MAX + 1}, "headers": gated},
            422,
            "VALIDATION_ERROR",
        ),
        (
            "POST",
            "/api/reservations",
            {"json": {**hold, "seat_ids": [0]}, "headers": gated},
            422,
            "VALIDATION_ERROR",
        ),
        ("POST", "/api/reservations", {"json": hold}, 401, "AUTH_REQUIRED"),
        ("POST", "/api/reservations", {"json": hold, "headers": auth}, 401, "QUEUE_TOKEN_REQUIRED"),
        (
            "POST",
            "/api/reservations",
            {"json": hold, "headers": {"Authorization": "Bearer " + "x" * 9000}},
            401,
            "INVALID_TOKEN",
        ),
        ("POST", "/api/queue", {"content": b"{", "headers": json_ct}, 401, "AUTH_REQUIRED"),
        ("POST", "/api/queue", {"content": b"{", "headers": {**auth, **json_ct}}, 422, "VALIDATION_ERROR"),
        (
            "POST",
            "/api/queue",
            {"content": b"{}", "headers": {**auth, "Content-Type": "application/xml"}},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "POST",
            "/api/queue",
            {"json": {**join, "concert_id": ID_MAX + 1}, "headers": auth},
            422,
            "VALIDATION_ERROR",
        ),
        ("POST", "/api/queue", {"json": join}, 401, "AUTH_REQUIRED"),
        (
            "GET",
            f"/api/queue/status?concert_id={ID_MAX + 1}&show_id={sid}",
            {"headers": auth},
            422,
            "VALIDATION_ERROR",
        ),
        ("GET", f"/api/queue/status?concert_id=x&show_id={sid}", {"headers": auth}, 422, "VALIDATION_ERROR"),
        ("GET", "/api/queue/status?show_id=1", {"headers": auth}, 422, "VALIDATION_ERROR"),
        ("GET", f"/api/queue/status?concert_id=1&show_id={sid}", {}, 401, "AUTH_REQUIRED"),
        ("POST", "/api/payments", {"json": pay}, 401, "AUTH_REQUIRED"),
        ("POST", "/api/payments", {"content": b"{", "headers": {**auth, **json_ct}}, 422, "VALIDATION_ERROR"),
        (
            "POST",
            "/api/payments",
            {"content": b"{}", "headers": {**auth, "Content-Type": "text/plain"}},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "POST",
            "/api/payments",
            {"json": {**pay, "method": "CASH"}, "headers": {**auth, "Idempotency-Key": "k"}},
            422,
            "VALIDATION_ERROR",
        ),
        (
            "POST",
            "/api/payments",
            {"json": {**pay, "reservation_id": ID_MAX + 1}, "headers": auth},
            422,
            "VALIDATION_ERROR",
        ),
        (
            "POST",
            "/api/payments",
            {"json": pay, "headers": {**auth, "Idempotency-Key": "k" * 256}},
            422,
            "VALIDATION_ERROR",
        ),
        ("POST", "/api/payments", {"json": pay, "headers": auth}, 404, "RESERVATION_NOT_FOUND"),
        (
            "POST",
            "/api/payments",
            {"json": pay, "headers": {**auth, "Idempotency-Key": "k1"}},
            404,
            "RESERVATION_NOT_FOUND",
        ),
    ]
    for method, url, kwargs, status, code in cases:
        lean = _answer(await lean_client.request(method, url, **kwargs))
        twin = _answer(await twin_client.request(method, url, **kwargs))
        assert lean == twin, (method, url, lean, twin)
        assert (lean["status"], lean["body"]["code"]) == (status, code), (method, url, lean)
        assert lean["content_type"] == "application/problem+json"


async def test_the_twins_document_body_headers_and_query(pair):  # type: ignore[no-untyped-def]
    lean_client, _ = pair
    paths = (await lean_client.get("/openapi.json")).json()["paths"]
    hold = paths["/api/reservations"]["post"]
    # seat_ids or quantity (best available): only show_id is required by the schema itself
    assert hold["requestBody"]["content"]["application/json"]["schema"]["required"] == ["show_id"]
    assert {p["name"] for p in hold["parameters"]} == {"X-Queue-Token", "Idempotency-Key"}
    assert "201" in hold["responses"] and hold.get("security")
    assert "SEATS_TAKEN" in hold["responses"]["409"]["description"]  # generated from the error classes
    status = paths["/api/queue/status"]["get"]
    assert {p["name"]: p["schema"]["maximum"] for p in status["parameters"] if p["in"] == "query"} == {
        "concert_id": ID_MAX,
        "show_id": ID_MAX,
    }
    assert [p["name"] for p in status["parameters"] if p["in"] == "header"] == ["X-Queue-Ticket"]
    assert "requestBody" in paths["/api/queue"]["post"]
    payment = paths["/api/payments"]["post"]
    assert [p["name"] for p in payment["parameters"]] == ["Idempotency-Key"]
    assert {"201", "202", "402", "409"} <= set(payment["responses"]) and payment.get("security")
    assert "INSUFFICIENT_BALANCE" in payment["responses"]["402"]["description"]

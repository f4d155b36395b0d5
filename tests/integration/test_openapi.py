"""The OpenAPI tells the truth (issue 16): the errors each operation answers are documented as
problem+json with their stable codes (422 included), required headers are required, a 405 names
every method of its path, and the types are strict (a string is not an integer, a number is not a
date-time). `make contract` (tools/contract.py) checks the same against a started server with
schemathesis; this pins the key truths in-process, fast."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from boxoffice.http.problems import PROBLEM_JSON, documented_codes
from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import queue_token


@pytest.fixture
async def doc(client: httpx.AsyncClient) -> dict[str, Any]:
    return (await client.get("/openapi.json")).json()


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def _header(op: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [
        p for p in op.get("parameters", []) if p["in"] == "header" and p["name"].lower() == name.lower()
    ]
    return found


def _conforms(doc: dict[str, Any], method: str, path: str, resp: httpx.Response) -> str:
    """The answer is documented for this operation: its status, problem+json and its code."""
    answers = doc["paths"][path][method.lower()]["responses"]
    assert str(resp.status_code) in answers, (method, path, resp.status_code, sorted(answers))
    assert resp.headers["content-type"] == PROBLEM_JSON
    code = resp.json()["code"]
    assert code in documented_codes(answers[str(resp.status_code)]), (method, path, code)
    return str(code)


async def test_every_error_answer_is_a_documented_problem(doc: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in str(doc)  # FastAPI's {detail} shape: never served
    assert doc["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "code",
        "detail",
    ]
    for method, path, op in _operations(doc):
        errors = {status: answer for status, answer in op["responses"].items() if int(status) >= 400}
        if path != "/healthz":
            assert any(400 <= int(s) < 500 for s in errors) or path == "/readyz", (method, path)
        for status, answer in errors.items():
            assert list(answer["content"]) == [PROBLEM_JSON], (method, path, status)
            assert documented_codes(answer), (method, path, status)  # narrowed to its stable codes
        if op.get("parameters") or "requestBody" in op:
            assert "VALIDATION_ERROR" in documented_codes(errors["422"]), (method, path)
        if path.startswith("/api/"):
            assert "BACKEND_UNAVAILABLE" in documented_codes(errors["503"]), (method, path)
            assert "Retry-After" in errors["503"]["headers"]
        if op.get("security"):
            assert {"AUTH_REQUIRED", "INVALID_TOKEN"} <= set(documented_codes(errors["401"])), (method, path)
        if path.startswith("/api/admin"):
            assert documented_codes(errors["403"]) == ["FORBIDDEN"], (method, path)
        assert "500" not in op["responses"]


async def test_required_headers_are_required(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    for path in ("/api/payments", "/api/users/me/balance"):
        op = paths[path]["post"]
        assert _header(op, "Idempotency-Key")["required"] is True, path
        assert "IDEMPOTENCY_KEY_REQUIRED" in documented_codes(op["responses"]["400"])
    hold = paths["/api/reservations"]["post"]
    assert _header(hold, "X-Queue-Token")["required"] is True
    assert _header(hold, "Idempotency-Key")["required"] is False  # a hold's key is optional (the flow's rule)
    for path in ("/api/shows/{show_id}/seats", "/api/shows/{show_id}/seats/stream"):
        op = paths[path]["get"]
        assert _header(op, "X-Queue-Token")["required"] is True, path
        assert "QUEUE_TOKEN_REQUIRED" in documented_codes(op["responses"]["401"])


async def test_strings_are_not_integers_and_numbers_are_not_timestamps(
    client: httpx.AsyncClient, runtime: Runtime, doc: dict[str, Any]
) -> None:
    show = await make_show(runtime, seats=4)
    fan = await make_user(runtime)
    admin = await make_user(runtime, role="ADMIN")
    sid, cid = show["show_id"], show["concert_id"]
    gated = {**fan["headers"], "X-Queue-Token": queue_token(runtime, fan["id"], sid)}
    pay = {**fan["headers"], "Idempotency-Key": "contract-1"}
    starts = "2031-01-01T20:00:00+00:00"
    refused: list[tuple[str, str, str, dict[str, Any]]] = [
        # (method, OpenAPI path, url, request kwargs). Bodies: strict types, on a lean route and a
        # FastAPI one (tests/security/test_input_limits.py has every body); the refusal is documented.
        (
            "POST",
            "/api/reservations",
            "/api/reservations",
            {"json": {"show_id": str(sid), "seat_ids": [1]}, "headers": gated},
        ),
        (
            "POST",
            "/api/payments",
            "/api/payments",
            {"json": {"reservation_id": "1", "method": "BALANCE"}, "headers": pay},
        ),
        (
            "POST",
            "/api/payments",
            "/api/payments",
            {"json": {"reservation_id": 1.0, "method": "BALANCE"}, "headers": pay},
        ),
    ]
    for starts_at in (1_900_000_000, "1900000000", "1900000000.5"):  # a number, or one in a string
        body = {"starts_at": starts_at, "sale_opens_at": starts, "prices": {}}
        url = f"/api/admin/concerts/{cid}/shows"
        refused.append(
            (
                "POST",
                "/api/admin/concerts/{concert_id}/shows",
                url,
                {"json": body, "headers": admin["headers"]},
            )
        )
    # query and path: decimal digits only (lax parsing took "+1", " 1", "1_0", "1.0")
    for bad in ("+1", " 1", "1_0", "1.0", "\u0661"):  # the last: ARABIC-INDIC DIGIT ONE
        refused += [
            (
                "GET",
                "/api/queue/status",
                f"/api/queue/status?concert_id={bad}&show_id={sid}",
                {"headers": fan["headers"]},
            ),
            ("GET", "/api/reservations", f"/api/reservations?limit={bad}", {"headers": fan["headers"]}),
            ("GET", "/api/concerts/{concert_id}", f"/api/concerts/{bad}", {}),
        ]
    refused.append(("GET", "/api/concerts", "/api/concerts?starts_from=1900000000", {}))
    for method, path, url, kwargs in refused:
        resp = await client.request(method, url, **kwargs)
        assert resp.status_code == 422, (method, url, resp.status_code, resp.text)
        assert _conforms(doc, method, path, resp) == "VALIDATION_ERROR"
    assert (await client.get("/api/concerts", params={"starts_from": starts})).status_code == 200


async def test_a_405_names_every_method_of_its_path(client: httpx.AsyncClient) -> None:
    cases = {
        ("PUT", "/api/queue"): "DELETE, POST",  # a lean POST and a FastAPI DELETE
        ("PUT", "/api/reservations"): "GET, POST",
        ("PATCH", "/api/reservations/7"): "DELETE, GET",  # booking's GET, payments' DELETE
        ("OPTIONS", "/api/reservations/token"): "POST",  # not the {reservation_id} routes'
        ("GET", "/api/reservations/token"): "POST",
        ("PUT", "/api/users/me"): "DELETE, GET, PATCH",
    }
    for (method, url), allow in cases.items():
        resp = await client.request(method, url)
        assert (resp.status_code, resp.headers.get("allow")) == (405, allow), (method, url)
        assert resp.json()["code"] == "METHOD_NOT_ALLOWED"


async def test_errors_served_are_the_documented_ones(
    client: httpx.AsyncClient, runtime: Runtime, doc: dict[str, Any]
) -> None:
    """A sample of answers that were undocumented before (schemathesis's findings)."""
    fan = await make_user(runtime)
    admin = (await make_user(runtime, role="ADMIN"))["headers"]
    show = await make_show(runtime, seats=2)
    auth = fan["headers"]
    cases: list[tuple[str, str, str, dict[str, Any], str]] = [
        ("GET", "/api/concerts/{concert_id}", "/api/concerts/999999", {}, "CONCERT_NOT_FOUND"),
        ("GET", "/api/shows/{show_id}", "/api/shows/999999", {}, "SHOW_NOT_FOUND"),
        ("GET", "/api/auth/verify", "/api/auth/verify?token=nope", {}, "INVALID_VERIFICATION_TOKEN"),
        ("GET", "/api/payments/{payment_id}", "/api/payments/999999", {"headers": auth}, "PAYMENT_NOT_FOUND"),
        (
            "GET",
            "/api/reservations/{reservation_id}",
            "/api/reservations/abc",
            {"headers": auth},
            "NOT_FOUND",
        ),
        (
            "DELETE",
            "/api/queue",
            "/api/queue?concert_id=999999&show_id=999999",
            {"headers": auth},
            "SHOW_NOT_FOUND",
        ),
        (
            "GET",
            "/api/shows/{show_id}/seats",
            f"/api/shows/{show['show_id']}/seats",
            {"headers": auth},
            "QUEUE_TOKEN_REQUIRED",
        ),
        (
            "POST",
            "/api/users/me/balance",
            "/api/users/me/balance",
            {"json": {"amount": 100}, "headers": auth},
            "IDEMPOTENCY_KEY_REQUIRED",
        ),
        # U+0000 in the fan search reached PostgreSQL (a 500)
        ("GET", "/api/admin/fans", "/api/admin/fans?email=a%40b%00", {"headers": admin}, "VALIDATION_ERROR"),
        # a body that is not UTF-8: 422 like any body that is not JSON (FastAPI answered 400)
        (
            "POST",
            "/api/auth/login",
            "/api/auth/login",
            {"content": b"\xff\xfe{", "headers": {"Content-Type": "application/json"}},
            "VALIDATION_ERROR",
        ),
        (
            "PATCH",
            "/api/users/me",
            "/api/users/me",
            {"content": b"\x80", "headers": {**auth, "Content-Type": "application/json"}},
            "VALIDATION_ERROR",
        ),
    ]
    for method, path, url, kwargs, code in cases:
        resp = await client.request(method, url, **kwargs)
        assert _conforms(doc, method, path, resp) == code, (method, url, resp.text)
    # the same search on the pages: a page's refusal, not a 500
    assert (await client.get("/?q=a%00b")).status_code == 422
    metrics = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]  # the Prometheus text format, not JSON

"""Hostile input: control characters, wrong types, oversized bodies and headers, slow and idle
clients. Each is a clean 4xx (or a closed connection) that changes nothing, never a 500."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from boxoffice.config import Settings
from boxoffice.http.guard import RequestGuard
from boxoffice.http.server import server_config
from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import gated

CONTROL = ["\x00", "\x07", "\x1b[31m", "\x7f", "\x85", "\ud800"]


def _problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["code"] == code
    return body


def _raw_json(payload: str) -> dict[str, Any]:
    # httpx would refuse to encode a lone surrogate; a hostile client simply sends the escape.
    return {"content": payload.encode(), "headers": {"Content-Type": "application/json"}}


async def test_control_characters_in_text_fields_are_422(client: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = await make_user(runtime, role="ADMIN")
    fan = await make_user(runtime)
    venue = await client.post(
        "/api/admin/venues",
        json={"name": "Hall", "sections": [{"name": "A", "rows": 1, "seats_per_row": 2}]},
        headers=admin["headers"],
    )
    assert venue.status_code == 201, venue.text
    for bad in CONTROL:
        esc = bad.encode("unicode_escape").decode() if bad != "\ud800" else "\\ud800"
        esc = esc.replace("\\x", "\\u00")
        attempts = [
            ("POST", "/api/auth/login", {}, f'{{"email": "a{esc}@b.c", "password": "whatever-1"}}'),
            (
                "POST",
                "/api/auth/signup",
                {},
                f'{{"email": "n{uuid.uuid4().hex[:6]}@b.c", "password": "long-enough-1", "name": "N{esc}"}}',
            ),
            ("PATCH", "/api/users/me", fan["headers"], f'{{"address": "Street {esc} 1"}}'),
            (
                "POST",
                "/api/admin/concerts",
                admin["headers"],
                f'{{"name": "C{esc}", "artist": "A", "venue_id": {venue.json()["id"]}}}',
            ),
            (
                "POST",
                "/api/admin/venues",
                admin["headers"],
                f'{{"name": "V", "sections": [{{"name": "S{esc}", "rows": 1, "seats_per_row": 1}}]}}',
            ),
        ]
        for method, url, headers, payload in attempts:
            kw = _raw_json(payload)
            resp = await client.request(
                method, url, content=kw["content"], headers={**headers, **kw["headers"]}
            )
            assert resp.status_code == 422, (method, url, repr(bad), resp.status_code, resp.text)
            _problem(resp, 422, "VALIDATION_ERROR")
        for param in ("q", "artist"):
            resp = await client.get("/api/concerts", params={param: f"x{bad}y" if bad != "\ud800" else "x"})
            if bad != "\ud800":
                _problem(resp, 422, "VALIDATION_ERROR")
    # %00 straight in the query string, as a browser address bar would send it
    _problem(await client.get("/api/concerts?q=a%00b"), 422, "VALIDATION_ERROR")
    _problem(await client.get("/api/auth/verify?token=a%00b"), 422, "VALIDATION_ERROR")
    # nothing was written: the fan's profile is untouched and no concert exists
    me = (await client.get("/api/users/me", headers=fan["headers"])).json()
    assert me["address"] is None
    assert (await client.get("/api/concerts")).json()["total"] == 0
    # tab and newline stay allowed in free text
    ok = await client.post(
        "/api/admin/concerts",
        json={"name": "Fine", "artist": "A", "venue_id": venue.json()["id"], "description": "one\n\ttwo"},
        headers=admin["headers"],
    )
    assert ok.status_code == 201, ok.text


async def test_strict_types_no_string_to_int_coercion(client: httpx.AsyncClient, runtime: Runtime) -> None:
    show = await make_show(runtime, seats=2)
    fan = await make_user(runtime, balance=10**6)
    admin = await make_user(runtime, role="ADMIN")
    sid, cid = show["show_id"], show["concert_id"]
    headers = gated(runtime, fan, sid)
    cases = [
        ("/api/queue", {"concert_id": str(cid), "show_id": sid}, fan["headers"]),
        ("/api/queue", {"concert_id": cid, "show_id": str(sid)}, fan["headers"]),
        ("/api/reservations", {"show_id": str(sid), "seat_ids": show["seat_ids"][:1]}, headers),
        ("/api/reservations", {"show_id": sid, "seat_ids": [str(show["seat_ids"][0])]}, headers),
        (
            "/api/payments",
            {"reservation_id": "1", "method": "BALANCE"},
            {**fan["headers"], "Idempotency-Key": "k1"},
        ),
        ("/api/users/me/balance", {"amount": "100"}, {**fan["headers"], "Idempotency-Key": "k2"}),
        ("/api/reservations/token", {"concert_id": str(cid), "show_id": sid}, fan["headers"]),
        (
            f"/api/admin/concerts/{cid}/shows",
            {"starts_at": 1893456000, "sale_opens_at": "2026-01-01T00:00:00Z", "prices": {"A": 1}},
            admin["headers"],
        ),
        (
            f"/api/admin/concerts/{cid}/shows",
            {
                "starts_at": "2030-01-01T00:00:00Z",
                "sale_opens_at": "2026-01-01T00:00:00Z",
                "prices": {"A": "1"},
            },
            admin["headers"],
        ),
    ]
    for url, body, hdrs in cases:
        resp = await client.post(url, json=body, headers=hdrs)
        _problem(resp, 422, "VALIDATION_ERROR")
    # the same bodies with real integers work
    ok = await client.post(
        "/api/reservations", json={"show_id": sid, "seat_ids": show["seat_ids"][:1]}, headers=headers
    )
    assert ok.status_code == 201, ok.text


async def test_bodies_over_the_limit_are_413(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings
) -> None:
    fan = await make_user(runtime)
    limit = settings.max_body_bytes
    assert limit == 64 * 1024  # the documented default
    big = b'{"name": "' + b"x" * (limit + 1) + b'"}'
    resp = await client.patch(
        "/api/users/me", content=big, headers={**fan["headers"], "Content-Type": "application/json"}
    )
    _problem(resp, 413, "PAYLOAD_TOO_LARGE")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"email": "'
        for _ in range(limit // 1024 + 2):
            yield b"y" * 1024
        yield b'", "password": "p"}'

    for url in ("/api/auth/login", "/api/reservations"):  # a FastAPI route and a lean one
        resp = await client.post(
            url, content=chunks(), headers={**fan["headers"], "Content-Type": "application/json"}
        )
        _problem(resp, 413, "PAYLOAD_TOO_LARGE")
    # a body just under the limit is parsed normally (and refused for what it says)
    resp = await client.patch("/api/users/me", json={"name": "x" * 1000}, headers=fan["headers"])
    _problem(resp, 422, "VALIDATION_ERROR")


async def test_api_responses_carry_security_headers(client: httpx.AsyncClient, runtime: Runtime) -> None:
    fan = await make_user(runtime)
    for resp in (
        await client.get("/api/users/me", headers=fan["headers"]),
        await client.get("/api/users/me"),  # errors too
        await client.get("/healthz"),
        await client.get("/api/nope"),
    ):
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["referrer-policy"] == "no-referrer"
        assert resp.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert resp.headers["cache-control"] == "no-store"
    # what an endpoint or page sets itself wins (a cacheable answer, a page's own CSP)
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def own(request: Any) -> PlainTextResponse:
        return PlainTextResponse(
            "x", headers={"Cache-Control": "max-age=1", "Content-Security-Policy": "mine"}
        )

    guarded = RequestGuard(Starlette(routes=[Route("/api/own", own)]), max_body_bytes=1024)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://t") as c:
        resp = await c.get("/api/own")
    assert resp.headers["cache-control"] == "max-age=1" and resp.headers["content-security-policy"] == "mine"
    assert resp.headers["x-content-type-options"] == "nosniff"


# ---- the server's own limits (a real uvicorn with boxoffice's protocol) ------------------------


@pytest.fixture
async def bounded_server(app, settings: Settings) -> AsyncIterator[tuple[str, int]]:  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tight = settings.model_copy(
        update={"request_read_timeout_seconds": 1.0, "keep_alive_timeout_seconds": 1.0}
    )
    server = uvicorn.Server(server_config(tight, app, host="127.0.0.1", port=port, lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.01)
    yield "127.0.0.1", port
    server.should_exit = True
    await task


async def _exchange(addr: tuple[str, int], data: bytes, read_for: float = 10) -> bytes:
    reader, writer = await asyncio.open_connection(*addr)
    try:
        writer.write(data)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        chunks = []
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(read_for):
                while chunk := await reader.read(65536):
                    chunks.append(chunk)
        return b"".join(chunks)
    finally:
        writer.close()


async def test_oversized_and_too_many_headers_are_431(bounded_server: tuple[str, int]) -> None:
    huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1024 * 1024) + b"\r\n\r\n"
    assert (await _exchange(bounded_server, huge)).startswith(b"HTTP/1.1 431 ")
    many = (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(20_000))
        + b"\r\n"
    )
    assert (await _exchange(bounded_server, many)).startswith(b"HTTP/1.1 431 ")
    few = (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(101)) + b"\r\n"
    )
    assert (await _exchange(bounded_server, few)).startswith(b"HTTP/1.1 431 ")
    # a normal request with normal headers is served
    fine = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Ok: " + b"a" * 4000 + b"\r\n\r\n"
    assert (await _exchange(bounded_server, fine)).startswith(b"HTTP/1.1 200 ")


async def test_idle_and_slow_connections_are_closed(bounded_server: tuple[str, int]) -> None:
    started = time.monotonic()
    # connects and says nothing: closed after the read timeout (1 s here), not held forever
    assert await _exchange(bounded_server, b"", read_for=20) == b""
    assert time.monotonic() - started < 10
    # slowloris: a byte of the head every 0.3 s never completes a request; closed all the same
    reader, writer = await asyncio.open_connection(*bounded_server)
    started = time.monotonic()
    closed = False
    for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 200:
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            closed = True
            break
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.3):
                if await reader.read(1) == b"":
                    closed = True
                    break
    writer.close()
    assert closed and time.monotonic() - started < 10
    # keep-alive: after a response, an idle connection is closed after keep_alive_timeout
    reader, writer = await asyncio.open_connection(*bounded_server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    started = time.monotonic()
    data = b""
    async with asyncio.timeout(15):
        while chunk := await reader.read(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ") and time.monotonic() - started < 10
    writer.close()

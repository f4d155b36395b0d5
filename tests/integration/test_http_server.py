"""The HTTP server's writes (http/server.py, a real uvicorn on a real socket): a response of known
length leaves in one write; a streamed one sends its head at once, and `100 Continue` is not held."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from boxoffice.http.server import BoundedHttpToolsProtocol
from tests.helpers.server import serve


class _CountedWrites:
    """The connection's real transport, with each write the protocol makes noted."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _CountingProtocol(BoundedHttpToolsProtocol):
    writes: list[bytes] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_CountedWrites(transport, self.writes))  # type: ignore[arg-type]


async def _fixed(request: Request) -> Response:
    return Response(b'{"ok":true}', media_type="application/json")


async def _not_modified(request: Request) -> Response:
    return Response(status_code=304, headers={"etag": '"v1"'})


async def _echo(request: Request) -> Response:
    return Response(await request.body())


async def _stream(request: Request) -> StreamingResponse:
    go: asyncio.Event = request.app.state.stream_go

    async def chunks() -> AsyncIterator[bytes]:
        await go.wait()  # the first chunk only once the client has seen the head
        yield b"data: one\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream")


@pytest.fixture
async def counted_server() -> AsyncIterator[tuple[tuple[str, int], Starlette]]:
    app = Starlette(
        routes=[
            Route("/fixed", _fixed, methods=["GET", "HEAD"]),
            Route("/not-modified", _not_modified),
            Route("/echo", _echo, methods=["POST"]),
            Route("/stream", _stream),
        ]
    )
    app.state.stream_go = asyncio.Event()
    _CountingProtocol.writes = []
    async with serve(app, http=_CountingProtocol) as base_url:
        host, port = base_url.removeprefix("http://").split(":")
        yield (host, int(port)), app


@contextlib.asynccontextmanager
async def _connection(
    addr: tuple[str, int],
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(*addr)
    try:
        yield reader, writer
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    return head + (await reader.readexactly(length) if length else b"")


async def test_a_response_of_known_length_leaves_in_one_write(counted_server: Any) -> None:
    addr, _ = counted_server
    async with _connection(addr) as (reader, writer):
        for request, expected_body in (
            (b"GET /fixed HTTP/1.1\r\nhost: t\r\n\r\n", b'{"ok":true}'),
            (b"HEAD /fixed HTTP/1.1\r\nhost: t\r\n\r\n", b""),
            (b"GET /not-modified HTTP/1.1\r\nhost: t\r\n\r\n", b""),
        ):
            _CountingProtocol.writes.clear()
            writer.write(request)
            if request.startswith(b"HEAD"):
                answer = await reader.readuntil(b"\r\n\r\n")  # a HEAD's length names no body
            else:
                answer = await _read_response(reader)
            assert len(_CountingProtocol.writes) == 1, _CountingProtocol.writes
            (written,) = _CountingProtocol.writes
            assert written == answer and written.endswith(b"\r\n\r\n" + expected_body)


async def test_a_streamed_response_sends_its_head_at_once(counted_server: Any) -> None:
    addr, app = counted_server
    async with _connection(addr) as (reader, writer):
        writer.write(b"GET /stream HTTP/1.1\r\nhost: t\r\n\r\n")
        async with asyncio.timeout(5):  # the app holds its first chunk until the head is here
            head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"transfer-encoding: chunked" in head
        app.state.stream_go.set()
        async with asyncio.timeout(5):
            assert b"data: one" in await reader.readuntil(b"data: one\n\n\r\n")


async def test_100_continue_is_not_held(counted_server: Any) -> None:
    addr, _ = counted_server
    async with _connection(addr) as (reader, writer):
        writer.write(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n")
        async with asyncio.timeout(5):  # the body is sent only once the server asked for it
            assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        async with asyncio.timeout(5):
            answer = await _read_response(reader)
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nhello")
        assert _CountingProtocol.writes[-1] == answer  # the answer itself still in one write

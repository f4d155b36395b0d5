"""The HTTP server's own limits (uvicorn + httptools), which no ASGI middleware can enforce:
a request head must fit `max_header_bytes` and `max_header_count` (431 otherwise), and must arrive
within `request_read_timeout` of the connection's first byte or the previous response (slowloris:
the connection is closed); idle keep-alive connections close after `keep_alive_timeout`.

uvicorn's httptools protocol buffers a header until it is complete and keeps a connection that
sends nothing open forever; this subclass counts the head's bytes as they arrive and arms a timer
for every request head. It also sends a response of known length in one write (_OneWrite).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from boxoffice.config import Settings


class ServerConfig(uvicorn.Config):
    """uvicorn.Config with the head limits (importable, so `serve --workers N` can pickle it)."""

    def __init__(
        self,
        app: Any,
        *,
        max_header_bytes: int,
        max_header_count: int,
        request_read_timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, http="boxoffice.http.server:BoundedHttpToolsProtocol", **kwargs)
        self.max_header_bytes = max_header_bytes
        self.max_header_count = max_header_count
        self.request_read_timeout = request_read_timeout


def server_config(settings: Settings, app: Any, **kwargs: Any) -> ServerConfig:
    return ServerConfig(
        app,
        max_header_bytes=settings.max_header_bytes,
        max_header_count=settings.max_header_count,
        request_read_timeout=settings.request_read_timeout_seconds,
        timeout_keep_alive=int(settings.keep_alive_timeout_seconds),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        loop="uvloop",
        **kwargs,
    )


class _HeadTooLarge(Exception):
    pass


class _OneWrite:
    """The transport as one response cycle sees it. uvicorn writes a response's head and body
    apart: two system calls, two segments and two wake-ups of the client (or gateway) per answer.
    Here a response of known length leaves in one write: its head waits for the body, which the
    application sends right after (an empty one for a 204 or 304). A HEAD's answer (uvicorn
    writes no body for it) and a chunked (streaming) response's head, Server-Sent Events', go at
    once, as does `100 Continue` (written before the response starts)."""

    __slots__ = ("_cycle", "_head", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle: RequestResponseCycle | None = cycle  # until its head is written
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head + data)
            return
        cycle = self._cycle
        if cycle is not None and cycle.response_started:
            # The cycle's first write since its response started is that response's head.
            self._cycle = None
            if not cycle.chunked_encoding and cycle.scope["method"] != "HEAD":
                self._head = data
                return
        self._transport.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        # Only a response the application left unfinished closes with its head still held: it
        # was broken whether or not its head went out.
        self._transport.close()


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._max_bytes: int = getattr(config, "max_header_bytes", 16 * 1024)
        self._max_count: int = getattr(config, "max_header_count", 100)
        self._read_timeout: float = getattr(config, "request_read_timeout", 15.0)
        self._in_head = True  # until the first request's headers are complete
        self._head_bytes = 0
        self._head_count = 0
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._in_head:
            self._arm_read_timer()
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._in_head and (self._head_bytes > self._max_bytes or self._head_count > self._max_count):
                self._refuse(431, b"Request Header Fields Too Large")
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        # Bytes of a head still incomplete after this chunk: bounded by the limit plus one read.
        if self._in_head and self._head_bytes > self._max_bytes:
            self._refuse(431, b"Request Header Fields Too Large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_count += 1
        if self._head_count > self._max_count:
            raise _HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._disarm_read_timer()
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not before:  # a request (not an upgrade): its response in one write
            self.cycle.transport = _OneWrite(self.transport, self.cycle)  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        self._in_head = True
        super().on_response_complete()

    def _refuse(self, status: int, reason: bytes) -> None:
        self._disarm_read_timer()
        body = reason
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, reason, len(body), body)
        )
        self.transport.close()

    def _arm_read_timer(self) -> None:
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self._read_timeout, self._read_timed_out)

    def _disarm_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self._in_head and not self.transport.is_closing():
            self.transport.close()  # a head that does not arrive in time: slowloris or idle

"""A real SMTP server in the test process (aiosmtpd), the edge we do not own: the `inbox` fixture
(tests/conftest.py) starts one on a free port; `smtp()` points a runtime's settings at it."""

from __future__ import annotations

import email
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from email.message import Message

from aiosmtpd.controller import Controller

from boxoffice.runtime import Runtime
from tests.helpers.net import free_port


class Inbox:
    """Every message the server accepted: (recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content = envelope.content  # type: ignore[attr-defined]
        raw = content if isinstance(content, bytes) else content.encode()
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(raw)))  # type: ignore[attr-defined]
        return "250 Message accepted"


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@asynccontextmanager
async def smtp(runtime: Runtime, port: int | None, **more: object) -> AsyncIterator[None]:
    """runtime.settings point at this SMTP port meanwhile (None: SMTP off)."""
    original = runtime.settings
    update = {"smtp_host": "127.0.0.1" if port else None, "smtp_port": port or 25, **more}
    runtime.settings = original.model_copy(update={**update, "public_base_url": "https://tickets.example"})
    try:
        yield
    finally:
        runtime.settings = original


def parts(msg: Message, content_type: str) -> list[Message]:
    return [p for p in msg.walk() if p.get_content_type() == content_type]

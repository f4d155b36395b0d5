"""The one in-test server: an ASGI app under uvicorn on a free loopback port, started under a
deadline and stopped on exit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from tests.helpers.net import free_port

START_DEADLINE_SECONDS = 15.0


@asynccontextmanager
async def serve(app: Any, *, deadline: float = START_DEADLINE_SECONDS, **config: Any) -> AsyncIterator[str]:
    """Yields the base URL; fails with one line if the server is not up within `deadline`."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off", **config
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    end = time.monotonic() + deadline
    try:
        while not server.started:
            if task.done():
                task.result()  # raises the reason it stopped
                raise AssertionError("the test server stopped before it started")
            if time.monotonic() > end:
                raise AssertionError(f"the test server did not start within {deadline} s")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task

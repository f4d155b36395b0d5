"""What every command and child process of `boxoffice` shares: the one-line operator error, the
console, the event loop (uvloop), logging set-up and the clean-stop event."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Coroutine, Iterator
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from boxoffice.config import Settings
from boxoffice.ops.backends.process import BackendError

T = TypeVar("T")


console = Console(stderr=True, width=120)


class UserError(Exception):
    """A problem the operator can fix; printed as one line, exit code 1."""


def fail(message: str) -> NoReturn:
    console.print(f"[bold red]boxoffice: error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop (what uvicorn picks for its own workers): the API and the jobs are event-loop
    bound, and the stock loop's Python-level socket transports cost a visible share of each request."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


@contextlib.contextmanager
def errors_as_one_line() -> Iterator[None]:
    try:
        yield
    except (UserError, BackendError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        console.print("stopped")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48):
            raise UserError(f"port {port} on {host} is already in use (set BOXOFFICE_PORT)") from exc
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def configure_logging(settings: Settings) -> None:
    from boxoffice.observability import configure_logging

    configure_logging(settings)


def stop_event() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (call inside the running loop): the command's clean stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    return stop

"""Failures that are not the client's fault: which are backend outages, and how they are logged.

An outage of PostgreSQL or Redis is answered 503 + Retry-After with the stable code
BACKEND_UNAVAILABLE (gRPC: UNAVAILABLE), not a 500. Every failure is one log line with
`error.type` and `error.message`; a stack trace is added at most once per error type per minute,
so a backend outage under load writes a line per request, not 20 KB of traceback.

The message is the exception's first line only, and the stack trace lists code, never values:
SQL parameters and the DETAIL of a constraint violation (which may quote an email or a phone) never
reach a log line. The engine also runs with hide_parameters (db.py).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.exceptions
import sqlalchemy.exc

from boxoffice.errors import BackendUnavailable

RETRY_AFTER_SECONDS = 2
TRACE_EVERY_SECONDS = 60.0
# PostgreSQL SQLSTATEs meaning "the server is not (or no longer) there for us".
_PG_OUTAGE_STATES = ("08", "57P01", "57P02", "57P03", "53300", "53400")
_REDIS_OUTAGE_REPLIES = ("LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "NOAUTH")


def backend_unavailable(backend: str) -> BackendUnavailable:
    return BackendUnavailable(
        "A backend is unavailable; retry shortly",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        backend=backend,
    )


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, what caused it, and the members of exception groups (task groups)."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 16:
        current = todo.pop(0)
        if current in seen:
            continue
        seen.append(current)
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        cause = current.__cause__ or current.__context__
        if cause is not None:
            todo.append(cause)
    return seen


def outage_backend(exc: BaseException) -> str | None:
    """'postgres' or 'redis' when `exc` (or what caused it) says that backend is unreachable."""
    for err in _chain(exc):
        if isinstance(
            err,
            redis.exceptions.ConnectionError
            | redis.exceptions.TimeoutError
            | redis.exceptions.ClusterError  # a slot between masters during a failover
            | redis.exceptions.RedisClusterException,
        ):
            return "redis"
        if isinstance(err, redis.exceptions.ResponseError) and str(err).startswith(_REDIS_OUTAGE_REPLIES):
            return "redis"
        if isinstance(err, sqlalchemy.exc.TimeoutError):  # no pool connection within pool_timeout
            return "postgres"
        if isinstance(err, sqlalchemy.exc.DBAPIError) and err.connection_invalidated:
            return "postgres"
        if isinstance(err, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
            return "postgres"
        if isinstance(err, asyncpg.PostgresError) and str(getattr(err, "sqlstate", "")).startswith(
            _PG_OUTAGE_STATES
        ):
            return "postgres"
        if isinstance(err, ConnectionError | FileNotFoundError) and _from_asyncpg(err):
            return "postgres"
    return None


def _from_asyncpg(err: BaseException) -> bool:
    tb = err.__traceback__
    while tb is not None:
        if "asyncpg" in tb.tb_frame.f_code.co_filename or "sqlalchemy" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def error_message(exc: BaseException) -> str:
    """The first line of the message, bounded: never SQL, parameters or a DETAIL line."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return first.split("[SQL:", 1)[0].strip()[:300]


def stack_trace(exc: BaseException) -> str:
    """Frames (file, line, function, source line) of the exception and its causes; no messages."""
    parts = []
    for err in reversed(_chain(exc)):
        frames = traceback.format_tb(err.__traceback__)
        parts.append("".join(frames) + f"{type(err).__module__}.{type(err).__qualname__}\n")
    return "\n".join(parts)


@dataclass
class FailureLog:
    """Per process (on the Runtime): when each error type last had its stack trace logged."""

    every_seconds: float = TRACE_EVERY_SECONDS
    _last_trace: dict[str, float] = field(default_factory=dict)

    def fields(self, exc: BaseException) -> dict[str, Any]:
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        out: dict[str, Any] = {"error.type": kind, "error.message": error_message(exc)}
        backend = outage_backend(exc)
        if backend is not None:
            out["backend"] = backend
        now = time.monotonic()
        if now - self._last_trace.get(kind, -self.every_seconds) >= self.every_seconds:
            self._last_trace[kind] = now
            out["error.stack_trace"] = stack_trace(exc)
        return out

    def report(self, logger: Any, event: str, exc: BaseException, **context: Any) -> None:
        fields = self.fields(exc)
        level = "warning" if "backend" in fields else "error"
        getattr(logger, level)(event, **context, **fields)

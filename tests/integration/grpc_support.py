"""Shared helpers for the gRPC tests (no tests here): channels, metadata, the status detail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from boxoffice.grpc import ticket_pb2_grpc as pb_grpc
from boxoffice.runtime import Runtime
from tests.integration.test_booking_support import queue_token

ANSWERED_BY_CLIENT_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.UNIMPLEMENTED,
}


@asynccontextmanager
async def ticket_stub(target: str) -> AsyncIterator[pb_grpc.TicketServiceStub]:
    async with grpc.aio.insecure_channel(target) as channel:
        yield pb_grpc.TicketServiceStub(channel)  # type: ignore[no-untyped-call]


def meta(
    user: dict[str, Any] | None = None,
    *,
    runtime: Runtime | None = None,
    show_id: int | None = None,
    key: str | None = None,
    queue: str | None = None,
) -> tuple[tuple[str, str], ...]:
    """authorization (+ x-queue-token for `show_id`, minted for `user`) (+ idempotency-key)."""
    out: list[tuple[str, str]] = []
    if user is not None:
        out.append(("authorization", f"Bearer {user['token']}"))
    if queue is not None:
        out.append(("x-queue-token", queue))
    elif show_id is not None and runtime is not None and user is not None:
        out.append(("x-queue-token", queue_token(runtime, user["id"], show_id)))
    if key is not None:
        out.append(("idempotency-key", key))
    return tuple(out)


def error_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """The google.rpc.ErrorInfo every error of ours carries (fails the test when it is missing)."""
    status = rpc_status.from_call(exc)
    assert status is not None, f"no status details on {exc.code()}: {exc.details()}"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            assert info.domain == "boxoffice.dev"
            return info
    raise AssertionError(f"no ErrorInfo on {exc.code()}: {exc.details()}")


def replayed(call_trailing: Any) -> bool:
    return ("idempotent-replayed", "true") in tuple(call_trailing or ())

"""Domain errors -> gRPC status: the gRPC front door's one error handler (the HTTP API has its own).

The status code follows the HTTP status of the error, with a few codes refined; the HTTP API's
stable `code` travels as the `reason` of a google.rpc.ErrorInfo detail, and the error's extra
fields (taken `seat_ids`, `reservation_id`, ...) as its metadata, so a client branches on exactly
what an HTTP client branches on.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError

from boxoffice.errors import DomainError

DOMAIN = "boxoffice.dev"

_BY_HTTP_STATUS: dict[int, int] = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    402: code_pb2.FAILED_PRECONDITION,  # INSUFFICIENT_BALANCE, PAYMENT_DECLINED: nothing charged
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    409: code_pb2.FAILED_PRECONDITION,  # HOLD_EXISTS, HOLD_EXPIRED, ALREADY_PAID, SALE_CLOSED, ...
    413: code_pb2.INVALID_ARGUMENT,
    428: code_pb2.FAILED_PRECONDITION,  # QUEUE_CHALLENGE_REQUIRED: solve the toll, then join
    422: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    501: code_pb2.UNIMPLEMENTED,
    503: code_pb2.UNAVAILABLE,
    504: code_pb2.DEADLINE_EXCEEDED,
}
# Lost races: retrying (other seats, or the same request a moment later) can succeed.
_BY_CODE: dict[str, int] = {
    "SEATS_TAKEN": code_pb2.ABORTED,
    "IDEMPOTENCY_IN_PROGRESS": code_pb2.ABORTED,
}
# A backend that does not answer is the server's trouble, not the client's mistake.
BACKEND_DOWN: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
)


def grpc_code(error: DomainError) -> int:
    found = _BY_CODE.get(error.code) or _BY_HTTP_STATUS.get(error.status)
    if found is not None:
        return found
    return int(code_pb2.FAILED_PRECONDITION if error.status < 500 else code_pb2.INTERNAL)


def _text(value: Any) -> str:
    if isinstance(value, list | tuple) and all(isinstance(v, int) for v in value):
        return ",".join(str(v) for v in value)  # seat_ids: "12,13"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def _metadata(extra: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in extra.items():
        if value is None or name == "request_id":
            continue
        if name == "errors":  # validation errors: the offending fields, as "seat_ids,show_id"
            fields = [".".join(str(p) for p in e.get("loc", ())[1:]) for e in value if isinstance(e, dict)]
            out["fields"] = ",".join(f for f in fields if f)
            continue
        out[name] = _text(value)
    return out


def status_for(
    code: int,
    reason: str,
    message: str,
    metadata: dict[str, str] | None = None,
    retry_after_seconds: int | None = None,
) -> grpc.Status:
    details = any_pb2.Any()
    details.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata or {}))
    packed = [details]
    if retry_after_seconds is not None:
        retry = any_pb2.Any()
        retry.Pack(
            error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=retry_after_seconds))
        )
        packed.append(retry)
    return rpc_status.to_status(status_pb2.Status(code=code, message=message, details=packed))


def from_domain(error: DomainError) -> grpc.Status:
    retry_after = error.headers.get("Retry-After")
    return status_for(
        grpc_code(error),
        error.code,
        error.detail,
        _metadata(error.extra),
        int(retry_after) if retry_after and retry_after.isdigit() else None,
    )


def from_validation(error: ValidationError, where: str = "body") -> grpc.Status:
    """The request message failed the same pydantic model the HTTP route uses."""
    errors = [{"loc": (where, *e["loc"])} for e in error.errors()]
    meta = _metadata({"errors": errors})
    detail = f"Invalid request: {meta['fields']}" if meta.get("fields") else "Invalid request"
    return status_for(code_pb2.INVALID_ARGUMENT, "VALIDATION_ERROR", detail, meta)


def unavailable(error: BaseException) -> grpc.Status:
    return status_for(
        code_pb2.UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
        "A backend does not answer; retry shortly",
        {"error": type(error).__name__},
        retry_after_seconds=1,
    )


def internal() -> grpc.Status:
    return status_for(
        code_pb2.INTERNAL, "INTERNAL_ERROR", "An unexpected error occurred; it has been logged."
    )

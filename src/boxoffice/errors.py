"""Domain errors: pure types with a stable machine `code` and an HTTP status (no web framework).

Raise a DomainError subclass (or DomainError itself with a code) from any layer; each front door
renders it once (`http_errors.install_error_handlers` for the JSON API).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class DomainError(Exception):
    status: int = 400
    code: str = "BAD_REQUEST"
    title: str | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.detail = detail or self.title or HTTPStatus(self.status).phrase
        self.headers = headers or {}
        self.extra = extra
        super().__init__(self.detail)


class BadRequest(DomainError):
    status, code = 400, "BAD_REQUEST"


class Unauthorized(DomainError):
    status, code = 401, "UNAUTHORIZED"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(DomainError):
    status, code = 403, "FORBIDDEN"


class NotFound(DomainError):
    status, code = 404, "NOT_FOUND"


class Conflict(DomainError):
    status, code = 409, "CONFLICT"


class Unprocessable(DomainError):
    status, code = 422, "VALIDATION_ERROR"


class PaymentRequired(DomainError):
    status, code = 402, "PAYMENT_REQUIRED"


class TooManyRequests(DomainError):
    status, code = 429, "TOO_MANY_REQUESTS"


class ServiceUnavailable(DomainError):
    status, code = 503, "SERVICE_UNAVAILABLE"

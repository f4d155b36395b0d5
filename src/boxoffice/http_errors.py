"""The JSON API's front door for errors: DomainError and framework errors -> RFC 9457 problem+json."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from boxoffice.errors import DomainError

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("boxoffice.errors")


_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    title: str | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://boxoffice.dev/problems/{code.lower().replace('_', '-')}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        errors.append(
            {
                "loc": [str(part) for part in err.get("loc", ())],
                "msg": err.get("msg", ""),
                "type": err.get("type", ""),
            }
        )
    return errors


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem(
            exc.status,
            exc.code,
            exc.detail,
            instance=request.url.path,
            headers=exc.headers,
            request_id=_request_id(request),
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        fields = ", ".join(".".join(e["loc"]) for e in errors[:5])
        return problem(
            422,
            "VALIDATION_ERROR",
            f"Invalid request: {fields}" if fields else "Invalid request",
            instance=request.url.path,
            errors=errors,
            request_id=_request_id(request),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem(
            exc.status_code,
            code,
            detail,
            instance=request.url.path,
            headers=dict(exc.headers or {}),
            request_id=_request_id(request),
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return problem(
            500,
            "INTERNAL_ERROR",
            "An unexpected error occurred; it has been logged.",
            instance=request.url.path,
            request_id=_request_id(request),
        )


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "Stable machine code"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


def problems(*errors: type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` generated from the error classes a route can raise (grouped by status;
    the description lists their stable codes)."""
    by_status: dict[int, list[str]] = {}
    for cls in errors:
        codes = by_status.setdefault(cls.status, [])
        if cls.code not in codes:
            codes.append(cls.code)
    return {
        status: {
            "description": " / ".join(codes),
            "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}},
        }
        for status, codes in sorted(by_status.items())
    }

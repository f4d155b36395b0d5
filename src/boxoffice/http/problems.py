"""The JSON API's front door for errors: DomainError and framework errors -> RFC 9457 problem+json."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from boxoffice.errors import BodyTooLarge, DomainError, UnsupportedMediaType
from boxoffice.http.language import request_locale
from boxoffice.kit.i18n import N_, _, error_detail, use_locale

PROBLEM_JSON = "application/problem+json"
UNEXPECTED = N_("An unexpected error occurred; it has been logged.")
log = structlog.get_logger("boxoffice.errors")


_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: BodyTooLarge.code,
    415: UnsupportedMediaType.code,
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


def request_path(request: Request) -> str:
    """`request.url.path` (the same escapes) without building the whole URL: an error answer
    names only its path, and a refused hold is the commonest answer of a sale."""
    path: str = request.scope["path"]
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


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


def allowed_methods(request: Request) -> list[str]:
    """Every method of the path that answered 405. A path's methods can live on several routes (a
    lean route and FastAPI ones), and Starlette's 405 names only the first route's."""
    answered = request.scope.get("route")  # the first route whose path matched (ours name themselves)
    path = answered.path if isinstance(answered, Route) else None
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.path == path:
            methods |= route.methods
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem(
            exc.status,
            exc.code,
            error_detail(exc.detail, exc.status, request_locale(request)),
            instance=request_path(request),
            headers=exc.headers,
            request_id=_request_id(request),
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        fields = ", ".join(".".join(e["loc"]) for e in errors[:5])
        with use_locale(request_locale(request)):
            sentence = (
                _("Invalid request: %(fields)s") % {"fields": fields} if fields else _("Invalid request")
            )
        return problem(
            422,
            "VALIDATION_ERROR",
            sentence,
            instance=request_path(request),
            errors=errors,
            request_id=_request_id(request),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # FastAPI's 400 for a body that is not UTF-8: a body that is not JSON, like any other
            # (FastAPI's own answer to malformed JSON, and the lean routes' to both).
            bad_json = {"loc": ("body",), "msg": "JSON decode error", "type": "json_invalid"}
            return await _validation(request, RequestValidationError([bad_json]))
        code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem(
            exc.status_code,
            code,
            error_detail(detail, exc.status_code, request_locale(request)),
            instance=request_path(request),
            headers=headers,
            request_id=_request_id(request),
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return problem(
            500,
            "INTERNAL_ERROR",
            error_detail(
                N_("An unexpected error occurred; it has been logged."), 500, request_locale(request)
            ),
            instance=request_path(request),
            request_id=_request_id(request),
        )


# The RFC 9457 body every error has (components/schemas/Problem); each documented answer narrows
# `status` and `code` to what that operation really serves at that status.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "Stable machine code"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "description": "Validation failures: where (loc) and why",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}
PROBLEM_REF = "#/components/schemas/Problem"

# Headers an answer of this status always carries (401: http Unauthorized sets it; 429: every
# limiter says when; 503: the request guard adds it to every 503).
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}},
}

# An error class, or (status, class) where a code is served at another status than its class's
# (VENUE_NOT_FOUND for a venue_id field in a body is a 422).
Documented = type[DomainError] | tuple[int, type[DomainError]]


def problems(*errors: Documented) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` generated from the error classes a route can raise: one problem+json
    answer per status whose `code` is one of those classes' stable codes."""
    by_status: dict[int, list[str]] = {}
    for error in errors:
        status, cls = error if isinstance(error, tuple) else (error.status, error)
        codes = by_status.setdefault(status, [])
        if cls.code not in codes:
            codes.append(cls.code)
    return {status: _answer(status, codes) for status, codes in sorted(by_status.items())}


def _answer(status: int, codes: list[str]) -> dict[str, Any]:
    narrowed = {
        "type": "object",
        "properties": {"status": {"const": status}, "code": {"enum": sorted(codes)}},
    }
    answer: dict[str, Any] = {
        "description": " / ".join(sorted(codes)),
        "content": {PROBLEM_JSON: {"schema": {"allOf": [{"$ref": PROBLEM_REF}, narrowed]}}},
    }
    if status in _HEADERS:
        answer["headers"] = _HEADERS[status]
    return answer


def documented_codes(answer: dict[str, Any]) -> list[str]:
    """The codes of an answer rendered by problems() (none for any other answer)."""
    schema = answer.get("content", {}).get(PROBLEM_JSON, {}).get("schema", {})
    for part in schema.get("allOf", ()):
        if "enum" in part.get("properties", {}).get("code", {}):
            return list(part["properties"]["code"]["enum"])
    return []


F = TypeVar("F", bound=Callable[..., Any])


def raises(*errors: Documented, required_headers: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Marks a FastAPI dependency with the errors it can answer and the headers it needs, for the
    OpenAPI (boxoffice.http.openapi walks each route's dependencies). A required header is read as
    optional so that a missing one gets its own stable code (IDEMPOTENCY_KEY_REQUIRED,
    QUEUE_TOKEN_REQUIRED, as on the gRPC door) rather than a generic 422; the schema says required."""

    def mark(dependency: F) -> F:
        dependency.__dict__["openapi_errors"] = errors
        dependency.__dict__["openapi_required_headers"] = required_headers
        return dependency

    return mark

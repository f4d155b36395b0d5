"""Lean routes: a hot endpoint served without FastAPI's per-request dependency solving.

FastAPI re-resolves every dependency and parameter of a route on each request; on the endpoints a
flash sale hammers (status polls, seat holds) that was a third of their CPU. A lean route is a
plain Starlette route mounted ahead of its FastAPI declaration (which stays, for OpenAPI). It uses
the same authentication, the same pydantic models and the same service call, and raises the same
RequestValidationError, so clients see the same answers and the same problem+json errors.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import Scope

from boxoffice.deps import ID_MAX

M = TypeVar("M", bound=BaseModel)


class LeanRoute(Route):
    """A Starlette route that names itself in the scope like FastAPI's routes do, so the access
    log and the latency metrics carry its path template (plain Starlette routes were "unmatched")."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


def query_ids(request: Request, *names: str) -> list[int]:
    """Positive int64 query parameters, with FastAPI's 422 error shape when one is not."""
    return _ids("query", request.query_params, names)


def path_ids(request: Request, *names: str) -> list[int]:
    """Positive int64 path parameters (the route declares them as plain `{name}` strings)."""
    return _ids("path", request.path_params, names)


def _ids(where: str, params: Any, names: tuple[str, ...]) -> list[int]:
    values, errors = [], []
    for name in names:
        raw = params.get(name)
        loc = (where, name)
        if raw is None:
            errors.append({"loc": loc, "msg": "Field required", "type": "missing", "input": None})
            continue
        try:
            value = int(raw)
        except ValueError:
            errors.append({"loc": loc, "msg": "Input should be a valid integer", "type": "int_parsing"})
            continue
        if not 1 <= value <= ID_MAX:
            errors.append({"loc": loc, "msg": f"Input should be between 1 and {ID_MAX}", "type": "int_range"})
            continue
        values.append(value)
    if errors:
        raise RequestValidationError(errors)
    return values


async def json_body(request: Request, model: type[M]) -> M:
    """The body validated by the route's own pydantic model; errors located under "body"."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors: list[dict[str, Any]] = [
            {"loc": ("body", *err["loc"]), "msg": err["msg"], "type": err["type"]} for err in exc.errors()
        ]
        raise RequestValidationError(errors) from None


def header(request: Request, name: str, max_length: int) -> str | None:
    value = request.headers.get(name)
    if value is not None and len(value) > max_length:
        raise RequestValidationError(
            [
                {
                    "loc": ("header", name),
                    "msg": f"String should have at most {max_length} characters",
                    "type": "string_too_long",
                }
            ]
        )
    return value


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match against our strong ETag (weak comparison, as RFC 9110 asks for GET)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))

"""The OpenAPI document: FastAPI's, completed so that every operation documents every error it
can answer (and nothing else), each as problem+json narrowed to the stable codes of its status.

FastAPI documents what a route declares (`responses=problems(...)`: the errors of its flow) and
its parameters. What it cannot see is added here, one rule each:
- what the route's dependencies answer (`http_errors.raises`: the login, the admin role, the
  queue token, the Idempotency-Key), and the headers they need, marked required;
- a parameter or a body can be refused: 422 VALIDATION_ERROR, as problem+json (in place of
  FastAPI's HTTPValidationError, which we never serve); a body can be too large: 413 (http_guard);
- every /api operation reads PostgreSQL or Redis: 503 BACKEND_UNAVAILABLE (http_guard);
- the waiting room's own traffic is shed under overload: 429 QUEUE_BUSY (overload.SHEDDABLE).
A 500 is a bug and a 405 is no operation's answer, so neither is documented.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from boxoffice import errors as e
from boxoffice.http.problems import PROBLEM_SCHEMA, Documented, documented_codes, problems
from boxoffice.http.shedding import SHEDDABLE


def install_openapi(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            complete(build(), app.routes)  # FastAPI keeps what it built in app.openapi_schema
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any], routes: list[BaseRoute]) -> None:
    paths = schema.get("paths", {})
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        errors, headers = _from_dependencies(route.dependant)
        for method in route.methods or ():
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is not None:
                _complete(operation, route.path_format, method, errors, headers)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def _from_dependencies(dependant: Dependant) -> tuple[list[Documented], set[str]]:
    errors: list[Documented] = []
    headers: set[str] = set()
    for dependency in dependant.dependencies:
        errors.extend(getattr(dependency.call, "openapi_errors", ()))
        headers.update(h.lower() for h in getattr(dependency.call, "openapi_required_headers", ()))
        more, more_headers = _from_dependencies(dependency)
        errors.extend(more)
        headers |= more_headers
    return errors, headers


def _complete(
    operation: dict[str, Any], path: str, method: str, errors: list[Documented], headers: set[str]
) -> None:
    found: list[Documented] = list(errors)
    if operation.get("parameters") or "requestBody" in operation:
        found.append(e.Unprocessable)
    if "requestBody" in operation:
        found.append(e.BodyTooLarge)
    if path.startswith("/api/"):
        found.append(e.BackendUnavailable)
    if (method, path) in SHEDDABLE:
        found.append(e.QueueBusy)
    responses: dict[str, Any] = operation["responses"]
    for status in list(responses):
        codes = documented_codes(responses[status])
        if codes or status == "422":  # ours, or FastAPI's HTTPValidationError: merged below
            found.extend((int(status), e.error_class(code)) for code in codes)
            del responses[status]
    responses.update({str(status): answer for status, answer in problems(*found).items()})
    operation["responses"] = dict(sorted(responses.items()))
    for parameter in operation.get("parameters", ()):
        if parameter["in"] == "header" and parameter["name"].lower() in headers:
            parameter["required"] = True
